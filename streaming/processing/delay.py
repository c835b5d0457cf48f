"""A bit-exact sample delay for (C, n) streams: the dry path of a live key change and the alignment of
stems whose chains have different latencies."""
from __future__ import annotations

import numpy as np


class DelayLine:
    """`process(x)` (C, n) -> (C, n): x delayed by `delay` samples, bit-exact."""

    def __init__(self, channels: int, delay: int):
        self.delay = int(delay)
        self._buf = np.zeros((channels, self.delay), np.float32)

    def process(self, x: np.ndarray) -> np.ndarray:
        if self.delay == 0:
            return x
        joined = np.concatenate([self._buf, np.asarray(x, np.float32)], axis=1)
        self._buf = joined[:, joined.shape[1] - self.delay:].copy()
        return joined[:, :joined.shape[1] - self.delay]

    def reset(self) -> None:
        self._buf[:] = 0.0
