"""Single-producer / single-consumer float32 ring buffer for audio frames, allocated once.

The producer only writes `_write` (total frames written) and the consumer only writes `_read`
(total frames read); each side reads the other's counter. Under CPython a plain int attribute store
is atomic, so neither side needs a lock and neither ever waits. Shapes: (N, C) frames-major, the
layout sounddevice hands to callbacks.
"""
from __future__ import annotations

import numpy as np


class AudioRing:
    """A preallocated (capacity, C) float32 FIFO. `write` belongs to the producer, `read_into` /
    `skip` to the consumer; `available()` and `space()` may be called from either side."""

    def __init__(self, capacity: int, channels: int):
        assert capacity > 0 and channels > 0, (capacity, channels)
        self.capacity = int(capacity)
        self.channels = int(channels)
        self._buf = np.zeros((self.capacity, self.channels), np.float32)
        self._write = 0
        self._read = 0

    def available(self) -> int:
        """Frames ready to read."""
        return self._write - self._read

    def space(self) -> int:
        """Frames that can be written without overwriting unread ones."""
        return self.capacity - (self._write - self._read)

    def write(self, frames: np.ndarray) -> int:
        """Producer: append (n, C) frames; returns how many fit (the rest are dropped)."""
        n = min(frames.shape[0], self.space())
        if n <= 0:
            return 0
        start = self._write % self.capacity
        first = min(n, self.capacity - start)
        self._buf[start:start + first] = frames[:first]
        if n > first:
            self._buf[:n - first] = frames[first:n]
        self._write += n
        return n

    def write_columns(self, frames: np.ndarray, columns: tuple[int, ...]) -> int:
        """Producer: append frames[:, columns] (n, len(columns)) without building a temporary array."""
        n = min(frames.shape[0], self.space())
        if n <= 0:
            return 0
        start = self._write % self.capacity
        first = min(n, self.capacity - start)
        for dst, src in enumerate(columns):
            self._buf[start:start + first, dst] = frames[:first, src]
            if n > first:
                self._buf[:n - first, dst] = frames[first:n, src]
        self._write += n
        return n

    def write_zeros(self, n: int) -> int:
        """Producer: append n frames of silence (prefill)."""
        n = min(n, self.space())
        start = self._write % self.capacity
        first = min(n, self.capacity - start)
        self._buf[start:start + first] = 0.0
        if n > first:
            self._buf[:n - first] = 0.0
        self._write += n
        return n

    def read_into(self, out: np.ndarray) -> int:
        """Consumer: fill out (n, C) with the oldest frames; returns how many were read
        (out[k:] is left untouched when fewer than n were available)."""
        n = min(out.shape[0], self.available())
        if n <= 0:
            return 0
        start = self._read % self.capacity
        first = min(n, self.capacity - start)
        out[:first] = self._buf[start:start + first]
        if n > first:
            out[first:n] = self._buf[:n - first]
        self._read += n
        return n

    def skip(self, n: int) -> int:
        """Consumer: drop up to n of the oldest frames."""
        n = min(n, self.available())
        self._read += n
        return n
