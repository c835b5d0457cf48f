"""Offline training of the separator presets: `python -m training` (see README "Training").

Data (`training.data`), losses (`training.losses`), the loop with checkpoints, resume and DDP
(`training.trainer`), synthetic test stems (`training.synthetic`), the shard cache of generated
data (`training.cache`, filled by `python -m training.render`) and a throughput benchmark
(`python -m training.bench`).
"""
from __future__ import annotations

import os
import sys

# Read by libgomp when torch loads (this package loads before torch under `python -m training`):
# OpenMP threads waiting at a barrier sleep instead of spinning. On a shared or small CPU, spinning
# threads steal the cores the others need: a 2-thread tiny step measured 4x slower with the default
# policy than with PASSIVE on our shared 2-core machine (README "Training throughput"). Set the
# variable yourself to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if sys.argv[:1] == ["-m"]:   # being imported for `python -m ...`: a Ctrl-C while torch loads is one line
    from core.signals import quiet_startup
    quiet_startup()

from core.config import declare_section

COMMAND = "training"               # `python -m training`: the config sections it reads
declare_section("training", "training.config:TrainConfig", (COMMAND,))
declare_section("songs", "training.songs.settings:SongsConfig", (COMMAND,))
declare_section("real_vocals", "training.real_vocals:RealVocalsConfig", (COMMAND,))

from .config import TrainConfig, train_config
from .data import DataError, build_datasets, build_source
from .losses import MultiResolutionSTFTLoss, SeparationLoss, batch_sdr
from .trainer import RunSpec, Trainer, TrainingError, train

__all__ = ["DataError", "MultiResolutionSTFTLoss", "RunSpec", "SeparationLoss", "TrainConfig", "Trainer",
           "TrainingError", "batch_sdr", "build_datasets", "build_source", "train", "train_config"]
