"""The `tools:` section of config.yaml as small frozen dataclasses (checked by core.schema)."""
from __future__ import annotations

from dataclasses import dataclass, field

from core.schema import build, setting


@dataclass(frozen=True)
class SeparateConfig:
    """config.yaml `tools.separate`."""

    segment_seconds: float = setting(6.0, gt=0, le=600)   # offline: segments this long...
    overlap: float = setting(0.25, ge=0, lt=1)            # ...overlapping by this fraction
    batch_size: int = setting(1, ge=1, le=256)            # segments per model call
    stream_block: int = setting(4096, ge=1, le=1 << 20)   # --streaming: frames per engine call
    read_block: int = setting(1 << 16, ge=1024, le=1 << 22)  # frames read / written per step (memory per step)

    @classmethod
    def from_config(cls, config: dict | None = None) -> SeparateConfig:
        return tools_settings(config).separate


@dataclass(frozen=True)
class EvaluateConfig:
    """config.yaml `tools.evaluate`: BSS Eval window and hop."""

    win_seconds: float = setting(1.0, gt=0, le=60)
    hop_seconds: float = setting(1.0, gt=0, le=60)


@dataclass(frozen=True)
class BenchConfig:
    """config.yaml `tools.bench`."""

    offline_seconds: float = setting(10.0, gt=0, le=3600)
    peer_seconds: float = setting(10.0, gt=0, le=3600)
    demucs_segment: float = setting(7.8, gt=0, le=60)


@dataclass(frozen=True)
class ToolsConfig:
    """config.yaml `tools`."""

    separate: SeparateConfig = field(default_factory=SeparateConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)


def tools_settings(config: dict | None = None) -> ToolsConfig:
    """The `tools` section of `config` (default: config.yaml), checked."""
    if config is None:
        import core
        config = core.load_config()
    return build(ToolsConfig, config.get("tools"), "config tools")
