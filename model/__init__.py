"""TFSWA-UNet music source separation: STFT front end, network, separator and checkpoints.

Tensors in, tensors out: no file or device I/O except checkpoint load / save.

    >>> import model
    >>> sep = model.build_separator("streaming", stems="vocals,accompaniment")
    >>> stems = sep(wav)            # (B, C, N) -> (B, S, C, N)

The torch-backed names (Separator, load_checkpoint, ...) are imported on first use, so that
`model.config` loads without torch: the CLIs install their signal handlers (`core.signals`) before the
seconds-long torch import. Errors, files, signals and config loading are `core`'s, below this package.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from core.errors import UserError

from .config import ModelConfig, model_config, preset_names, resolve_stems, stem_merges

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "weights" / "streaming_default.ckpt"

_LAZY = {
    "CHECKPOINT_VERSION": ".checkpoint", "load_checkpoint": ".checkpoint", "read_checkpoint": ".checkpoint",
    "save_checkpoint": ".checkpoint", "Separator": ".separator", "STFT": ".stft", "TFSWAUNet": ".unet",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'model' has no attribute {name!r}")


def resolve_separator(checkpoint=None, preset: str | None = None, config: dict | None = None,
                      warn=None) -> tuple[Any, str]:
    """The separator a command runs, and where it came from (for messages and stats).

    `checkpoint` wins; `preset` builds that preset with random weights (tests, benchmarks); neither:
    DEFAULT_CHECKPOINT when it exists, else the `streaming` preset with random weights, announced
    through `warn(message)` because its output is not a separation."""
    from .checkpoint import load_checkpoint
    if checkpoint and preset:
        raise UserError("expected either --checkpoint or --preset, got both")
    if checkpoint:
        return load_checkpoint(checkpoint), str(checkpoint)
    if preset:
        return build_separator(preset, config=config).eval(), f"preset {preset!r} with random weights"
    if DEFAULT_CHECKPOINT.is_file():
        return load_checkpoint(DEFAULT_CHECKPOINT), str(DEFAULT_CHECKPOINT)
    if warn is not None:
        warn("!" * 78 + f"\n!! WARNING: no checkpoint at {DEFAULT_CHECKPOINT};\n!! running the 'streaming' preset "
             "with RANDOM weights: the output is NOT a separation.\n" + "!" * 78)
    return build_separator("streaming", config=config).eval(), "preset 'streaming' with RANDOM weights"


def build_separator(preset: str = "streaming", stems=None, config: dict | None = None):
    """A separator with freshly initialised weights from a preset in `config.yaml`.

    `stems`: None (the preset's), a stem-set name (`karaoke`, `four`) or a list / comma list."""
    from .separator import Separator
    return Separator(model_config(preset, config, stems))


__all__ = [
    "CHECKPOINT_VERSION",
    "DEFAULT_CHECKPOINT",
    "STFT",
    "ModelConfig",
    "Separator",
    "TFSWAUNet",
    "build_separator",
    "load_checkpoint",
    "model_config",
    "preset_names",
    "read_checkpoint",
    "resolve_separator",
    "resolve_stems",
    "save_checkpoint",
    "stem_merges",
]
