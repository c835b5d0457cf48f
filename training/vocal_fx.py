"""Vocal-bus augmentation that keeps a real voice real: EQ, compression, saturation, reverb, pan and level.

What a mix engineer does to a vocal bus, at drawn settings, on the vocal stem alone (the processed vocal is the
training target; the mixture stays vocals + accompaniment, sample for sample). Each effect has its own
probability and ranges (the `real_vocals.vocal_fx` section of config.yaml) and its own random stream, so a
track's chain is a pure function of its seed, and turning one effect off leaves the others' settings as they
were. EQ, compressor and reverb are pedalboard's (JUCE); saturation is a soft clipper (tanh) blended with the
dry signal; both level-dependent effects see the vocal at a reference level (RMS -18 dBFS) and hand it back at its
own, so their settings mean the same on a quiet stem and a loud one; pan is a constant-power balance; level is a
slow fader ride.

Two steps, as everywhere here: `plan_vocal_bus(cfg, seed)` draws the settings (pure, no audio), and
`apply_vocal_bus(x, sr, plan)` runs them on a (2, N) float32 vocal. An effect whose probability is 0 is never
in the plan; an empty plan returns the input unchanged.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from core.errors import ConfigError
from core.schema import setting

ORDER = ("eq", "compressor", "saturation", "reverb", "pan", "level")  # the bus, in signal order
REF_RMS = 0.125  # compressor threshold and saturation drive are relative to the vocal's level: RMS at -18 dBFS


@dataclass(frozen=True)
class _EffectConfig:
    """What every effect's sub-section has: the probability that a track's bus has the effect, and (low, high)
    ranges, each checked for low <= high; `section` is the sub-section's name."""

    section: ClassVar[str]
    probability: float = setting(ge=0, le=1)

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple) and len(v) == 2 and v[0] > v[1]:
                raise ConfigError(f"config real_vocals.vocal_fx.{self.section}.{f.name}: expected [low, high] with "
                                  f"low <= high, got {list(v)}")


@dataclass(frozen=True)
class EqConfig(_EffectConfig):
    """Random low shelf, high shelf and `peak_bands` peaking bands (each band's gain, frequency and Q drawn)."""

    section = "eq"
    low_shelf_hz: tuple[float, float] = setting(gt=0, le=20000)
    high_shelf_hz: tuple[float, float] = setting(gt=0, le=20000)
    shelf_gain_db: tuple[float, float] = setting(ge=-24, le=24)
    peak_bands: tuple[int, int] = setting(ge=0, le=8)
    peak_hz: tuple[float, float] = setting(gt=0, le=20000)
    peak_gain_db: tuple[float, float] = setting(ge=-24, le=24)
    peak_q: tuple[float, float] = setting(gt=0, le=20)


@dataclass(frozen=True)
class CompressorConfig(_EffectConfig):
    """pedalboard's Compressor; `threshold_db` is for the vocal at RMS -18 dBFS (it is brought there and back)."""

    section = "compressor"
    threshold_db: tuple[float, float] = setting(ge=-60, le=0)
    ratio: tuple[float, float] = setting(ge=1, le=30)
    attack_ms: tuple[float, float] = setting(gt=0, le=500)
    release_ms: tuple[float, float] = setting(gt=0, le=5000)


@dataclass(frozen=True)
class SaturationConfig(_EffectConfig):
    """tanh soft clipping `drive_db` above the vocal's level (RMS at -18 dBFS), blended `mix` with the dry vocal."""

    section = "saturation"
    drive_db: tuple[float, float] = setting(ge=0, le=40)
    mix: tuple[float, float] = setting(ge=0, le=1)


@dataclass(frozen=True)
class ReverbConfig(_EffectConfig):
    section = "reverb"
    room_size: tuple[float, float] = setting(ge=0, le=1)
    damping: tuple[float, float] = setting(ge=0, le=1)
    wet: tuple[float, float] = setting(ge=0, le=1)  # pedalboard's wet_level (the dry path stays at unity)
    width: tuple[float, float] = setting(ge=0, le=1)


@dataclass(frozen=True)
class PanConfig(_EffectConfig):
    section = "pan"
    pan: tuple[float, float] = setting(ge=-1, le=1)  # constant-power balance, -1 left .. 1 right


@dataclass(frozen=True)
class LevelConfig(_EffectConfig):
    """A fader ride: gain breakpoints every `every_seconds`, each drawn in `range_db`, linear in dB between."""

    section = "level"
    range_db: tuple[float, float] = setting(ge=-24, le=24)
    every_seconds: float = setting(gt=0, le=600)


@dataclass(frozen=True)
class VocalFxConfig:
    """The `real_vocals.vocal_fx` section: one sub-section per effect of the vocal bus."""

    eq: EqConfig
    compressor: CompressorConfig
    saturation: SaturationConfig
    reverb: ReverbConfig
    pan: PanConfig
    level: LevelConfig


# -- the plan (pure: settings only) ----------------------------------------------------------------------
def _u(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(*lo_hi))


def _log_u(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    """Frequencies and times drawn evenly on a log scale."""
    lo, hi = lo_hi
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _draw(name: str, c: Any, rng: np.random.Generator) -> dict[str, Any]:
    if name == "eq":
        bands = int(rng.integers(c.peak_bands[0], c.peak_bands[1] + 1))
        return {"low_shelf": (_log_u(rng, c.low_shelf_hz), _u(rng, c.shelf_gain_db)),
                "high_shelf": (_log_u(rng, c.high_shelf_hz), _u(rng, c.shelf_gain_db)),
                "peaks": [(_log_u(rng, c.peak_hz), _u(rng, c.peak_gain_db), _log_u(rng, c.peak_q)) for _ in range(bands)]}
    if name == "compressor":
        return {"threshold_db": _u(rng, c.threshold_db), "ratio": _u(rng, c.ratio),
                "attack_ms": _log_u(rng, c.attack_ms), "release_ms": _log_u(rng, c.release_ms)}
    if name == "saturation":
        return {"drive_db": _u(rng, c.drive_db), "mix": _u(rng, c.mix)}
    if name == "reverb":
        return {"room_size": _u(rng, c.room_size), "damping": _u(rng, c.damping), "wet": _u(rng, c.wet),
                "width": _u(rng, c.width)}
    if name == "pan":
        return {"pan": _u(rng, c.pan)}
    assert name == "level", name
    return {"range_db": c.range_db, "every_seconds": c.every_seconds,
            "seed": int(rng.integers(2 ** 63))}  # breakpoints drawn when the length is known


def plan_vocal_bus(cfg: VocalFxConfig, seed: Sequence[int]) -> list[tuple[str, dict[str, Any]]]:
    """The effects of one track's vocal bus, in signal order, as (name, settings); each effect draws from its
    own stream `default_rng([*seed, k])`, so the plan is a pure function of `seed` and the config."""
    plan = []
    for k, name in enumerate(ORDER):
        c = getattr(cfg, name)
        rng = np.random.default_rng([*map(int, seed), k])
        if c.probability > 0 and rng.random() < c.probability:
            plan.append((name, _draw(name, c, rng)))
    return plan


# -- running it -----------------------------------------------------------------------------------------
def _pedalboard(board: list, x: np.ndarray, sr: int) -> np.ndarray:
    from pedalboard import Pedalboard

    return np.asarray(Pedalboard(board)(np.ascontiguousarray(x, np.float32), float(sr), reset=True), np.float32)


def _eq(x: np.ndarray, sr: int, p: dict[str, Any]) -> np.ndarray:
    from pedalboard import HighShelfFilter, LowShelfFilter, PeakFilter

    nyq = 0.45 * sr  # JUCE's biquads need a cutoff below Nyquist
    board = [LowShelfFilter(min(p["low_shelf"][0], nyq), p["low_shelf"][1], 0.707),
             HighShelfFilter(min(p["high_shelf"][0], nyq), p["high_shelf"][1], 0.707)]
    board += [PeakFilter(min(f, nyq), g, q) for f, g, q in p["peaks"]]
    return _pedalboard(board, x, sr)


def _to_reference(x: np.ndarray) -> float:
    """The gain that brings x's RMS to REF_RMS (0 for silence)."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return REF_RMS / rms if rms > 1e-6 else 0.0


def _compressor(x: np.ndarray, sr: int, p: dict[str, Any]) -> np.ndarray:
    from pedalboard import Compressor

    g = _to_reference(x)
    if g == 0.0:
        return x
    y = _pedalboard([Compressor(p["threshold_db"], p["ratio"], p["attack_ms"], p["release_ms"])], x * g, sr)
    return (y / g).astype(np.float32)


def _saturation(x: np.ndarray, sr: int, p: dict[str, Any]) -> np.ndarray:
    g = _to_reference(x) * 10 ** (p["drive_db"] / 20)
    if g == 0.0:
        return x
    wet = np.tanh(g * x) / g  # unity gain for small samples, soft clipping of the loud ones
    return ((1 - p["mix"]) * x + p["mix"] * wet).astype(np.float32)


def _reverb(x: np.ndarray, sr: int, p: dict[str, Any]) -> np.ndarray:
    from pedalboard import Reverb

    # pedalboard (Freeverb) scales the dry path by 2: dry_level 0.5 is the vocal at unity, reverb added on top
    return _pedalboard([Reverb(p["room_size"], p["damping"], p["wet"], 0.5, p["width"])], x, sr)


def _pan(x: np.ndarray, sr: int, p: dict[str, Any]) -> np.ndarray:
    a = (p["pan"] + 1) * np.pi / 4  # constant power, unity (cos = sin = 1/sqrt 2, times sqrt 2) in the centre
    g = np.sqrt(2.0) * np.array([np.cos(a), np.sin(a)], np.float32)[:, None]
    return (x * g).astype(np.float32)


def _level(x: np.ndarray, sr: int, p: dict[str, Any]) -> np.ndarray:
    n = x.shape[-1]
    step = max(1, round(p["every_seconds"] * sr))
    points = np.arange(0, n + step, step)
    db = np.random.default_rng(p["seed"]).uniform(*p["range_db"], size=len(points))
    gain = 10 ** (np.interp(np.arange(n), points, db) / 20)
    return (x * gain.astype(np.float32)).astype(np.float32)


_RUN = {"eq": _eq, "compressor": _compressor, "saturation": _saturation, "reverb": _reverb, "pan": _pan,
        "level": _level}


def apply_vocal_bus(x: np.ndarray, sample_rate: int, plan: list[tuple[str, dict[str, Any]]]) -> np.ndarray:
    """(2, N) float32 vocal -> (2, N) float32 through the planned effects (the input itself when none)."""
    assert x.ndim == 2 and x.shape[0] == 2, f"vocal bus: expected (2, N), got {x.shape}"
    for name, p in plan:
        x = _RUN[name](x, sample_rate, p)
        assert x.ndim == 2 and x.shape[0] == 2, f"vocal bus {name}: got {x.shape}"
    return x
