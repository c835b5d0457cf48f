"""How a run starts and stops for a campaign: --init from a checkpoint's weights, --stop-after, the STOP file,
checkpoints by the clock. tiny preset, 0.1 s synthetic segments (tests/training/conftest.py)."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import torch

import model
from training.__main__ import main
from training.trainer import STOP_FILE, prior_hours


def _run(config: Path, out: Path, *extra: str) -> int:
    return main(["--config", str(config), "--preset", "tiny", "--data", "synthetic", "--out", str(out), "--device", "cpu", *extra])


def _meta(path: Path) -> dict:
    return model.load_checkpoint(path).metadata


def test_init_starts_a_new_run_from_the_checkpoints_weights_and_counts_its_hours(tmp_path, config_path):
    first = tmp_path / "first"
    assert _run(config_path, first, "--steps", "4") == 0
    # --stop-at 0 is not a thing; a 1-step run with lr ~ 0 shows where the weights started
    tuned = tmp_path / "tuned"
    assert _run(config_path, tuned, "--steps", "2", "--init", str(first / "last.ckpt"), "--lr", "1e-12") == 0
    a, b = model.load_checkpoint(first / "last.ckpt").state_dict(), model.load_checkpoint(tuned / "last.ckpt").state_dict()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    meta, before = _meta(tuned / "last.ckpt"), _meta(first / "last.ckpt")
    assert meta["init"]["path"] == str(first / "last.ckpt") and meta["init"]["steps"] == 4
    assert meta["init"]["hours_seen"] == pytest.approx(before["hours_seen"], abs=1e-4) and before["hours_seen"] > 0
    assert prior_hours(meta) == pytest.approx(meta["hours_seen"] + before["hours_seen"], abs=1e-4)
    # the resumed run keeps the init record
    assert main(["--resume", str(tuned), "--steps", "3", "--device", "cpu"]) == 0
    assert _meta(tuned / "last.ckpt")["init"] == meta["init"]


def test_init_refuses_another_network_and_a_resumed_run(tmp_path, config_path, capsys):
    first = tmp_path / "first"
    assert _run(config_path, first, "--steps", "1") == 0
    code = main(["--config", str(config_path), "--preset", "lowlatency", "--data", "synthetic", "--out",
                 str(tmp_path / "other"), "--device", "cpu", "--steps", "1", "--init", str(first / "last.ckpt")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--init" in err and "network shapes" in err and len(err.splitlines()) == 1
    assert main(["--resume", str(first), "--steps", "2", "--init", str(first / "last.ckpt"), "--device", "cpu"]) == 2
    assert "a resumed run keeps the weights" in capsys.readouterr().err
    assert _run(config_path, tmp_path / "x", "--steps", "1", "--init", str(tmp_path / "missing.ckpt")) == 2
    assert "expected a checkpoint file" in capsys.readouterr().err
    assert _run(config_path, tmp_path / "y", "--steps", "1", "--stop-after", "0") == 2
    assert "--stop-after: expected seconds > 0" in capsys.readouterr().err


def test_prior_hours_of_a_checkpoint_without_the_field():
    assert prior_hours({"steps": 500, "global_batch": 8, "segment_seconds": 3.0}) == pytest.approx(500 * 8 * 3 / 3600)


def test_stop_after_checkpoints_and_resume_continues(tmp_path, config_path):
    out = tmp_path / "run"
    assert _run(config_path, out, "--steps", "100000", "--stop-after", "2", "--json") == 0
    step = _meta(out / "last.ckpt")["steps"]
    assert 0 < step < 100000
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert max(e["step"] for e in lines if "loss" in e) == step   # the last step was logged, not lost
    assert main(["--resume", str(out), "--stop-after", "1", "--device", "cpu"]) == 0
    assert _meta(out / "last.ckpt")["steps"] > step


def test_a_stop_file_ends_the_run_after_its_step_with_a_checkpoint(tmp_path, config_path):
    out = tmp_path / "run"
    out.mkdir()

    def ask_to_stop() -> None:
        deadline = time.time() + 60
        while not (out / "metrics.jsonl").exists() and time.time() < deadline:
            time.sleep(0.05)
        (out / STOP_FILE).touch()

    t = threading.Thread(target=ask_to_stop)
    t.start()
    assert _run(config_path, out, "--steps", "100000") == 0
    t.join()
    assert not (out / STOP_FILE).exists()
    step = _meta(out / "last.ckpt")["steps"]
    assert 0 < step < 100000


def test_checkpoint_minutes_writes_last_ckpt_by_the_clock(tmp_path, make_config):
    # step-based checkpoints far apart; a clock interval of 0.6 s must still write last.ckpt during the run
    config = make_config(**{"logging.checkpoint_interval": 10 ** 6, "logging.checkpoint_minutes": 0.01,
                            "steps_per_epoch": 10 ** 6})
    out = tmp_path / "run"
    saves = []

    def watch() -> None:
        last = None
        deadline = time.time() + 120
        while time.time() < deadline and not (out / "done").exists():
            ck = out / "last.ckpt"
            if ck.exists() and ck.stat().st_mtime_ns != last:
                last = ck.stat().st_mtime_ns
                saves.append(last)
            time.sleep(0.05)

    t = threading.Thread(target=watch)
    t.start()
    try:
        assert _run(config, out, "--steps", "100000", "--stop-after", "4") == 0
    finally:
        (out / "done").touch()
        t.join()
    assert len(saves) >= 2, f"last.ckpt written {len(saves)} times in a 4 s run with a 0.6 s interval"
