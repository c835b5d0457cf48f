"""Small, fast training configs: tiny preset, 0.1 s segments, synthetic data, no workers."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

import core


def small_config(path: Path, **overrides) -> Path:
    """Write the project's config.yaml with a `training:` section shrunk for tests -> its path."""
    c = core.load_config()
    t = c["training"]
    t.update(segment_seconds=0.1, batch_size=2, steps_per_epoch=2, num_workers=0, seed=0, cpu_threads=1)
    t["optimizer"].update(lr=1e-3, warmup_steps=2)
    t["validation"].update(segment_seconds=0.1, segments_per_track=1, batch_size=2, patience=0)
    t["logging"].update(log_interval=1, checkpoint_interval=1, tensorboard=False, progress=False)
    t["data"].update(synthetic_tracks=4, synthetic_valid=1, synthetic_seconds=2.0)
    t["loss"]["mrstft_resolutions"] = [[512, 128], [256, 64]]
    for key, value in overrides.items():
        section = t
        *parents, leaf = key.split(".")
        for p in parents:
            section = section[p]
        section[leaf] = value
    # the small sizes above hold on the CPU too: `--config` is deep-merged over config.yaml, so an empty
    # `cpu:` would keep the project's CPU defaults; repeat this file's values under the same keys instead
    t["cpu"] = {k: t[k] for k in (core.load_config()["training"].get("cpu") or {}) if k in t}
    path.write_text(yaml.safe_dump(c))
    return path


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    """One torch thread: on a shared 2-core host, OpenMP spinning makes 2 threads 10-50x slower."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return small_config(tmp_path / "config.yaml")


@pytest.fixture
def make_config(tmp_path: Path):
    """make_config(name, **overrides) -> path of a small config; keys like "optimizer.lr"."""
    def make(name: str = "c.yaml", **overrides) -> Path:
        return small_config(tmp_path / name, **overrides)
    return make
