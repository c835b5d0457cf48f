"""Karaoke key change: a streaming phase-vocoder pitch shifter with a fixed, known delay.

`PitchShifter` shifts a (C, n) stream by a number of semitones without changing its duration. Every `hop`
samples it takes the newest `n_fft` input samples (Hann window), finds the spectral peaks of the channel
sum, and moves each peak's region of bins to the peak's new frequency, rotating its phase by the
accumulated (ratio - 1) x (the peak's instantaneous frequency) x hop: the peak-locked frequency-domain
shift of Laroche & Dolson ("New phase-vocoder techniques for pitch-shifting, harmonizing and other exotic
effects", 1999). All channels get the same shifts and rotations, so the stereo image is kept. Frames are
overlap-added with the same window, so at ratio 1 the output is the input delayed by exactly `n_fft`
samples (within float rounding); `latency_samples` = `n_fft` whatever the shift, and the cost does not
depend on the shift.

Why not pedalboard.PitchShift or Rubber Band: measured on this project's 2-core CPU, pedalboard's
PitchShift streamed in 256-sample blocks (`reset=False`) withholds ~45,900 samples (1.04 s) before its
first output; Rubber Band's real-time mode (pylibrb 0.1.2, R2 engine, short window) needs 815-2,680 samples
of buffering depending on the ratio and block size and 1.5-2.4 ms per 256-sample stereo block for upward
shifts. This shifter costs ~0.1 ms per 256-sample block and adds a constant 46 ms at n_fft 2048.

Changes of the shift glide: the ratio moves towards its target exponentially (time constant `glide_ms`)
frame by frame, and the phase bookkeeping keeps every partial continuous, so there is no click.

`KeyChange` applies one shift to every stem except the excluded ones (default: vocals). With `live=False`
and 0 semitones it is not built at all (the chain is bit-identical to no key processing); with `live=True`
(a key control bound to MIDI or a UI) every shifted stem goes through a shifter, and at exactly 0 semitones
the output crossfades to the stem delayed by the same `n_fft` samples, bit-exactly.
Shapes: C channels, n samples.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from core.errors import UserError
from core.schema import build, setting

from .delay import DelayLine


@dataclass(frozen=True)
class KeyConfig:
    """`config.yaml` section `key`."""

    semitones: float = setting(0.0, ge=-48, le=48)   # the key at start (`--key` overrides)
    range: float = setting(12.0, gt=0, le=48)        # the key control's range: -range..+range semitones
    exclude: tuple[str, ...] = ("vocals",)           # stems the key change leaves alone
    live: str = setting("auto", choices=("auto", "on", "off"))  # auto: a shifter runs when the key is not 0
                                                     # or a MIDI binding can change it
    n_fft: int = setting(2048, ge=256, le=1 << 16)   # analysis window (also the added latency, model-rate samples)
    hop: int = setting(512, ge=1)                    # frame hop (n_fft / 4: 75% overlap)
    glide_ms: float = setting(80.0, ge=0, le=10000)  # time constant of a key change
    peak_floor_db: float = setting(-80.0, ge=-200, le=0)  # bins this far below a frame's maximum are not peaks

    @classmethod
    def from_config(cls, config: dict) -> KeyConfig:
        section = dict(config.get("key") or {})
        if "exclude" in section and section["exclude"] is None:
            section["exclude"] = ()
        cfg = build(cls, section, "config key")
        if cfg.n_fft < 256 or cfg.n_fft & (cfg.n_fft - 1) or not 0 < cfg.hop <= cfg.n_fft // 2 or cfg.n_fft % cfg.hop:
            raise UserError(f"config key: expected n_fft a power of two >= 256 and hop dividing it, at most n_fft/2; "
                            f"got n_fft {cfg.n_fft}, hop {cfg.hop}")
        return cfg


def check_semitones(value: float, limit: float, what: str = "--key") -> float:
    value = float(value)
    if not math.isfinite(value) or abs(value) > limit:
        raise UserError(f"{what}: expected semitones between {-limit:g} and {limit:g}, got {value:g}")
    return value


class PitchShifter:
    """`process(x)` (C, n) -> (C, n): x shifted by `semitones`, delayed by `latency_samples` (= n_fft)."""

    def __init__(self, sample_rate: int, channels: int = 2, semitones: float = 0.0, n_fft: int = 2048, hop: int = 512,
                 glide_ms: float = 80.0, peak_floor_db: float = -80.0):
        assert n_fft % hop == 0 and hop <= n_fft // 2, f"n_fft {n_fft} must be a multiple of hop {hop}"
        self.sample_rate, self.channels, self.n_fft, self.hop = int(sample_rate), int(channels), int(n_fft), int(hop)
        self.latency_samples = self.n_fft
        self.bins = self.n_fft // 2 + 1
        self.window = np.hanning(self.n_fft + 1)[:-1].astype(np.float64)              # periodic Hann
        # OLA of analysis x synthesis windows sums to this constant at this hop.
        self._norm = 1.0 / float(np.sum(self.window ** 2) / self.hop)
        self._omega = 2.0 * np.pi * np.arange(self.bins) / self.n_fft                 # rad / sample of each bin
        self._glide = math.exp(-self.hop / max(1e-9, glide_ms * 1e-3 * self.sample_rate))
        self._floor = 10.0 ** (peak_floor_db / 20.0)
        self.target = float(semitones)
        self.semitones = float(semitones)
        self.reset()

    @property
    def ratio(self) -> float:
        return 2.0 ** (self.semitones / 12.0)

    def set_semitones(self, semitones: float) -> None:
        self.target = float(semitones)

    def reset(self) -> None:
        self.semitones = self.target
        self._in = np.zeros((self.channels, self.n_fft), np.float64)    # the newest n_fft input samples
        self._acc = np.zeros((self.channels, self.n_fft), np.float64)   # overlap-add accumulator
        self._ready = np.zeros((self.channels, self.hop), np.float32)   # completed output, played over the next hop
        self._fill = 0                                                  # samples of the current hop taken in
        self._prev_phase = np.zeros(self.bins)                          # analysis phase of the channel sum
        self._rot = np.zeros(self.bins)                                 # accumulated phase rotation per bin
        self._peaks = np.zeros(self.bins, np.int64)

    def process(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        assert x.ndim == 2 and x.shape[0] == self.channels, f"expected ({self.channels}, n) audio, got {x.shape}"
        n = x.shape[1]
        out = np.empty((self.channels, n), np.float32)
        pos = 0
        while pos < n:
            m = min(self.hop - self._fill, n - pos)
            a = self.n_fft - self.hop + self._fill
            self._in[:, a:a + m] = x[:, pos:pos + m]
            out[:, pos:pos + m] = self._ready[:, self._fill:self._fill + m]
            self._fill += m
            pos += m
            if self._fill == self.hop:
                self._frame()
                self._fill = 0
        return out

    def _frame(self) -> None:
        """One hop: analyse the newest n_fft samples, shift, overlap-add, hand out the completed hop."""
        if self.semitones != self.target:
            self.semitones = self.target + (self.semitones - self.target) * self._glide
            if abs(self.semitones - self.target) < 1e-3:
                self.semitones = self.target
        frame = self._in * self.window
        spec = np.fft.rfft(frame, axis=-1)                                             # (C, bins)
        ratio = self.ratio
        if ratio == 1.0 and not self._rot.any():
            shifted = spec
            self._prev_phase = np.angle(spec.sum(0))
        else:
            shifted = self._shift(spec, ratio)
        y = np.fft.irfft(shifted, n=self.n_fft, axis=-1) * self.window * self._norm
        self._acc += y
        self._ready[:] = self._acc[:, :self.hop]
        self._acc[:, :-self.hop] = self._acc[:, self.hop:]
        self._acc[:, -self.hop:] = 0.0
        self._in[:, :-self.hop] = self._in[:, self.hop:]

    def _shift(self, spec: np.ndarray, ratio: float) -> np.ndarray:
        out = np.empty_like(spec)
        _shift_peaks(spec, self._prev_phase, self._rot, self._omega, ratio, self.n_fft, self.hop, self._floor,
                     self._peaks, out)
        return out


def warm_kernels() -> None:
    """Compile (or load from numba's cache) the shifter's kernel now: the first call of a numba function
    compiles it, seconds that must not fall inside a live stream. Called before a stream opens."""
    shifter = PitchShifter(44100, 2, 1.0, n_fft=64, hop=16)
    shifter.process(np.random.default_rng(0).standard_normal((2, 128)).astype(np.float32))


@numba.njit(cache=True)
def _shift_peaks(spec, prev_phase, rot, omega, ratio, n_fft, hop, floor, peaks, out):  # pragma: no cover - compiled
    """Peak-locked shift of one frame, in place: spec (C, bins) complex -> out; updates prev_phase and rot
    (per bin, the rotation of the peak region the bin belongs to)."""
    channels, bins = spec.shape
    two_pi = 2.0 * np.pi
    mag = np.empty(bins)
    inst = np.empty(bins)
    top = 0.0
    for k in range(bins):
        m = spec[0, k]
        for c in range(1, channels):
            m += spec[c, k]
        mag[k] = abs(m)
        top = max(top, mag[k])
        phase = np.arctan2(m.imag, m.real)
        d = phase - prev_phase[k] - omega[k] * hop
        d -= two_pi * np.floor(d / two_pi + 0.5)
        inst[k] = omega[k] + d / hop                   # instantaneous frequency, rad / sample
        prev_phase[k] = phase
    n_peaks = 0
    for k in range(1, bins - 1):
        if mag[k] > mag[k - 1] and mag[k] >= mag[k + 1] and mag[k] > floor * top:
            peaks[n_peaks] = k
            n_peaks += 1
    out[:] = 0.0
    if n_peaks == 0:
        rot[:] = 0.0
        return
    new_rot = np.empty(bins)
    for j in range(n_peaks):
        p = peaks[j]
        lo = 0 if j == 0 else (peaks[j - 1] + p + 1) // 2
        hi = bins if j == n_peaks - 1 else (p + peaks[j + 1] + 1) // 2
        w = inst[p]
        shift = int(np.rint(w * (ratio - 1.0) * n_fft / two_pi))
        r = rot[p] + (ratio - 1.0) * w * hop       # continues the rotation this bin had one frame ago
        r -= two_pi * np.floor(r / two_pi + 0.5)
        z = complex(np.cos(r), np.sin(r))
        if shift % 2:      # moving by k bins turns the phase at the window's centre by k*pi: undo it
            z = -z
        for k in range(lo, hi):
            new_rot[k] = r
            t = k + shift
            if 0 <= t < bins:
                for c in range(channels):
                    out[c, t] += spec[c, k] * z
    rot[:] = new_rot


class KeyShiftStage:
    """One stem's key change: the shifter, and (when the key can change live) a bit-exact delayed dry path
    that the output crossfades to while the key is exactly 0."""

    def __init__(self, sample_rate: int, channels: int, semitones: float, cfg: KeyConfig, live: bool):
        self.shifter = PitchShifter(sample_rate, channels, semitones, cfg.n_fft, cfg.hop, cfg.glide_ms,
                                    cfg.peak_floor_db)
        self.latency_samples = self.shifter.latency_samples
        self.live = live
        self.dry = DelayLine(channels, self.latency_samples) if live else None
        self._wet = 0.0 if semitones == 0 else 1.0     # crossfade position: 0 dry, 1 shifted

    def set_semitones(self, semitones: float) -> None:
        self.shifter.set_semitones(semitones)

    def process(self, x: np.ndarray) -> np.ndarray:
        wet = self.shifter.process(x)
        if self.dry is None:
            return wet
        dry = self.dry.process(x)
        target = 0.0 if self.shifter.target == 0 and self.shifter.semitones == 0 else 1.0
        n = x.shape[-1]
        if target == self._wet or n == 0:
            return dry if target == 0.0 else wet
        ramp = np.linspace(self._wet, target, n + 1, dtype=np.float32)[1:]
        self._wet = target
        return dry + (wet - dry) * ramp


class KeyChange:
    """The karaoke key control over a model's stems: `process(i, x)` for stem i, `set(semitones)`."""

    def __init__(self, stems: tuple[str, ...], sample_rate: int, cfg: KeyConfig, semitones: float, live: bool,
                 channels: int = 2):
        self.cfg = cfg
        self.semitones = check_semitones(semitones, cfg.range)
        unknown = [s for s in cfg.exclude if s not in stems]
        self.shifted = tuple(i for i, s in enumerate(stems) if s not in cfg.exclude)
        self.excluded_unknown = unknown
        self.stages = {i: KeyShiftStage(sample_rate, channels, self.semitones, cfg, live) for i in self.shifted}
        self.latency_samples = cfg.n_fft if self.stages else 0

    def set(self, semitones: float) -> None:
        self.semitones = float(semitones)
        for st in self.stages.values():
            st.set_semitones(self.semitones)

    def process(self, i: int, x: np.ndarray) -> np.ndarray:
        st = self.stages.get(i)
        return x if st is None else st.process(x)
