"""Stem mixer: per-stem gain (dB), mute, solo and master gain, with click-free ramps and a soft limiter.

Runs on the worker thread only: controls (from the CLI or MIDI) are applied between blocks, and every
gain change ramps linearly across the next block. The soft limiter is the identity below
`threshold` and bends smoothly (tanh) towards `ceiling` above it, so the remix never exceeds the
ceiling whatever the gains.
Shapes: S stems, C channels, n samples.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.errors import ConfigError, UserError
from core.schema import build, setting


@dataclass(frozen=True)
class MixerConfig:
    """`config.yaml` section `mixer`."""

    limiter_threshold_db: float = setting(-3.0, ge=-60, lt=0)   # the limiter is the identity below this level
    limiter_ceiling_db: float = setting(-0.1, gt=-60, le=0)     # and never exceeds this one
    max_gain_db: float = setting(12.0, ge=0, le=40)             # stem / master gains are clamped to [-inf, max_gain_db]

    def __post_init__(self) -> None:
        if not self.limiter_threshold_db < self.limiter_ceiling_db:
            raise ConfigError("config mixer: expected limiter_threshold_db < limiter_ceiling_db, got "
                              f"{self.limiter_threshold_db} and {self.limiter_ceiling_db}")

    @classmethod
    def from_config(cls, config: dict) -> MixerConfig:
        return build(cls, config.get("mixer"), "config mixer")


def db_to_gain(db: float) -> float:
    return 0.0 if db == -math.inf else 10.0 ** (db / 20.0)


def soft_limit(x: np.ndarray, threshold: float, ceiling: float) -> np.ndarray:
    """Memoryless soft limiter, in place: |y| <= ceiling; identity for |x| <= threshold; slope 1 at the knee."""
    mag = np.abs(x)
    over = mag > threshold
    if over.any():
        span = ceiling - threshold
        x[over] = np.sign(x[over]) * (threshold + span * np.tanh((mag[over] - threshold) / span))
    return x


def check_stem(stem: str, stems: tuple[str, ...]) -> int:
    """A stem name -> its index; an unknown name is a UserError listing the valid ones."""
    if stem not in stems:
        raise UserError(f"unknown stem {stem!r}; this model's stems are: {', '.join(stems)}")
    return stems.index(stem)


class StemMixer:
    """`mix(stems)` (S, C, n) -> remix (C, n). Controls: `set_gain_db`, `set_mute`, `set_solo`,
    `toggle_mute`, `toggle_solo`, `set_master_db`; `state()` reports them."""

    def __init__(self, stems: tuple[str, ...] | list[str], cfg: MixerConfig | None = None):
        self.stems = tuple(stems)
        self.cfg = cfg or MixerConfig()
        n = len(self.stems)
        self.gain_db = np.zeros(n)
        self.mute = np.zeros(n, bool)
        self.solo = np.zeros(n, bool)
        self.master_db = 0.0
        self._threshold = db_to_gain(self.cfg.limiter_threshold_db)
        self._ceiling = db_to_gain(self.cfg.limiter_ceiling_db)
        self._current = self._targets()       # linear gains at the end of the last block
        self.limited_samples = 0
        self.reduction_db = 0.0               # the limiter's largest gain reduction in the last block (meters)

    # controls ------------------------------------------------------------------------------------
    def index(self, stem: str) -> int:
        """Stem name -> index; an unknown name is a UserError listing the valid ones."""
        return check_stem(stem, self.stems)

    def _clamp(self, db: float) -> float:
        if math.isnan(db):
            raise UserError("expected a gain in dB, got nan")
        return min(float(db), self.cfg.max_gain_db)

    def set_gain_db(self, stem: str | int, db: float) -> None:
        i = stem if isinstance(stem, int) else self.index(stem)
        self.gain_db[i] = self._clamp(db)

    def set_master_db(self, db: float) -> None:
        self.master_db = self._clamp(db)

    def set_mute(self, stem: str | int, on: bool) -> None:
        self.mute[stem if isinstance(stem, int) else self.index(stem)] = bool(on)

    def set_solo(self, stem: str | int, on: bool) -> None:
        self.solo[stem if isinstance(stem, int) else self.index(stem)] = bool(on)

    def toggle_mute(self, stem: str | int) -> None:
        i = stem if isinstance(stem, int) else self.index(stem)
        self.mute[i] = not self.mute[i]

    def toggle_solo(self, stem: str | int) -> None:
        i = stem if isinstance(stem, int) else self.index(stem)
        self.solo[i] = not self.solo[i]

    def settle(self) -> None:
        """Jump to the requested gains now (no ramp): a run starts at its --mute / --solo / --gain state."""
        self._current = self._targets()

    @property
    def silent(self) -> bool:
        """Whether every stem is silent now (muted, not soloed while another is, or at -inf dB)."""
        return not self._targets().any()

    @property
    def limiter_levels(self) -> tuple[float, float]:
        """(threshold, ceiling) of the soft limiter, linear: the router limits its other channels alike."""
        return self._threshold, self._ceiling

    # audio ---------------------------------------------------------------------------------------
    def _audible(self) -> np.ndarray:
        audible = ~self.mute
        if self.solo.any():
            audible &= self.solo
        return audible

    def _targets(self) -> np.ndarray:
        master = db_to_gain(self.master_db)
        gains = np.array([db_to_gain(g) for g in self.gain_db]) * master
        return np.where(self._audible(), gains, 0.0)

    def mix(self, stems: np.ndarray, limit: bool = True) -> np.ndarray:
        """(S, C, n) -> (C, n) float32: gains ramp from the previous block's to the current targets.
        `limit=False` leaves the soft limiter to a later `limit(...)` call (after a mix effect chain)."""
        assert stems.ndim == 3 and stems.shape[0] == len(self.stems), \
            f"expected ({len(self.stems)}, C, n) stems, got {stems.shape}"
        n = stems.shape[-1]
        target = self._targets()
        start = self._current
        if n == 0:
            return np.zeros(stems.shape[1:], np.float32)
        if np.array_equal(start, target):
            out = np.tensordot(target.astype(np.float32), stems, axes=1)
        else:
            ramp = np.arange(1, n + 1, dtype=np.float32) / n                       # (n,)
            g = start[:, None] + (target - start)[:, None] * ramp                  # (S, n)
            out = np.einsum("sn,scn->cn", g.astype(np.float32), stems)
        self._current = target
        out = out.astype(np.float32, copy=False)
        return self.limit(out) if limit else out

    def limit(self, out: np.ndarray) -> np.ndarray:
        """The soft limiter, in place on (C, n) float32."""
        over = int((np.abs(out) > self._threshold).sum())
        self.reduction_db = 0.0
        if over:
            self.limited_samples += over
            top = float(np.abs(out).max())
            span = self._ceiling - self._threshold
            self.reduction_db = 20.0 * math.log10(top / (self._threshold + span * math.tanh((top - self._threshold) / span)))
            soft_limit(out, self._threshold, self._ceiling)
        return out

    def fader_gains(self) -> np.ndarray:
        """(S,) linear gain of each stem's fader with mute and solo applied, master excluded (post-fader meters)."""
        return np.where(self._audible(), 10.0 ** (self.gain_db / 20.0), 0.0)

    def direct(self, stems: np.ndarray) -> np.ndarray:
        """(S, C, n) -> (S, C, n): each stem scaled by its own gain (ramped), whatever mute, solo and master
        say: the stems' direct outs for routing (a muted guide vocal can still feed the singer's monitor)."""
        target = np.array([db_to_gain(g) for g in self.gain_db])
        start = getattr(self, "_direct_current", target)
        n = stems.shape[-1]
        if np.array_equal(start, target) or n == 0:
            out = stems * target.astype(np.float32)[:, None, None]
        else:
            ramp = np.arange(1, n + 1, dtype=np.float32) / n
            g = (start[:, None] + (target - start)[:, None] * ramp).astype(np.float32)     # (S, n)
            out = stems * g[:, None, :]
        self._direct_current = target
        return out.astype(np.float32, copy=False)

    # reporting -----------------------------------------------------------------------------------
    def stem_gains_db(self) -> dict[str, float | None]:
        """Stem -> final gain in dB (stem gain + master), None where the stem is silent (muted, not
        soloed while another is, or -inf dB)."""
        audible = self._audible()
        out: dict[str, float | None] = {}
        for i, s in enumerate(self.stems):
            g = self.gain_db[i] + self.master_db
            out[s] = round(float(g), 3) if audible[i] and math.isfinite(g) else None
        return out

    def state(self) -> dict:
        return {
            "master_db": None if self.master_db == -math.inf else round(float(self.master_db), 3),
            "stems": {s: {"gain_db": None if self.gain_db[i] == -math.inf else round(float(self.gain_db[i]), 3),
                          "mute": bool(self.mute[i]), "solo": bool(self.solo[i])}
                      for i, s in enumerate(self.stems)},
            "limited_samples": int(self.limited_samples),
        }


def parse_gain(spec: str) -> tuple[str, float]:
    """`--gain vocals=-12` -> ("vocals", -12.0)."""
    name, sep, value = spec.partition("=")
    try:
        if not sep or not name.strip():
            raise ValueError
        db = float(value)
    except ValueError:
        raise UserError(f"expected --gain STEM=DB (e.g. vocals=-12), got {spec!r}") from None
    if math.isnan(db):
        raise UserError(f"expected --gain STEM=DB with a number, got {spec!r}")
    return name.strip(), db
