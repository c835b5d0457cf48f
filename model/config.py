"""The model's settings: `ModelConfig` (a preset: network geometry, STFT, stems) and the `config.yaml`
sections the model owns (`audio`, `stems`, `presets`), declared to `core.config` here."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from core.config import EVERY_COMMAND, declare_section, load_config
from core.errors import ConfigError
from core.schema import build, setting


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build a separator: network geometry, STFT and stems."""

    causal: bool
    n_fft: int = setting(ge=16, le=65536)
    hop_length: int = setting(ge=1)
    stems: tuple[str, ...] = setting()
    widths: tuple[int, ...] = setting(ge=1)
    depths: tuple[int, ...] = setting(ge=0)
    bottleneck_width: int = setting(ge=1)
    bottleneck_depth: int = setting(ge=0)
    decoder_depths: tuple[int, ...] = setting(ge=0)
    head_dim: int = setting(16, ge=1)
    mlp_ratio: float = setting(4.0, gt=0, le=64)
    swin_window: tuple[int, int] = setting((8, 8), ge=1)
    tsa_window: int | None = setting(None, ge=1)
    stem_kernel: int = setting(7, ge=1)
    stem_stride_f: int = setting(1, ge=1)
    time_stride: int = setting(2, ge=1)
    dropout: float = setting(0.0, ge=0, lt=1)
    attn_dropout: float = setting(0.0, ge=0, lt=1)
    window: str = setting("hann", choices=("hann", "sqrt_hann", "hamming"))
    synthesis_length: int | None = setting(None, ge=2)   # asymmetric synthesis window length (causal, hann); None: n_fft
    sample_rate: int = setting(44100, ge=8000, le=384000)
    audio_channels: int = setting(2, ge=1, le=2)
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        def need(cond: bool, what: str) -> None:
            if not cond:
                raise ConfigError(f"preset {self.name!r}: expected {what}")

        need(self.n_fft >= 16 and self.n_fft % 2 == 0, f"an even n_fft >= 16, got {self.n_fft}")
        need(0 < self.hop_length <= self.n_fft // 2,
             f"0 < hop_length <= n_fft / 2, got hop_length={self.hop_length}, n_fft={self.n_fft}")
        need(len(self.widths) == len(self.depths) == len(self.decoder_depths) >= 1,
             "widths, depths and decoder_depths of equal, non-zero length, got "
             f"{list(self.widths)}, {list(self.depths)}, {list(self.decoder_depths)}")
        need(all(w % self.head_dim == 0 for w in (*self.widths, self.bottleneck_width)),
             f"every width divisible by head_dim={self.head_dim}")
        need(len(self.stems) >= 1 and len(set(self.stems)) == len(self.stems),
             f"a non-empty list of distinct stem names, got {list(self.stems)}")
        need(self.window in ("hann", "sqrt_hann", "hamming"), f"window hann|sqrt_hann|hamming, got {self.window!r}")
        need(self.stem_kernel % 2 == 1, f"an odd stem_kernel, got {self.stem_kernel}")
        need(len(self.swin_window) == 2 and min(self.swin_window) >= 1, f"swin_window [frames, bins], got {self.swin_window}")
        if self.causal:
            need(self.time_stride == 1, "time_stride 1 for a causal preset (downsample along frequency only)")
            need(self.tsa_window is not None and self.tsa_window >= 1, "a tsa_window >= 1 for a causal preset")
            need(self.n_fft % self.hop_length == 0,
                 f"n_fft a multiple of hop_length for a causal preset, got {self.n_fft} and {self.hop_length}")
        if self.synthesis_length is not None and self.synthesis_length != self.n_fft:
            m, hop = self.synthesis_length, self.hop_length
            need(self.causal and self.window == "hann",
                 f"synthesis_length only with a causal preset and window hann, got causal={self.causal}, "
                 f"window={self.window!r}")
            need(isinstance(m, int) and m % hop == 0 and 2 * hop <= m < self.n_fft,
                 f"synthesis_length a multiple of hop_length between 2 * hop_length and n_fft, got {m} "
                 f"(hop_length {hop}, n_fft {self.n_fft})")
        n_bins = self.n_fft // 2
        need(n_bins % self.stem_stride_f == 0, f"n_fft/2={n_bins} divisible by stem_stride_f={self.stem_stride_f}")

    @property
    def n_freq(self) -> int:
        """Frequency bins the network sees (Nyquist dropped)."""
        return self.n_fft // 2

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str = "custom", where: str | None = None) -> ModelConfig:
        """A preset (or a checkpoint's `config`) -> ModelConfig; every key checked (core.schema)."""
        if not isinstance(d, dict):
            raise ConfigError(f"{where or f'preset {name!r}'}: expected a mapping, got {type(d).__name__}")
        return build(cls, {"name": name, **d}, where or f"preset {name!r}")


@dataclass(frozen=True)
class AudioConfig:
    """`config.yaml` section `audio`."""

    sample_rate: int = setting(44100, ge=8000, le=384000)


@dataclass(frozen=True)
class StemsConfig:
    """`config.yaml` section `stems`: named stem sets and merged stems (name -> the stems it sums)."""

    sets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    merges: dict[str, tuple[str, ...]] = field(default_factory=dict)


# every command builds a model: all of them read these
declare_section("audio", "model.config:AudioConfig", EVERY_COMMAND)
declare_section("stems", "model.config:StemsConfig", EVERY_COMMAND)
declare_section("presets", "model.config:check_presets", EVERY_COMMAND)


def check_presets(config: dict[str, Any]) -> None:
    """Every preset of `presets:` builds a ModelConfig (at the `audio` sample rate unless it sets one)."""
    section = config.get("presets")
    if not isinstance(section, dict) or not section:
        raise ConfigError("config presets: expected a mapping of preset name -> network settings")
    rate = (config.get("audio") or {}).get("sample_rate", 44100)
    for name, preset in section.items():
        if not isinstance(preset, dict):
            raise ConfigError(f"config presets.{name}: expected a mapping of network settings, got {preset!r}")
        ModelConfig.from_dict({"sample_rate": rate, **preset}, name=name, where=f"config presets.{name}")


def preset_names(config: dict[str, Any] | None = None) -> list[str]:
    config = config if config is not None else load_config()
    return sorted(config.get("presets", {}))


def stem_merges(config: dict[str, Any] | None = None) -> dict[str, list[str]]:
    """Merged stem name -> list of source stems, e.g. accompaniment -> drums, bass, other."""
    config = config if config is not None else load_config()
    return {k: list(v) for k, v in config.get("stems", {}).get("merges", {}).items()}


def resolve_stems(spec: str | list[str] | tuple[str, ...], config: dict[str, Any] | None = None) -> tuple[str, ...]:
    """A stem-set name from `stems.sets` or a comma list -> tuple of stem names."""
    config = config if config is not None else load_config()
    if isinstance(spec, str):
        sets = config.get("stems", {}).get("sets", {})
        names = sets[spec] if spec in sets else [s.strip() for s in spec.split(",") if s.strip()]
    else:
        names = list(spec)
    if not names or len(set(names)) != len(names):
        raise ConfigError(f"expected a stem-set name or a comma list of distinct stems, got {spec!r}")
    return tuple(names)


def model_config(preset: str, config: dict[str, Any] | None = None,
                 stems: str | list[str] | tuple[str, ...] | None = None) -> ModelConfig:
    """Build the `ModelConfig` of a named preset, optionally with another stem set."""
    config = config if config is not None else load_config()
    presets = config.get("presets", {})
    if preset not in presets:
        raise ConfigError(f"unknown preset {preset!r}; expected one of {sorted(presets)}")
    d = dict(presets[preset])
    d.setdefault("sample_rate", config.get("audio", {}).get("sample_rate", 44100))
    if stems is not None:
        d["stems"] = list(resolve_stems(stems, config))
    return ModelConfig.from_dict(d, name=preset)
