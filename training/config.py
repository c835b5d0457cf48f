"""The `training:` section of config.yaml as small frozen dataclasses.

Only this module knows the section's layout; the trainer, data pipeline and losses receive these.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from core.config import merge_config, nested
from core.errors import ConfigError
from core.schema import build, setting


@dataclass(frozen=True)
class OptimConfig:
    lr: float = setting(3e-4, gt=0, le=10)
    weight_decay: float = setting(0.01, ge=0, le=10)
    betas: tuple[float, float] = setting((0.9, 0.999), ge=0, lt=1)
    warmup_steps: int = setting(1000, ge=0)
    min_lr_ratio: float = setting(0.01, ge=0, le=1)
    grad_clip: float = setting(1.0, gt=0)


@dataclass(frozen=True)
class LossConfig:
    spec_l1: float = setting(1.0, ge=0)
    spec_l1_complex: bool = False
    mrstft: float = setting(1.0, ge=0)
    mrstft_resolutions: tuple[tuple[int, int], ...] = setting(((2048, 512), (1024, 256), (512, 128)), ge=1, le=1 << 16)
    wave_l1: float = setting(0.0, ge=0)


@dataclass(frozen=True)
class AugmentConfig:
    remix: float = setting(0.5, ge=0, le=1)
    gain_db: tuple[float, float] | None = setting((-6.0, 3.0), ge=-60, le=60)
    channel_swap: float = setting(0.5, ge=0, le=1)
    time_stretch: float = setting(0.0, ge=0, le=1)
    stretch_range: tuple[float, float] = setting((0.9, 1.1), gt=0, le=4)
    pitch_shift: float = setting(0.0, ge=0, le=1)
    semitones: tuple[float, float] = setting((-2.0, 2.0), ge=-24, le=24)
    freq_mask: float = setting(0.0, ge=0, le=1)
    freq_mask_bins: float = setting(0.1, ge=0, le=1)
    time_mask: float = setting(0.0, ge=0, le=1)
    time_mask_frames: float = setting(0.1, ge=0, le=1)
    mixup: float = setting(0.0, ge=0, le=1)
    mixup_alpha: float = setting(0.4, gt=0)
    silent_min_rms: float = setting(0.0, ge=0, le=1)

    def off(self) -> AugmentConfig:
        """No augmentation at all (validation)."""
        return AugmentConfig(remix=0.0, gain_db=None, channel_swap=0.0)


@dataclass(frozen=True)
class CacheConfig:
    enabled: bool = True
    dir: str = "~/.cache/tfswa-live/training-data"
    songs: int = setting(1000, ge=1)
    real_vocals: int = setting(256, ge=0)
    dtype: str = setting("float16", choices=("float16", "float32"))
    tracks_per_shard: int = setting(16, ge=1, le=4096)
    jobs: int = setting(0, ge=0, le=256)


@dataclass(frozen=True)
class DataConfig:
    valid_fraction: float = setting(0.1, ge=0, lt=1)
    songs_seconds: float = setting(12.0, gt=0, le=3600)
    songs_valid: int = setting(4, ge=0)
    synthetic_tracks: int = setting(64, ge=1)
    synthetic_valid: int = setting(4, ge=0)
    synthetic_seconds: float = setting(30.0, gt=0, le=3600)
    cache: CacheConfig = field(default_factory=CacheConfig)


@dataclass(frozen=True)
class ValidationConfig:
    segment_seconds: float = setting(6.0, gt=0, le=3600)
    segments_per_track: int = setting(4, ge=1)
    batch_size: int = setting(4, ge=1)
    best_metric: str = setting("valid_loss", choices=("valid_loss", "sdr"))
    patience: int = setting(10, ge=0)


@dataclass(frozen=True)
class LoggingConfig:
    log_interval: int = setting(50, ge=1)
    checkpoint_interval: int = setting(500, ge=1)
    checkpoint_minutes: float = setting(0.0, ge=0, le=1440)   # also checkpoint after this many minutes (0: off)
    tensorboard: bool = True
    audio_examples: int = setting(1, ge=0)
    progress: bool = True


@dataclass(frozen=True)
class TrainConfig:
    seed: int = setting(0, ge=0)
    segment_seconds: float = setting(6.0, gt=0, le=3600)
    batch_size: int = setting(8, ge=1)
    micro_batch: int = setting(0, ge=0)          # segments per forward/backward pass (0: the whole batch)
    steps_per_epoch: int = setting(1000, ge=1)
    epochs: int = setting(100, ge=1)
    num_workers: int | Literal["auto"] = setting("auto", ge=0, le=256)
    cpu_threads: int = setting(0, ge=0, le=256)
    amp: str = setting("bf16", choices=("bf16", "fp16", "off"))   # CUDA only
    cpu_amp: str = setting("off", choices=("bf16", "off"))       # the network under bf16 autocast on a CPU
    compile: bool = False
    gradient_checkpointing: bool = False
    optimizer: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    data: DataConfig = field(default_factory=DataConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    cpu: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        def need(cond: bool, what: str) -> None:
            if not cond:
                raise ConfigError(f"config training: expected {what}")

        need(self.segment_seconds > 0 and self.validation.segment_seconds > 0, "segment_seconds > 0")
        need(self.batch_size >= 1 and self.validation.batch_size >= 1, "batch sizes >= 1")
        need(self.steps_per_epoch >= 1 and self.epochs >= 1, "steps_per_epoch >= 1 and epochs >= 1")
        need(self.num_workers == "auto" or (isinstance(self.num_workers, int) and self.num_workers >= 0),
             f"num_workers auto or >= 0, got {self.num_workers!r}")
        need(self.micro_batch >= 0, f"micro_batch >= 0, got {self.micro_batch}")
        need(isinstance(self.cpu, dict), "cpu: a mapping of training keys used on CPU")
        need(self.amp in ("bf16", "fp16", "off"), f"amp bf16|fp16|off, got {self.amp!r}")
        need(self.cpu_amp in ("bf16", "off"), f"cpu_amp bf16|off, got {self.cpu_amp!r}")
        need(self.validation.best_metric in ("valid_loss", "sdr"),
             f"validation.best_metric valid_loss|sdr, got {self.validation.best_metric!r}")
        need(self.optimizer.lr > 0 and self.optimizer.grad_clip > 0, "optimizer.lr > 0 and grad_clip > 0")
        need(self.loss.spec_l1 + self.loss.mrstft + self.loss.wave_l1 > 0, "at least one loss weight > 0")
        need(self.logging.log_interval >= 1 and self.logging.checkpoint_interval >= 1, "log and checkpoint intervals >= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> TrainConfig:
        return _build(cls, d or {}, "training")


def _build(cls: type, d: dict[str, Any], where: str) -> Any:
    """Every key checked against the dataclass fields: types, ranges, unknown keys (core.schema)."""
    return build(cls, d, f"config {where}")


def train_config(config: dict[str, Any], device_type: str | None = None) -> TrainConfig:
    """The `training:` section of a loaded config.yaml -> TrainConfig; on `device_type` "cpu" the
    section's `cpu:` mapping overrides its keys (CPU defaults that fit a small machine)."""
    section = dict(config.get("training") or {})
    if device_type == "cpu" and isinstance(section.get("cpu"), dict):
        section = merge_config(section, section["cpu"])
    return TrainConfig.from_dict(section)


def with_overrides(cfg: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """A TrainConfig with dotted keys replaced, e.g. {"batch_size": 4, "optimizer.lr": 1e-3} (checked again)."""
    return TrainConfig.from_dict(merge_config(cfg.to_dict(), nested(overrides)))
