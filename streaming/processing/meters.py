"""Level meters the worker publishes for a front end (the terminal mixer, the status line).

Per stem (post-fader: after its key change and chain, scaled by its fader, mute and solo, before the master)
and for the master bus (after the master gain and the limiter): a peak level that falls at
`peak_fall_db_per_s`, an RMS level averaged over `rms_window_s` (exponential), a peak hold that stays
`peak_hold_s` and then falls with the peak; and the limiter's gain reduction (with the peak's fall).

The worker writes preallocated NumPy arrays after every block (`update`, worker thread only); a reader
(`read`, any thread) takes them as they are, without a lock, and lets them fall by the wall time since the
last update, so meters of a stream that stopped (end of file, a stalled worker) sink to silence on screen.
A reader racing an update may see one stem of the new block and another of the old: harmless for a meter.
Shapes: stems (S, C, n), mix (C, n); readings (S + 1,): the stems in order, then the master.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from core.schema import build, setting

SILENCE_DB = -200.0


@dataclass(frozen=True)
class MeterConfig:
    """`config.yaml` section `meters`."""

    peak_fall_db_per_s: float = setting(20.0, gt=0, le=1000)  # how fast the peak bar (and the limiter's reduction) falls
    peak_hold_s: float = setting(1.5, ge=0, le=60)       # how long the peak-hold marker stays before it falls with the peak
    rms_window_s: float = setting(0.3, gt=0, le=10)      # time constant of the RMS average (a VU-like 300 ms)

    @classmethod
    def from_config(cls, config: dict) -> MeterConfig:
        return build(cls, config.get("meters"), "config meters")


@dataclass
class MeterReading:
    """One look at the meters (dBFS; SILENCE_DB for digital silence). Arrays of (S + 1,): stems, master."""

    peak_db: np.ndarray
    rms_db: np.ndarray
    hold_db: np.ndarray
    limiter_db: float                    # the master limiter's gain reduction, >= 0 dB
    updates: int                         # blocks metered so far


def _db(x: np.ndarray, power: bool = False) -> np.ndarray:
    with np.errstate(divide="ignore"):
        out = (10.0 if power else 20.0) * np.log10(x)
    return np.maximum(out, SILENCE_DB)


class Meters:
    """Meters of `names` (the stems, then `master`) at `sample_rate`. `update` on the worker, `read` anywhere."""

    def __init__(self, stems: tuple[str, ...], sample_rate: int, cfg: MeterConfig | None = None):
        self.names = (*stems, "master")
        self.sample_rate = int(sample_rate)
        self.cfg = cfg or MeterConfig()
        n = len(self.names)
        self.peak_db = np.full(n, SILENCE_DB)
        self.mean_square = np.zeros(n)
        self.hold_db = np.full(n, SILENCE_DB)
        self.hold_age_s = np.full(n, math.inf)
        self.limiter_db = 0.0
        self.stamp = time.perf_counter()     # wall time of the last update
        self.updates = 0
        self._block_peak = np.zeros(n)
        self._block_ms = np.zeros(n)

    def update(self, stems: np.ndarray, mix: np.ndarray, fader_gains: np.ndarray, limiter_db: float = 0.0) -> None:
        """Meter one block: stems (S, C, n) before their faders, fader_gains (S,) linear (mute / solo applied),
        mix (C, n) the master bus; limiter_db the limiter's largest gain reduction in this block."""
        n = stems.shape[-1]
        if n == 0:
            return
        s = stems.shape[0]
        assert s == len(self.names) - 1 and mix.shape[-1] == n, (stems.shape, mix.shape, self.names)
        peak, ms = self._block_peak, self._block_ms
        np.max(np.abs(stems), axis=(1, 2), out=peak[:s])
        peak[:s] *= fader_gains
        peak[s] = np.abs(mix).max()
        np.mean(np.square(stems, dtype=np.float64), axis=(1, 2), out=ms[:s])
        ms[:s] *= np.square(fader_gains)
        ms[s] = np.mean(np.square(mix, dtype=np.float64))
        dt = n / self.sample_rate
        cfg = self.cfg
        block_db = _db(peak)
        np.maximum(block_db, self.peak_db - cfg.peak_fall_db_per_s * dt, out=self.peak_db)
        a = math.exp(-dt / cfg.rms_window_s)
        self.mean_square *= a
        self.mean_square += (1.0 - a) * ms
        self.hold_age_s += dt
        renew = block_db >= self.hold_db                  # a new peak: hold it (again) from now
        self.hold_db[renew] = self.peak_db[renew]
        self.hold_age_s[renew] = 0.0
        expired = self.hold_age_s > cfg.peak_hold_s       # held long enough: follow the falling peak
        self.hold_db[expired] = self.peak_db[expired]
        self.limiter_db = max(float(limiter_db), self.limiter_db - cfg.peak_fall_db_per_s * dt)
        self.stamp = time.perf_counter()
        self.updates += 1

    def read(self, now: float | None = None) -> MeterReading:
        """The meters as they stand, fallen by the wall time since the last update."""
        dt = max(0.0, (time.perf_counter() if now is None else now) - self.stamp)
        cfg = self.cfg
        fall = cfg.peak_fall_db_per_s * dt
        peak = np.maximum(self.peak_db - fall, SILENCE_DB)
        rms = _db(self.mean_square * math.exp(-dt / cfg.rms_window_s), power=True)
        held = self.hold_age_s + dt <= cfg.peak_hold_s
        hold = np.maximum(np.where(held, self.hold_db, peak), peak)
        return MeterReading(peak, rms, hold, max(0.0, self.limiter_db - fall), self.updates)
