"""Streaming sample-rate conversion between a device / file rate and the model's rate.

Two kinds of converter behind one class, both time-aligned (output sample j is the input signal at time
j * in_rate / out_rate; what the filter still needs from the future is withheld, not inserted as a delay),
so a file run needs no compensation beyond `flush`; live, the withheld samples are extra latency.

- soxr (python-soxr) `QQ | LQ | MQ | HQ | VHQ`: high quality, but it filters in large FFT blocks and releases
  its output in bursts: fed 128-frame blocks at 48 -> 44.1 kHz, `LQ` hands out ~425 frames every fourth
  block, and the 48 -> 44.1 -> 48 kHz pair lags its input by up to 505 frames (10.5 ms); MQ / HQ ~39 ms.
- `LD<half>` (e.g. `LD32`, the live default): a polyphase windowed-sinc (Kaiser) converter that emits every
  output sample as soon as its input is there: its lag is the filter's half length, `half` samples at the
  lower of the two rates per direction (LD32: 0.73 ms each way, 70 frames for the 48 kHz pair). The
  filter passes 0-20 kHz and stops from (lower rate - 20 kHz) on, so what aliases or images lands above
  20 kHz. `python -m tools.resample_quality` measures lag and in-band THD+N of every setting.

Equal rates pass the audio through untouched (no delay). Shapes: (n, C) frames-major.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import soxr

from core.errors import UserError

QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")   # soxr's
LOW_DELAY_PREFIX = "LD"
LD_STOPBAND_DB = 100.0                         # Kaiser design attenuation of the LD filters


def check_quality(quality: str, what: str = "resample quality") -> str:
    """`LQ`, `ld32`, ... -> canonical upper case; anything else is a UserError."""
    q = str(quality).strip().upper()
    if q in QUALITIES:
        return q
    if q.startswith(LOW_DELAY_PREFIX) and q[2:].isdigit() and 4 <= int(q[2:]) <= 256:
        return q
    raise UserError(f"{what}: expected one of {', '.join(QUALITIES)} (soxr) or LD<taps per side, 4..256> "
                    f"(low-delay polyphase, e.g. LD32), got {quality!r}")


@numba.njit(cache=True, fastmath=False)
def _polyphase(buf, origin, table, first, up, down, h, out):
    """out[i] = sum_k table[p, k] * buf[r + k] for output j = first + i: p = (j * down) % up, r = the row of input
    floor(j * down / up) - h + 1 in buf (whose row 0 is input `origin`)."""
    taps = table.shape[1]
    for i in range(out.shape[0]):
        pos = (first + i) * down
        p = pos % up
        r = pos // up - origin - h + 1
        for c in range(out.shape[1]):
            acc = np.float32(0.0)
            for k in range(taps):
                acc += table[p, k] * buf[r + k, c]
            out[i, c] = acc


def warm_kernels() -> None:
    """Compile (or load from numba's cache) the LD resampler's kernel before a stream opens (its first call
    compiles it: seconds that must not fall inside a live stream)."""
    PolyphaseResampler(48000, 44100, 2, half=4).process(np.zeros((256, 2), np.float32))


class PolyphaseResampler:
    """Rational-ratio polyphase resampler with a Kaiser-windowed sinc, streaming, time-aligned.

    `process(x)` (n, C) -> (m, C) float32; `flush()` -> the rest. Output j is interpolated at input time
    t_j = j * down / up and emitted once input sample floor(t_j) + h_in has arrived (h_in = the half
    length in input samples), so the withheld lag is h_in input samples."""

    def __init__(self, in_rate: int, out_rate: int, channels: int, half: int = 32,
                 stopband_db: float = LD_STOPBAND_DB, passband_hz: float = 20000.0):
        g = math.gcd(in_rate, out_rate)
        self.up, self.down = out_rate // g, in_rate // g       # out = in * up / down
        self.channels = channels
        low = min(in_rate, out_rate)
        # Half length in input samples: `half` at the lower rate (a down-converter's kernel spans more inputs).
        self.h = h = max(2, math.ceil(half * in_rate / low))
        # Cutoff halfway between the passband edge and (low - passband): aliases / images land above it.
        edge = min(passband_hz, 0.45 * low)
        fc = 0.5 * (edge + (low - edge)) / in_rate              # cycles per input sample (= low / 2 / in_rate)
        beta = 0.1102 * (stopband_db - 8.7) if stopband_db > 50 else 0.5842 * (stopband_db - 21) ** 0.4 \
            + 0.07886 * (stopband_db - 21)
        taps = np.arange(-h + 1, h + 1, dtype=np.float64)      # input offsets relative to floor(t_j)
        frac = np.arange(self.up, dtype=np.float64)[:, None] / self.up  # row p: t_j - floor(t_j) = p / up
        tau = taps[None, :] - frac                             # (phases, 2h): input time - output time
        kernel = 2 * fc * np.sinc(2 * fc * tau) * np.i0(beta * np.sqrt(np.clip(1 - (tau / h) ** 2, 0, 1))) / np.i0(beta)
        kernel /= kernel.sum(axis=1, keepdims=True)            # unity DC gain on every phase
        self._table = kernel.astype(np.float32)                # row p: phase (j * down) % up
        # Input history: the samples from absolute index `_origin` on (negative indices are silence).
        self._origin = -h
        self._buf = np.zeros((h, channels), np.float32)
        self._next = 0          # next output index
        self._fed = 0           # input samples so far

    def _emit(self, available_to: int) -> np.ndarray:
        """Outputs whose taps reach at most input index available_to - 1."""
        # Largest j with floor(j * down / up) + h <= available_to - 1, i.e. j * down < (available_to - h) * up.
        last = ((available_to - self.h) * self.up - 1) // self.down
        n = last - self._next + 1
        if n <= 0:
            return np.zeros((0, self.channels), np.float32)
        y = np.empty((n, self.channels), np.float32)
        _polyphase(self._buf, self._origin, self._table, self._next, self.up, self.down, self.h, y)
        self._next = last + 1
        # Drop history no later output needs.
        keep_from = (self._next * self.down) // self.up - self.h + 1
        drop = keep_from - self._origin
        if drop > 0:
            self._buf = self._buf[drop:]
            self._origin += drop
        return y

    def process(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        assert x.ndim == 2 and x.shape[1] == self.channels, (x.shape, self.channels)
        self._buf = np.concatenate([self._buf, x])
        self._fed += x.shape[0]
        return self._emit(self._fed)

    def flush(self) -> np.ndarray:
        """The withheld outputs: everything up to ceil(fed * up / down) output samples (input padded with silence)."""
        total = -(-self._fed * self.up // self.down)
        self._buf = np.concatenate([self._buf, np.zeros((self.h + 1, self.channels), np.float32)])
        y = self._emit(self._fed + self.h + 1)
        extra = self._next - total
        return y[:max(0, y.shape[0] - extra)] if extra > 0 else y

    def withheld(self) -> float:
        """Output samples the filter still holds back (input fed but not yet converted)."""
        return self._fed * self.up / self.down - self._next


class StreamResampler:
    """`process(x)` (n, C) -> (m, C), m ~= n * out_rate / in_rate; `flush()` returns the rest.
    `quality`: a soxr quality (QQ | LQ | MQ | HQ | VHQ) or LD<half> (low-delay polyphase).
    Equal rates pass the audio through untouched."""

    def __init__(self, in_rate: int, out_rate: int, channels: int, quality: str = "LD32"):
        self.in_rate, self.out_rate, self.channels = int(in_rate), int(out_rate), int(channels)
        self.quality = check_quality(quality)
        self._stream = None
        if self.in_rate != self.out_rate:
            if self.quality.startswith(LOW_DELAY_PREFIX):
                self._stream = PolyphaseResampler(self.in_rate, self.out_rate, self.channels, int(self.quality[2:]))
            else:
                self._stream = soxr.ResampleStream(self.in_rate, self.out_rate, self.channels, dtype="float32",
                                                   quality=self.quality)

    @property
    def active(self) -> bool:
        return self._stream is not None

    def process(self, x: np.ndarray) -> np.ndarray:
        if self._stream is None:
            return x
        if isinstance(self._stream, PolyphaseResampler):
            return self._stream.process(x)
        return self._stream.resample_chunk(np.ascontiguousarray(x, np.float32))

    def flush(self) -> np.ndarray:
        if self._stream is None:
            return np.zeros((0, self.channels), np.float32)
        if isinstance(self._stream, PolyphaseResampler):
            return self._stream.flush()
        return self._stream.resample_chunk(np.zeros((0, self.channels), np.float32), last=True)


def chain_lag_frames(io_rate: int, model_rate: int, quality: str, blocksize: int, channels: int = 2,
                     seconds: float = 1.0) -> int:
    """Worst-case lag, in device frames, of the in -> model rate -> out resampler pair fed `blocksize` blocks.

    The output side must be primed with this measured lag, not a nominal filter delay: soxr releases its
    output in bursts (at 48 -> 44.1 kHz LQ, ~425 frames every fourth 128-frame block), so blocks would
    arrive late although the worker keeps up. 0 when the rates are equal (no resampler runs)."""
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
