"""Shared fixtures: small deterministic models and signals."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import model


@pytest.fixture(autouse=True, scope="session")
def _training_data_cache(tmp_path_factory):
    """Generated training data renders into a per-session folder, never the user's cache (subprocesses inherit it)."""
    before = os.environ.get("TFSWA_CACHE_DIR")
    os.environ["TFSWA_CACHE_DIR"] = str(tmp_path_factory.mktemp("training-data-cache"))
    yield
    if before is None:
        os.environ.pop("TFSWA_CACHE_DIR", None)
    else:
        os.environ["TFSWA_CACHE_DIR"] = before


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    np.random.seed(0)
    # One intra-op thread: the tests run tiny models, and on a busy 2-core host OpenMP threads spinning
    # against other processes made them 10-100x slower (a 2 s separation took 40-150 s instead of 1-2 s).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_separator():
    """Causal `tiny` preset with random weights, eval mode."""
    return model.build_separator("tiny").eval()


def random_audio(channels: int, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.3 * torch.randn(1, channels, n, generator=g)
