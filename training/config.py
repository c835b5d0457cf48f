"""The `training:` section of config.yaml as small frozen dataclasses.

Only this module knows the section's layout; the trainer, data pipeline and losses receive these.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from model import ConfigError


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 3e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 1000
    min_lr_ratio: float = 0.01
    grad_clip: float = 1.0


@dataclass(frozen=True)
class LossConfig:
    spec_l1: float = 1.0
    spec_l1_complex: bool = False
    mrstft: float = 1.0
    mrstft_resolutions: tuple[tuple[int, int], ...] = ((2048, 512), (1024, 256), (512, 128))
    wave_l1: float = 0.0


@dataclass(frozen=True)
class AugmentConfig:
    remix: float = 0.5
    gain_db: tuple[float, float] | None = (-6.0, 3.0)
    channel_swap: float = 0.5
    time_stretch: float = 0.0
    stretch_range: tuple[float, float] = (0.9, 1.1)
    pitch_shift: float = 0.0
    semitones: tuple[float, float] = (-2.0, 2.0)
    freq_mask: float = 0.0
    freq_mask_bins: float = 0.1
    time_mask: float = 0.0
    time_mask_frames: float = 0.1
    mixup: float = 0.0
    mixup_alpha: float = 0.4
    silent_min_rms: float = 0.0

    def off(self) -> AugmentConfig:
        """No augmentation at all (validation)."""
        return AugmentConfig(remix=0.0, gain_db=None, channel_swap=0.0)


@dataclass(frozen=True)
class DataConfig:
    valid_fraction: float = 0.1
    songs_seconds: float = 12.0
    songs_valid: int = 4
    synthetic_tracks: int = 64
    synthetic_valid: int = 4
    synthetic_seconds: float = 30.0


@dataclass(frozen=True)
class ValidationConfig:
    segment_seconds: float = 6.0
    segments_per_track: int = 4
    batch_size: int = 4
    best_metric: str = "valid_loss"
    patience: int = 10


@dataclass(frozen=True)
class LoggingConfig:
    log_interval: int = 50
    checkpoint_interval: int = 500
    tensorboard: bool = True
    audio_examples: int = 1
    progress: bool = True


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    segment_seconds: float = 6.0
    batch_size: int = 8
    steps_per_epoch: int = 1000
    epochs: int = 100
    num_workers: int = 4
    cpu_threads: int = 0
    amp: str = "bf16"
    gradient_checkpointing: bool = False
    optimizer: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    data: DataConfig = field(default_factory=DataConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def __post_init__(self) -> None:
        def need(cond: bool, what: str) -> None:
            if not cond:
                raise ConfigError(f"config training: expected {what}")

        need(self.segment_seconds > 0 and self.validation.segment_seconds > 0, "segment_seconds > 0")
        need(self.batch_size >= 1 and self.validation.batch_size >= 1, "batch sizes >= 1")
        need(self.steps_per_epoch >= 1 and self.epochs >= 1, "steps_per_epoch >= 1 and epochs >= 1")
        need(self.num_workers >= 0, f"num_workers >= 0, got {self.num_workers}")
        need(self.amp in ("bf16", "fp16", "off"), f"amp bf16|fp16|off, got {self.amp!r}")
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
    if not isinstance(d, dict):
        raise ConfigError(f"config {where}: expected a mapping, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ConfigError(f"config {where}: unknown keys {unknown}; expected some of {sorted(fields)}")
    values: dict[str, Any] = {}
    for k, v in d.items():
        default = fields[k].default_factory() if fields[k].default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            values[k] = _build(type(default), v, f"{where}.{k}")
        elif isinstance(v, list):
            values[k] = tuple(tuple(x) if isinstance(x, list) else x for x in v)
        else:
            values[k] = v
    try:
        return cls(**values)
    except TypeError as e:
        raise ConfigError(f"config {where}: {e}") from None


def train_config(config: dict[str, Any]) -> TrainConfig:
    """The `training:` section of a loaded config.yaml -> TrainConfig."""
    return TrainConfig.from_dict(config.get("training"))
