"""Offline training of the separator presets: `python -m training` (see README "Training").

Data (`training.data`), losses (`training.losses`), the loop with checkpoints, resume and DDP
(`training.trainer`), synthetic test stems (`training.synthetic`) and a throughput benchmark
(`python -m training.bench`).
"""
from __future__ import annotations

import sys

if sys.argv[:1] == ["-m"]:   # being imported for `python -m ...`: a Ctrl-C while torch loads is one line
    from model.signals import quiet_startup
    quiet_startup()

from .config import TrainConfig, train_config
from .data import DataError, build_datasets, build_source
from .losses import MultiResolutionSTFTLoss, SeparationLoss, batch_sdr
from .trainer import RunSpec, Trainer, TrainingError, train

__all__ = ["DataError", "MultiResolutionSTFTLoss", "RunSpec", "SeparationLoss", "TrainConfig", "Trainer",
           "TrainingError", "batch_sdr", "build_datasets", "build_source", "train", "train_config"]
