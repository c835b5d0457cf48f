"""Mixing and mastering: per-stem effect chains, level balance, loudness and a linked bus limiter.

The limiter's gain envelope is computed on the mixture and applied to every stem, so the limited mixture
is still exactly the sum of the limited stems.
"""
from __future__ import annotations

import numpy as np
from pedalboard import (
    Chorus,
    Compressor,
    Delay,
    Distortion,
    HighpassFilter,
    HighShelfFilter,
    LowpassFilter,
    PeakFilter,
    Pedalboard,
    Reverb,
)
from scipy.ndimage import minimum_filter1d, uniform_filter1d


def pan_mono(x: np.ndarray, pan: float) -> np.ndarray:
    """Constant-power pan of a mono (N,) signal to (2, N); pan in [-1, 1]."""
    a = (pan + 1) * np.pi / 4
    return np.stack([np.cos(a) * x, np.sin(a) * x]).astype(np.float32)


def _run(board: Pedalboard, x: np.ndarray, sr: int) -> np.ndarray:
    return board(np.ascontiguousarray(x, np.float32), float(sr), reset=True).astype(np.float32)


def vocal_chain(x: np.ndarray, rng: np.random.Generator, sr: int, tempo: float, lead: bool) -> np.ndarray:
    """(2, N) dry vocal bus -> produced vocal, as commercial mixes treat a lead or a backing bus.

    High-pass (higher on backing), a low-mid cut, presence and air EQ, sometimes saturation, compression
    (harder on backing), chorus widening on some backing buses, a tempo-synced delay on some leads, reverb
    (wetter on backing)."""
    fx = [
        HighpassFilter(float(rng.uniform(70, 150) if lead else rng.uniform(150, 350))),
        PeakFilter(float(rng.uniform(200, 500)), float(rng.uniform(-4.0, 0.0)), 1.0),
        PeakFilter(float(rng.uniform(2000, 5000)), float(rng.uniform(-1.0, 3.0)), float(rng.uniform(0.7, 1.5))),
        HighShelfFilter(float(rng.uniform(6000, 10000)), float(rng.uniform(0.0, 5.0)), 0.7),
    ]
    if rng.random() < 0.3:  # preamp / tape colour
        fx.append(Distortion(float(rng.uniform(2.0, 10.0))))
    fx.append(Compressor(float(rng.uniform(-26, -14) if lead else rng.uniform(-30, -20)),
                         float(rng.uniform(2.5, 6.0) if lead else rng.uniform(4.0, 8.0)),
                         float(rng.uniform(2, 10)), float(rng.uniform(50, 160))))
    if not lead and rng.random() < 0.4:
        fx.append(Chorus(float(rng.uniform(0.2, 1.0)), float(rng.uniform(0.1, 0.3)), 8.0, 0.0,
                         float(rng.uniform(0.3, 0.5))))
    if lead and rng.random() < 0.35:
        beat = 60.0 / tempo
        fx.append(Delay(float(beat * rng.choice([0.5, 0.75, 1.0])), float(rng.uniform(0.15, 0.4)),
                        float(rng.uniform(0.05, 0.18))))
    wet = rng.uniform(0.06, 0.3) if lead else rng.uniform(0.15, 0.4)
    fx.append(Reverb(float(rng.uniform(0.2, 0.85)), float(rng.uniform(0.2, 0.7)), float(wet),
                     1.0, float(rng.uniform(0.5, 1.0))))
    return _run(Pedalboard(fx), x, sr)


def instrument_chain(stem: str, x: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    """(2, N) rendered instrument stem -> produced stem (EQ, compression, stereo width, room)."""
    if stem == "drums":
        fx = [HighpassFilter(float(rng.uniform(25, 45))),
              PeakFilter(float(rng.uniform(60, 100)), float(rng.uniform(0, 5)), 1.0),
              HighShelfFilter(float(rng.uniform(5000, 9000)), float(rng.uniform(-2, 5)), 0.7),
              Compressor(float(rng.uniform(-24, -12)), float(rng.uniform(2, 6)), float(rng.uniform(1, 15)),
                         float(rng.uniform(60, 200))),
              Reverb(float(rng.uniform(0.1, 0.5)), 0.5, float(rng.uniform(0.02, 0.12)), 1.0, 1.0)]
    elif stem == "bass":
        fx = [HighpassFilter(float(rng.uniform(28, 45))),
              Compressor(float(rng.uniform(-24, -14)), float(rng.uniform(3, 8)), float(rng.uniform(5, 20)),
                         float(rng.uniform(80, 200)))]
        if rng.random() < 0.4:
            fx.append(LowpassFilter(float(rng.uniform(1500, 6000))))
    else:
        fx = [HighpassFilter(float(rng.uniform(50, 160))),
              PeakFilter(float(rng.uniform(200, 500)), float(rng.uniform(-5, 0)), 1.0),
              Compressor(float(rng.uniform(-22, -12)), float(rng.uniform(1.5, 4)), 10.0, 120.0)]
        if rng.random() < 0.3:
            fx.append(Chorus(float(rng.uniform(0.3, 1.5)), float(rng.uniform(0.1, 0.4)), 7.0, 0.0,
                             float(rng.uniform(0.2, 0.5))))
        fx.append(Reverb(float(rng.uniform(0.3, 0.85)), 0.5, float(rng.uniform(0.05, 0.25)), 1.0, 1.0))
    return _run(Pedalboard(fx), x, sr)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def activity(x: np.ndarray, sr: int, floor_db: float = -35.0) -> np.ndarray:
    """(C, N) -> (N,) bool: 50 ms frames whose level is within `floor_db` of the loudest frame."""
    hop = max(1, int(0.05 * sr))
    n = x.shape[-1]
    frames = -(-n // hop)
    pad = np.zeros((x.shape[0], frames * hop), np.float32)
    pad[:, :n] = x
    e = np.mean(pad.reshape(x.shape[0], frames, hop) ** 2, axis=(0, 2))
    if e.max() <= 1e-12:
        return np.zeros(n, bool)
    on = e > e.max() * 10 ** (floor_db / 10)
    return np.repeat(on, hop)[:n]


def linked_limiter_gain(mix: np.ndarray, ceiling: float, release: int) -> np.ndarray:
    """(C, N) mixture -> (N,) gain envelope g with |g * mix| <= ceiling everywhere.

    The instantaneous required gain is min-held over `release` samples and then averaged over the same
    window, which bounds the smoothed gain by the required gain at every sample (centred windows: the
    limiter looks ahead by half the window).
    """
    peak = np.max(np.abs(mix), axis=0).astype(np.float64)
    need = np.minimum(1.0, ceiling / np.maximum(peak, 1e-12))
    size = max(1, int(release)) | 1
    held = minimum_filter1d(need, size, mode="nearest")
    gain = uniform_filter1d(held, size, mode="nearest")
    return np.minimum(gain, need)  # float rounding of the running mean


def master(stems: dict[str, np.ndarray], vocal_mask: np.ndarray, rng: np.random.Generator, mix_cfg: dict,
           sr: int) -> dict[str, np.ndarray]:
    """Balance the stems, set the vocal-to-accompaniment ratio and the loudness, then limit the bus.

    stems: name -> (2, N) float32. Returns the same names -> (2, N) float32 whose sum peaks below the ceiling.
    """
    out = {k: v.astype(np.float64) for k, v in stems.items()}
    for name in ("drums", "bass", "other"):
        r = _rms(out[name])
        if r > 1e-9:
            out[name] *= 10 ** (float(rng.uniform(*mix_cfg[f"{name}_db"])) / 20) * 0.1 / r
    acc = out["drums"] + out["bass"] + out["other"]
    voc = out["vocals"]
    if vocal_mask.any() and _rms(voc[:, vocal_mask]) > 1e-9:
        lo, hi = mix_cfg["vocal_to_accompaniment_db"]
        var_db = float(rng.triangular(lo, min(max(mix_cfg["vocal_to_accompaniment_mode_db"], lo), hi), hi))
        a = _rms(acc[:, vocal_mask])
        ref = a if a > 1e-9 else 0.1
        out["vocals"] = voc * (10 ** (var_db / 20) * ref / _rms(voc[:, vocal_mask]))
    mix = sum(out.values())
    r = _rms(mix)
    if r > 1e-9:
        g = 10 ** (float(rng.uniform(*mix_cfg["mix_rms_dbfs"])) / 20) / r
        mix *= g
        for k in out:
            out[k] *= g
    ceiling = float(rng.uniform(*mix_cfg["limiter_ceiling"]))
    gain = linked_limiter_gain(mix, ceiling, int(mix_cfg["limiter_release_ms"] * sr / 1000))
    return {k: (v * gain).astype(np.float32) for k, v in out.items()}
