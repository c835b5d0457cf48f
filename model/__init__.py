"""TFSWA-UNet music source separation: STFT front end, network, separator and checkpoints.

Tensors in, tensors out: no file or device I/O except checkpoint load / save.

    >>> import model
    >>> sep = model.build_separator("streaming", stems="vocals,accompaniment")
    >>> stems = sep(wav)            # (B, C, N) -> (B, S, C, N)
"""
from __future__ import annotations

from pathlib import Path

from .checkpoint import CHECKPOINT_VERSION, load_checkpoint, read_checkpoint, save_checkpoint
from .config import ModelConfig, load_config, model_config, preset_names, resolve_stems, stem_merges
from .errors import CheckpointError, ConfigError, UserError
from .separator import Separator
from .stft import STFT
from .unet import TFSWAUNet

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "weights" / "streaming_default.ckpt"


def build_separator(preset: str = "streaming", stems=None, config: dict | None = None) -> Separator:
    """A separator with freshly initialised weights from a preset in `config.yaml`.

    `stems`: None (the preset's), a stem-set name (`karaoke`, `four`) or a list / comma list."""
    return Separator(model_config(preset, config, stems))


__all__ = [
    "CHECKPOINT_VERSION", "CheckpointError", "ConfigError", "DEFAULT_CHECKPOINT", "ModelConfig", "STFT",
    "Separator", "TFSWAUNet", "UserError", "build_separator", "load_checkpoint", "load_config",
    "model_config", "preset_names", "read_checkpoint", "resolve_stems", "save_checkpoint", "stem_merges",
]
