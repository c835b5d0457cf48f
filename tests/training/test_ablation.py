"""The data-ablation harness end to end on synthetic data (tiny preset, 1 step per arm), resume, bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from training.recipes.ablation import main

SR = 44100
SMALL = ["--preset", "tiny", "--steps", "1", "--set", "training.batch_size=1", "--set", "training.segment_seconds=0.2",
         "--set", "training.validation.segment_seconds=0.2", "--set", "training.validation.segments_per_track=1",
         "--set", "training.num_workers=0", "--set", "training.data.synthetic_tracks=2",
         "--set", "training.data.synthetic_valid=1", "--set", "training.data.synthetic_seconds=1.0"]


def write_eval_track(tmp_path, seed: int):
    """tmp_path/eval/t/{vocals,accompaniment}.wav: 1 s of seeded stereo noise each, the arms' evaluation set."""
    rng = np.random.default_rng(seed)
    track = tmp_path / "eval" / "t"
    track.mkdir(parents=True)
    for stem in ("vocals", "accompaniment"):
        sf.write(track / f"{stem}.wav", rng.normal(0, 0.1, (SR, 2)).astype(np.float32), SR, subtype="FLOAT")


def test_an_arm_trains_evaluates_summarises_and_is_not_redone(tmp_path, capsys):
    write_eval_track(tmp_path, 0)
    out = tmp_path / "abl"
    args = ["--out", str(out), "--arm", "a=synthetic", "--eval", f"folder:{tmp_path / 'eval'}", *SMALL]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "\n| a | synthetic | 1 |" in table, table
    summary = json.loads((out / "summary.json").read_text())
    assert [r["arm"] for r in summary] == ["a"] and summary[0]["steps"] == 1
    agg = summary[0]["eval"][f"folder:{tmp_path / 'eval'}"]
    assert set(agg) == {"model", "mixture"} and np.isfinite(agg["model"]["vocals"]["SDR"])
    stamp = (out / "a" / "ablation.json").stat().st_mtime_ns
    assert main(args) == 0  # finished arms are not trained again
    assert (out / "a" / "ablation.json").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("bad", [["--arm", "x"], ["--arm", "a/b=songs"], ["--steps", "0"], ["--set", "nokey"]])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, bad):
    assert main(["--out", str(tmp_path / "o"), *bad]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_failing_arm_is_one_line_with_the_log(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "o"), "--arm", "a=nonsense", *SMALL]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "ablation.log" in err and "nonsense" in err


def test_equal_compute_arms_stop_on_their_cpu_budget_with_their_own_settings(tmp_path, capsys):
    write_eval_track(tmp_path, 1)
    out = tmp_path / "abl"
    small = [a if a != "1" else "100000" for a in SMALL]   # a schedule far longer than the budget
    args = ["--out", str(out), "--arm", "a=synthetic", "--arm", "b=synthetic", "--budget-minutes", "0.03",
            "--arm-set", "b:training.optimizer.lr=0.002", "--eval", f"folder:{tmp_path / 'eval'}", *small]
    assert main(args) == 0
    summary = {r["arm"]: r for r in json.loads((out / "summary.json").read_text())}
    for arm in ("a", "b"):
        r = summary[arm]
        assert 0 < r["steps"] < 100000 and r["budget_cpu_s"] == pytest.approx(1.8)
        assert r["cpu_time_s"] >= 1.0, r   # trained until (about) the budget, not one step
    assert summary["b"]["settings"] == {"training.optimizer.lr": 0.002} and summary["a"]["settings"] == {}
    assert "lr: 0.002" in (out / "b" / "config.yaml").read_text()
    assert "training.optimizer.lr=0.002" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [(["--budget-minutes", "0"], "--budget-minutes: expected minutes > 0"),
                                          (["--arm-set", "zz:training.seed=1"], "--arm-set 'zz:training.seed=1'"),
                                          (["--init", "/nonexistent.ckpt"], "expected a checkpoint file")])
def test_bad_budget_arguments_exit_2(tmp_path, capsys, bad, message):
    assert main(["--out", str(tmp_path / "o"), *bad]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
