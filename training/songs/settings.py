"""The `songs` section of config.yaml as a small dataclass."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import project_section
from core.errors import ConfigError
from training.songs.styles import GROOVES, MODES


@dataclass(frozen=True)
class VocalsConfig:
    """`songs.vocals`: who sings what (see config.yaml)."""

    female_probability: float
    double_probability: float
    double_pair_probability: float
    harmony_probability: float
    verse_harmony_probability: float
    octave_double_probability: float
    backing_probability: float
    adlib_probability: float
    second_singer_probability: float
    vibrato_rate_hz: tuple[float, float]
    vibrato_depth_cents: tuple[float, float]


@dataclass(frozen=True)
class LeadConfig:
    """`songs.lead`: the melodic instrument that shares the singer's register (see config.yaml)."""

    vocal_register_probability: float
    modes: dict[str, float]
    bend_probability: float
    vibrato_probability: float
    vibrato_cents: tuple[float, float]


def _section(cls: type, d: Any, where: str) -> Any:
    """A mapping -> frozen dataclass `cls`, every field required, [a, b] lists as tuples."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    if set(d) != names:
        raise ConfigError(f"{where}: unknown keys {sorted(set(d) - names)}, missing keys {sorted(names - set(d))}")
    return cls(**{k: (tuple(float(x) for x in v) if isinstance(v, list) else
                      {str(a): float(b) for a, b in v.items()} if isinstance(v, dict) else float(v))
                  for k, v in d.items()})


@dataclass(frozen=True)
class SongsConfig:
    """Defaults of the song engine (see the `songs` section of config.yaml for what each means)."""

    song_count: int
    preroll_seconds: float
    soundfonts: dict[str, float]
    tempo_bpm: tuple[float, float]
    modes: dict[str, float]
    grooves: tuple[str, ...]
    swing: tuple[float, float]
    humanize_ms: float
    drum_kits: tuple[int, ...]
    programs: dict[str, tuple[int, ...]]
    part_probability: dict[str, dict[str, float]]
    vocals: VocalsConfig
    lead: LeadConfig
    mix: dict[str, Any]

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> SongsConfig:
        """Build from a `songs` mapping; None reads the section from the project's config.yaml."""
        if d is None:
            d = project_section("songs")
        if not isinstance(d, dict):
            raise ConfigError(f"songs config: expected a mapping, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        missing = names - set(d)
        if unknown or missing:
            raise ConfigError(f"songs config: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")

        cfg = cls(
            song_count=int(d["song_count"]),
            preroll_seconds=float(d["preroll_seconds"]),
            soundfonts={str(k): float(v) for k, v in d["soundfonts"].items()},
            tempo_bpm=(float(d["tempo_bpm"][0]), float(d["tempo_bpm"][1])),
            modes={str(k): float(v) for k, v in d["modes"].items()},
            grooves=tuple(str(g) for g in d["grooves"]),
            swing=(float(d["swing"][0]), float(d["swing"][1])),
            humanize_ms=float(d["humanize_ms"]),
            drum_kits=tuple(int(k) for k in d["drum_kits"]),
            programs={str(k): tuple(int(p) for p in v) for k, v in d["programs"].items()},
            part_probability={str(k): {str(p): float(x) for p, x in v.items()} for k, v in
                              d["part_probability"].items()},
            vocals=_section(VocalsConfig, d["vocals"], "songs.vocals"),
            lead=_section(LeadConfig, d["lead"], "songs.lead"),
            mix=dict(d["mix"]),
        )
        bad_modes = set(cfg.modes) - set(MODES)
        bad_grooves = set(cfg.grooves) - set(GROOVES)
        if bad_modes or bad_grooves:
            raise ConfigError(f"songs config: unknown modes {sorted(bad_modes)} / grooves {sorted(bad_grooves)}; "
                              f"expected modes from {sorted(MODES)} and grooves from {sorted(GROOVES)}")
        if set(cfg.lead.modes) - {"counter", "answer", "double"} or sum(cfg.lead.modes.values()) <= 0:
            raise ConfigError(f"songs.lead.modes: expected weights for counter, answer, double; got {cfg.lead.modes}")
        if set(cfg.programs) != {"bass", "chords", "arp", "pad", "lead"}:
            raise ConfigError(f"songs config: programs expects bass, chords, arp, pad, lead; got {sorted(cfg.programs)}")
        if not cfg.available_soundfonts():
            raise ConfigError(f"songs config: none of the soundfonts exists: {sorted(cfg.soundfonts)} "
                              "(install fluid-soundfont-gm)")
        return cfg

    def available_soundfonts(self) -> dict[str, float]:
        """The configured soundfonts that exist on this machine, with their weights."""
        return {p: w for p, w in self.soundfonts.items() if w > 0 and Path(p).is_file()}
