"""The `songs` section of config.yaml as a small dataclass."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model import ConfigError, load_config


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
    vocals: dict[str, Any]
    mix: dict[str, Any]

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> SongsConfig:
        """Build from a `songs` mapping; None reads the section from the project's config.yaml."""
        if d is None:
            d = load_config().get("songs")
            if d is None:
                raise ConfigError("config.yaml: expected a `songs` section, found none")
        if not isinstance(d, dict):
            raise ConfigError(f"songs config: expected a mapping, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        missing = names - set(d)
        if unknown or missing:
            raise ConfigError(f"songs config: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
        from training.songs.compose import GROOVES, MODES  # local: compose imports this module

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
            vocals=dict(d["vocals"]),
            mix=dict(d["mix"]),
        )
        bad_modes = set(cfg.modes) - set(MODES)
        bad_grooves = set(cfg.grooves) - set(GROOVES)
        if bad_modes or bad_grooves:
            raise ConfigError(f"songs config: unknown modes {sorted(bad_modes)} / grooves {sorted(bad_grooves)}; "
                              f"expected modes from {sorted(MODES)} and grooves from {sorted(GROOVES)}")
        if set(cfg.programs) != {"bass", "chords", "arp", "pad", "lead"}:
            raise ConfigError(f"songs config: programs expects bass, chords, arp, pad, lead; got {sorted(cfg.programs)}")
        if not cfg.available_soundfonts():
            raise ConfigError(f"songs config: none of the soundfonts exists: {sorted(cfg.soundfonts)} "
                              "(install fluid-soundfont-gm)")
        return cfg

    def available_soundfonts(self) -> dict[str, float]:
        """The configured soundfonts that exist on this machine, with their weights."""
        return {p: w for p, w in self.soundfonts.items() if w > 0 and Path(p).is_file()}
