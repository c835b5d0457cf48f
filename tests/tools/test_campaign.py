"""`python -m tools.campaign`: the loop trains in chunks and evaluates between them, runs detached, stops with a
checkpoint, and says where it stands. tiny preset, synthetic data, the stempeg demo clip as evaluation set."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import model
from tools.campaign import main

ROOT = Path(__file__).resolve().parents[2]


def _campaign(tmp_path: Path, **plan) -> Path:
    folder = tmp_path / "campaign"
    folder.mkdir()
    recipe = {"training": {
        "steps_per_epoch": 4,
        "logging": {"log_interval": 2, "checkpoint_interval": 4, "tensorboard": False, "progress": False},
        "data": {"cache": {"dir": str(tmp_path / "cache")}},
        "cpu": {"batch_size": 2, "segment_seconds": 0.5, "cpu_threads": 1, "num_workers": 0,
                "data": {"synthetic_tracks": 4, "synthetic_seconds": 4.0, "synthetic_valid": 1},
                "validation": {"segment_seconds": 0.5, "segments_per_track": 1}}}}
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    base = {"preset": "tiny", "stems": ["vocals", "accompaniment"], "recipe": str(folder / "recipe.yaml"),
            "data": ["synthetic"], "steps": 10, "eval_every_minutes": 0.15, "eval_data": "demo"}
    base.update(plan)
    (folder / "plan.yaml").write_text(yaml.safe_dump(base))
    return folder


def _status(folder: Path, capsys) -> dict:
    assert main(["status", "--dir", str(folder), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_loop_trains_in_chunks_evaluates_between_them_and_reports(tmp_path, capsys, monkeypatch):
    pytest.importorskip("stempeg")
    monkeypatch.chdir(ROOT)
    folder = _campaign(tmp_path)
    assert main(["run", "--dir", str(folder)]) == 0
    assert "schedule is done (10 steps)" in capsys.readouterr().out
    sessions = [json.loads(x) for x in (folder / "sessions.jsonl").read_text().splitlines()]
    evals = [json.loads(x) for x in (folder / "evals.jsonl").read_text().splitlines()]
    assert sessions and all(s["exit"] == 0 for s in sessions) and sessions[-1]["to_step"] == 10
    assert sessions[0]["from_step"] == 0 and sessions[0]["hardware"]["cores"] >= 1
    assert [s["from_step"] for s in sessions[1:]] == [s["to_step"] for s in sessions[:-1]]  # resumed, not restarted
    assert evals and set(evals[-1]["sdr"]) == {"vocals", "accompaniment"} and evals[-1]["mode"] == "streaming"
    assert all(isinstance(v, float) for v in evals[-1]["sdr"].values())
    assert (folder / "evals" / f"step-{evals[-1]['step']:06d}.json").is_file()
    s = _status(folder, capsys)
    assert s["step"] == 10 and not s["running"] and s["streaming_eval"] == evals[-1] and s["chunks"] == len(sessions)
    assert s["hours_seen"] == pytest.approx(10 * 2 * 0.5 / 3600, abs=1e-3)
    assert main(["status", "--dir", str(folder)]) == 0
    text = capsys.readouterr().out
    assert "step 10 of 10" in text and "demo --streaming" in text
    # a finished schedule: the loop returns at once
    assert main(["run", "--dir", str(folder)]) == 0
    assert "schedule is done" in capsys.readouterr().out
    assert model.load_checkpoint(folder / "run" / "last.ckpt").metadata["steps"] == 10
    # a second phase: a new run folder from the first phase's last weights, under its own schedule
    plan = yaml.safe_load((folder / "plan.yaml").read_text())
    plan.update(run="run2", init=str(folder / "run" / "last.ckpt"), steps=4)
    (folder / "plan.yaml").write_text(yaml.safe_dump(plan))
    assert _status(folder, capsys)["step"] == 0                  # the new phase has not trained yet
    assert main(["run", "--dir", str(folder)]) == 0
    capsys.readouterr()
    meta = model.load_checkpoint(folder / "run2" / "last.ckpt").metadata
    assert meta["steps"] == 4 and meta["init"]["steps"] == 10
    s = _status(folder, capsys)
    assert s["run"] == "run2" and s["step"] == 4 and s["hours_seen"] == pytest.approx(14 * 2 * 0.5 / 3600, abs=1e-3)
    assert s["hours_seen_this_run"] == pytest.approx(4 * 2 * 0.5 / 3600, abs=1e-3)
    evals2 = [json.loads(x) for x in (folder / "evals.jsonl").read_text().splitlines()][len(evals):]
    assert evals2 and all(e["run"] == "run2" for e in evals2) and s["streaming_eval"] == evals2[-1]
    assert (folder / "evals" / f"run2-step-{evals2[-1]['step']:06d}.json").is_file()
    assert s["chunks"] == sum(json.loads(x).get("run") == "run2" for x in (folder / "sessions.jsonl").read_text().splitlines())
    assert model.load_checkpoint(folder / "run" / "last.ckpt").metadata["steps"] == 10   # phase 1 untouched


def test_start_detaches_and_stop_checkpoints_after_the_current_step(tmp_path, capsys):
    folder = _campaign(tmp_path, steps=10 ** 6, eval_every_minutes=30)
    assert subprocess.run([sys.executable, "-m", "tools.campaign", "start", "--dir", str(folder), "--nice", "5"],
                          check=False, cwd=ROOT, capture_output=True, text=True, timeout=60).returncode == 0
    deadline = time.time() + 120
    while time.time() < deadline:
        s = _status(folder, capsys)
        if s["running"] and (s["latest_step_logged"] or 0) >= 4:
            break
        time.sleep(0.5)
    assert s["running"] and s["phase"] == "train" and 0 < s["next_eval_in_s"] <= 1800
    # a second start is refused while it runs
    assert main(["start", "--dir", str(folder)]) == 2
    assert "already running" in capsys.readouterr().err
    assert main(["stop", "--dir", str(folder), "--wait", "120"]) == 0
    assert "campaign stopped at step" in capsys.readouterr().out
    s = _status(folder, capsys)
    assert not s["running"] and s["step"] >= 4
    sessions = [json.loads(x) for x in (folder / "sessions.jsonl").read_text().splitlines()]
    assert sessions[-1]["exit"] == 0 and sessions[-1]["to_step"] == s["step"]
    assert sessions[-1]["hardware"]["nice"] == min(19, os.nice(0) + 5)
    assert not (folder / "evals.jsonl").exists()           # stopped before its first evaluation
    assert not (folder / "run" / "STOP").exists() and not (folder / "stop-requested").exists()


@pytest.mark.parametrize("plan, message", [
    ("preset: tiny\n", "missing ['data', 'eval_every_minutes', 'steps']"),
    ("preset: tiny\ndata: [synthetic]\nsteps: 0\neval_every_minutes: 1\n", "steps: expected an integer >= 1"),
    ("preset: tiny\ndata: [synthetic]\nsteps: 5\neval_every_minutes: 1\nspeed: 2\n", "unknown ['speed']"),
    ("[", "not valid YAML"),
    ("preset: tiny\ndata: [synthetic]\nsteps: 5\neval_every_minutes: 1\nrun: ../x\n", "run: expected a folder name"),
])
def test_bad_plans_are_one_line_errors(tmp_path, capsys, plan, message):
    (tmp_path / "plan.yaml").write_text(plan)
    assert main(["status", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_no_campaign_folder_is_a_one_line_error(tmp_path, capsys):
    assert main(["start", "--dir", str(tmp_path / "none")]) == 2
    assert "expected a campaign folder with plan.yaml" in capsys.readouterr().err
    assert main(["start", "--dir", str(tmp_path), "--nice", "40"]) == 2
    assert "--nice: expected 0..19" in capsys.readouterr().err
