"""Read `config.yaml` and turn its sections into small dataclasses.

Only this module knows the file layout; everything else receives plain values.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, UserError

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build a separator: network geometry, STFT and stems."""

    causal: bool
    n_fft: int
    hop_length: int
    stems: tuple[str, ...]
    widths: tuple[int, ...]
    depths: tuple[int, ...]
    bottleneck_width: int
    bottleneck_depth: int
    decoder_depths: tuple[int, ...]
    head_dim: int = 16
    mlp_ratio: float = 4.0
    swin_window: tuple[int, int] = (8, 8)
    tsa_window: int | None = None
    stem_kernel: int = 7
    stem_stride_f: int = 1
    time_stride: int = 2
    dropout: float = 0.0
    attn_dropout: float = 0.0
    window: str = "hann"
    synthesis_length: int | None = None   # asymmetric synthesis window length (causal, hann); None: n_fft
    sample_rate: int = 44100
    audio_channels: int = 2
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
    def from_dict(cls, d: dict[str, Any], name: str = "custom") -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"preset {name!r}: unknown keys {unknown}; expected some of {sorted(known)}")
        missing = sorted(f.name for f in dataclasses.fields(cls)
                         if f.default is dataclasses.MISSING and f.name not in d)
        if missing:
            raise ConfigError(f"preset {name!r}: missing keys {missing}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        values.setdefault("name", name)
        try:
            return cls(**values)
        except TypeError as e:  # wrong value types
            raise ConfigError(f"preset {name!r}: {e}") from None


def read_yaml_mapping(path: str | Path, what: str, expected: str, error: type[UserError] = ConfigError) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; a missing file, bad YAML or another shape raises
    `error` naming `what` the file is and what was `expected`."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} not found: {path} (expected {expected})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise error(f"{what} {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise error(f"{what} {path}: expected a mapping at the top level")
    return data


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    """Read a YAML config file (default: the project's `config.yaml`) -> dict."""
    return read_yaml_mapping(path if path is not None else DEFAULT_CONFIG, "config file", "a YAML file like config.yaml")


def merge_config(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `override` into a copy of `base` (mappings merge, everything else replaces)."""
    out = dict(base)
    for k, v in override.items():
        out[k] = merge_config(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


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
