"""Streaming sample-rate conversion (python-soxr) between a device / file rate and the model's rate.

soxr's stream output is time-aligned with its input (the filter delay is withheld, not inserted), so a
file run needs no compensation beyond `flush`; live, the withheld samples are extra latency:
`delay_ms` reports it, measured on the running stream.
Shapes: (n, C) frames-major.
"""
from __future__ import annotations

import numpy as np
import soxr


class StreamResampler:
    """`process(x)` (n, C) -> (m, C), m ~= n * out_rate / in_rate; `flush()` returns the rest.
    Equal rates pass the audio through untouched."""

    def __init__(self, in_rate: int, out_rate: int, channels: int, quality: str = "LQ"):
        self.in_rate, self.out_rate, self.channels = int(in_rate), int(out_rate), int(channels)
        self.quality = quality
        self._stream = None if self.in_rate == self.out_rate else \
            soxr.ResampleStream(self.in_rate, self.out_rate, self.channels, dtype="float32", quality=quality)
        self.max_delay_frames = 0.0
        self._delay_sum, self._delay_n = 0.0, 0

    @property
    def active(self) -> bool:
        return self._stream is not None

    def process(self, x: np.ndarray) -> np.ndarray:
        if self._stream is None:
            return x
        y = self._stream.resample_chunk(np.ascontiguousarray(x, np.float32))
        d = float(self._stream.delay())
        self.max_delay_frames = max(self.max_delay_frames, d)
        self._delay_sum += d
        self._delay_n += 1
        return y

    def flush(self) -> np.ndarray:
        if self._stream is None:
            return np.zeros((0, self.channels), np.float32)
        return self._stream.resample_chunk(np.zeros((0, self.channels), np.float32), last=True)

    def delay_frames(self) -> float:
        """Output frames currently withheld by the filter."""
        return 0.0 if self._stream is None else float(self._stream.delay())

    @property
    def delay_ms(self) -> float:
        """Mean withheld delay after each chunk so far, in ms (0 when the rates are equal)."""
        return 1000.0 * self._delay_sum / max(1, self._delay_n) / self.out_rate


def chain_lag_frames(io_rate: int, model_rate: int, quality: str, blocksize: int, channels: int = 2,
                     seconds: float = 1.0) -> int:
    """Worst-case lag, in device frames, of the in -> model rate -> out resampler pair fed `blocksize` blocks.

    soxr withholds a filter delay and also releases output in bursts (at 48 -> 44.1 kHz LQ, ~426 frames
    every second 256-frame block), so the output side must be primed with this measured lag, not
    just the nominal delay, or blocks arrive late although the worker keeps up."""
    rs_in = StreamResampler(io_rate, model_rate, channels, quality)
    rs_out = StreamResampler(model_rate, io_rate, channels, quality)
    if not rs_in.active:
        return 0
    block = np.zeros((max(1, blocksize), channels), np.float32)
    fed = got = lag = 0
    for _ in range(max(16, int(seconds * io_rate / max(1, blocksize)))):
        fed += block.shape[0]
        got += rs_out.process(rs_in.process(block)).shape[0]
        lag = max(lag, fed - got)
    return lag
