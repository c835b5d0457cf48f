"""The project's one checkpoint format.

A checkpoint is a `torch.save`d dict:
    format          "tfswa-separator"
    format_version  CHECKPOINT_VERSION
    class           "Separator"
    config          ModelConfig.to_dict(): network geometry, STFT, sample rate, stems
    state_dict      weights
    metadata        free-form training metadata (data, steps, time, hardware, ...)
Loading checks all of it and raises `CheckpointError` saying exactly what does not match.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import torch

from core.errors import CheckpointError, ConfigError
from core.files import write_bytes

from .config import ModelConfig
from .separator import Separator

CHECKPOINT_FORMAT = "tfswa-separator"
CHECKPOINT_VERSION = 1


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """torch.save, written through core.files: serialised in memory first (torch's zip writer turns a
    failed write into an opaque error), then to a temporary beside `path`, fsynced and renamed over it.
    A full disk or a signal leaves the previous file as it was; the file gets the usual 0644 mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer.getbuffer())


def checkpoint_dict(separator: Separator, **metadata: Any) -> dict[str, Any]:
    return {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "class": type(separator).__name__,
        "config": separator.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in separator.state_dict().items()},
        "metadata": dict(metadata),
    }


def save_checkpoint(separator: Separator, path: str | Path, **metadata: Any) -> None:
    """Save `separator` with `metadata` to `path` atomically."""
    atomic_torch_save(checkpoint_dict(separator, **metadata), path)


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and validate the outer structure of a checkpoint file -> its dict."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path} (expected a .ckpt file written by this project)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({first[:160]})") from None
    except Exception as e:  # noqa: BLE001 - the weights-only unpickler raises many types for foreign files
        raise CheckpointError(f"checkpoint {path} is not a {CHECKPOINT_FORMAT} checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint (no 'format' marker)")
    version = ckpt.get("format_version")
    if version != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {version}; this build reads version {CHECKPOINT_VERSION}")
    if ckpt.get("class") != Separator.__name__:
        raise CheckpointError(f"checkpoint {path} holds class {ckpt.get('class')!r}; expected {Separator.__name__!r}")
    for key in ("config", "state_dict"):
        if not isinstance(ckpt.get(key), dict):
            raise CheckpointError(f"checkpoint {path} lacks its {key!r} section")
    return ckpt


def separator_from_dict(ckpt: dict[str, Any], where: str = "checkpoint") -> Separator:
    try:
        cfg = ModelConfig.from_dict(dict(ckpt["config"]), name=ckpt["config"].get("name", "checkpoint"),
                                    where="config")
    except ConfigError as e:
        raise CheckpointError(f"{where}: its config does not match this build: {e}") from None
    separator = Separator(cfg)
    expected = separator.state_dict()
    weights = ckpt["state_dict"]
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong = sorted(k for k in set(expected) & set(weights) if tuple(expected[k].shape) != tuple(weights[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} tensors of the wrong shape (e.g. {k}: {tuple(weights[k].shape)} vs {tuple(expected[k].shape)})")
        raise CheckpointError(f"{where}: weights do not match its config: " + "; ".join(parts))
    if not all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point()):
        raise CheckpointError(f"{where}: weights contain NaN or infinity")
    separator.load_state_dict(weights)
    metadata = ckpt.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{where}: its metadata is a {type(metadata).__name__}; expected a mapping")
    separator.metadata = dict(metadata)
    return separator.eval()


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Separator:
    """Load a separator (in eval mode) from a checkpoint; `separator.metadata` holds its metadata."""
    ckpt = read_checkpoint(path, map_location)
    return separator_from_dict(ckpt, where=f"checkpoint {path}").to(map_location)
