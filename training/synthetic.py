"""Synthetic stems generated on the fly, for tests and smoke runs. NOT a substitute for music.

Four seeded source models with stated spectra, stereo with a random constant pan:

* `vocals` (voice-like): a glottal-pulse-like harmonic series, f0 150-500 Hz with 5-6 Hz vibrato
  (+-3 %), harmonics up to 5 kHz shaped by three formant peaks (a vowel drawn per phrase:
  F1 300-800 Hz, F2 900-2300 Hz, F3 2400-3000 Hz), phrases of 0.5-2 s separated by pauses.
* `drums` (percussive): a 90-150 BPM grid of kicks (sine sweep 150 -> 45 Hz, 150 ms decay),
  snares (noise + 190 Hz tone, 120 ms decay) and hi-hats (differentiated noise, i.e. a +6 dB/octave
  spectrum, 40 ms decay): broadband transients.
* `bass` (bass-like): notes of 0.2-0.6 s with f0 40-160 Hz and 6 harmonics at 1/k^2 (-12 dB/octave).
* `other` (harmonic): chords of 2-3 notes, f0 200-1000 Hz, 10 harmonics at 1/k (-6 dB/octave),
  changing every 0.25-1 s, with attack/decay envelopes.

Real music has reverberation, vocals with consonants and shared harmony between stems; a model
trained on these learns a toy problem. Use them to check that the pipeline runs and learns.
"""
from __future__ import annotations

import numpy as np

STEMS = ("vocals", "drums", "bass", "other")


def _segments(rng: np.random.Generator, n: int, sr: int, lo: float, hi: float) -> list[tuple[int, int]]:
    """Consecutive (start, stop) note spans of random length in [lo, hi) seconds covering n samples."""
    out, t = [], 0
    while t < n:
        d = max(1, int(rng.uniform(lo, hi) * sr))
        out.append((t, min(n, t + d)))
        t += d
    return out


def _harmonic(f0: np.ndarray, amps: np.ndarray, sr: int, phase0: float) -> np.ndarray:
    """Sum of harmonics k*f0(t) with weights amps[k-1]; harmonics above 0.45 sr are dropped.

    Im(sum_k a_k z^k) with z = exp(i phase), evaluated by Horner's rule: one complex multiply-add per
    harmonic and sample instead of a sine (the series is the same to ~1e-12)."""
    phase = phase0 + 2 * np.pi * np.cumsum(f0) / sr
    weights = np.array([a if k * f0.max() < 0.45 * sr else 0.0 for k, a in enumerate(amps, start=1)])
    nonzero = np.flatnonzero(weights)
    if len(nonzero) == 0:
        return np.zeros_like(f0)
    z = np.exp(1j * phase)
    acc = np.full(len(f0), weights[nonzero[-1]], dtype=np.complex128)
    for a in weights[nonzero[-1] - 1::-1]:
        acc *= z
        acc += a
    return (acc * z).imag


def _envelope(n: int, sr: int, attack: float, decay: float) -> np.ndarray:
    t = np.arange(n) / sr
    return np.minimum(1.0, t / max(attack, 1e-4)) * np.exp(-t / decay)


def voice(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    out = np.zeros(n)
    for a, b in _segments(rng, n, sr, 0.5, 2.0):
        if rng.random() < 0.3:  # a pause
            continue
        m = b - a
        t = np.arange(m) / sr
        base = rng.uniform(150, 500)
        f0 = base * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(5, 6) * t)) * np.linspace(1, rng.uniform(0.9, 1.1), m)
        formants = (rng.uniform(300, 800), rng.uniform(900, 2300), rng.uniform(2400, 3000))
        k = np.arange(1, int(5000 / base) + 1)
        fk = k * base
        shape = sum(np.exp(-0.5 * ((fk - f) / (0.12 * f)) ** 2) for f in formants) + 0.05
        amps = shape / k ** 0.5
        env = np.minimum(1, np.minimum(t, t[::-1]) / 0.05)
        out[a:b] = env * _harmonic(f0, amps / amps.sum(), sr, rng.uniform(0, 2 * np.pi))
    return out


def drums(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    out = np.zeros(n)
    beat = int(60 / rng.uniform(90, 150) * sr / 2)  # eighth notes
    offset = int(rng.integers(0, beat))
    for i, pos in enumerate(range(offset - beat, n, beat)):
        kind = "kick" if i % 4 == 0 else "snare" if i % 4 == 2 else "hat"
        if rng.random() < 0.15:
            continue
        length = int((0.6 if kind == "kick" else 0.4 if kind == "snare" else 0.15) * sr)
        t = np.arange(length) / sr
        if kind == "kick":
            f = 45 + 105 * np.exp(-t / 0.03)
            hit = np.sin(2 * np.pi * np.cumsum(f) / sr) * _envelope(length, sr, 0.002, 0.15)
        elif kind == "snare":
            hit = (0.6 * rng.standard_normal(length) + 0.5 * np.sin(2 * np.pi * 190 * t)) * _envelope(length, sr, 0.001, 0.12)
        else:
            hit = 0.5 * np.diff(rng.standard_normal(length + 1)) * _envelope(length, sr, 0.001, 0.04)
        a, b = max(pos, 0), min(n, pos + length)
        if b > a:
            out[a:b] += rng.uniform(0.5, 1.0) * hit[a - pos:b - pos]
    return out


def bass(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    out = np.zeros(n)
    amps = 1.0 / np.arange(1, 7) ** 2
    for a, b in _segments(rng, n, sr, 0.2, 0.6):
        f0 = np.full(b - a, rng.uniform(40, 160))
        out[a:b] = _envelope(b - a, sr, 0.005, 0.4) * _harmonic(f0, amps, sr, rng.uniform(0, 2 * np.pi))
    return out


def harmonic(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    out = np.zeros(n)
    amps = 1.0 / np.arange(1, 11)
    for a, b in _segments(rng, n, sr, 0.25, 1.0):
        env = _envelope(b - a, sr, rng.uniform(0.005, 0.08), rng.uniform(0.2, 1.0))
        for _ in range(int(rng.integers(2, 4))):
            f0 = np.full(b - a, rng.uniform(200, 1000))
            out[a:b] += env * _harmonic(f0, amps, sr, rng.uniform(0, 2 * np.pi)) / 3
    return out


GENERATORS = {"vocals": voice, "drums": drums, "bass": bass, "other": harmonic}


def synthetic_stem(stem: str, n: int, sample_rate: int, seed: list[int] | int) -> np.ndarray:
    """One stem, (2, n) float32, deterministic in `seed`; RMS about 0.05-0.15 when active."""
    rng = np.random.default_rng(seed)
    mono = GENERATORS[stem](rng, n, sample_rate)
    peak = np.abs(mono).max()
    if peak > 0:
        mono = mono / peak * rng.uniform(0.2, 0.5)
    pan = rng.uniform(0.25, 0.75)
    return np.stack([mono * np.sqrt(1 - pan), mono * np.sqrt(pan)]).astype(np.float32)
