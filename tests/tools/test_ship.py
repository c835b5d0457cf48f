"""`python -m tools.ship`: the gate decides from measured streaming scores, records both sides, and replaces the
default only when it passes. Tiny random checkpoints, a generated evaluation track, the stempeg demo clip."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import model
from model.checkpoint import save_checkpoint
from tools.ship import decide, main

SR = 44100


def _checkpoint(path: Path, seed: int, **meta) -> Path:
    torch.manual_seed(seed)
    save_checkpoint(model.build_separator("tiny"), path, steps=7, global_batch=2, segment_seconds=1.0, **meta)
    return path


def _track(root: Path) -> str:
    rng = np.random.default_rng(0)
    t = root / "gate" / "song"
    t.mkdir(parents=True)
    n = np.arange(2 * SR)
    sf.write(t / "vocals.wav", (0.2 * np.sin(2 * np.pi * 440 * n / SR))[:, None].repeat(2, 1).astype(np.float32), SR)
    sf.write(t / "accompaniment.wav", rng.normal(0, 0.05, (2 * SR, 2)).astype(np.float32), SR)
    return f"folder:{root / 'gate'}"


def test_decide_needs_every_gate_stem_better_and_no_check_regression():
    old = {"g": {"vocals": 1.0, "accompaniment": 3.0}, "c": {"vocals": 2.0, "accompaniment": 5.0}}
    assert decide({"g": {"vocals": 1.5, "accompaniment": 3.2}, "c": {"vocals": 1.95, "accompaniment": 5.0}},
                  old, "g", ["c"], 0.1) == (True, [])
    ok, why = decide({"g": {"vocals": 1.5, "accompaniment": 3.0}, "c": old["c"]}, old, "g", ["c"], 0.1)
    assert not ok and why == ["g accompaniment: 3.00 dB is not above the default's 3.00 dB"]
    ok, why = decide({"g": {"vocals": 2.0, "accompaniment": 4.0}, "c": {"vocals": 1.8, "accompaniment": 5.0}},
                     old, "g", ["c"], 0.1)
    assert not ok and why == ["c vocals: 1.80 dB regresses from 2.00 dB"]


def test_a_variants_gate_asks_to_land_within_its_margin_of_the_default():
    old = {"g": {"vocals": 3.0, "accompaniment": 4.0}, "c": {"vocals": 2.0, "accompaniment": 5.0}}
    near = {"g": {"vocals": 1.6, "accompaniment": 2.5}, "c": {"vocals": 0.5, "accompaniment": 4.0}}
    assert decide(near, old, "g", ["c"], 0.1, within=1.5) == (True, [])
    ok, why = decide({**near, "g": {"vocals": 1.4, "accompaniment": 2.5}}, old, "g", ["c"], 0.1, within=1.5)
    assert not ok and why == ["g vocals: 1.40 dB is more than 1.5 dB below the default's 3.00 dB"]
    ok, why = decide({**near, "c": {"vocals": 0.4, "accompaniment": 4.0}}, old, "g", ["c"], 0.1, within=1.5)
    assert not ok and why == ["c vocals: 0.40 dB regresses from 2.00 dB"]


def test_a_variant_that_lands_within_the_margin_goes_to_its_own_file(tmp_path, capsys):
    reference = _checkpoint(tmp_path / "default.ckpt", 0)
    before = reference.read_bytes()
    candidate = _checkpoint(tmp_path / "variant.ckpt", 0, hours_seen=0.5)     # the same weights: within any margin
    to = tmp_path / "weights" / "variant_default.ckpt"
    to.parent.mkdir()
    record = tmp_path / "record.json"
    gate = _track(tmp_path)
    assert main([str(candidate), "--default", str(reference), "--within", "1.5", "--to", str(to),
                 "--json", str(record), "--gate", gate, "--check", gate]) == 0
    assert f"ship gate passed; wrote {to}" in capsys.readouterr().out
    assert reference.read_bytes() == before
    meta = torch.load(to, weights_only=False)["metadata"]
    assert meta["reference_default"] == {"path": str(reference), "within_db": 1.5} and meta["hours_seen_total"] == 0.5
    entry = json.loads(record.read_text())[-1]
    assert entry["passed"] and entry["within_db"] == 1.5 and entry["target"] == str(to)


def test_a_candidate_no_better_than_the_default_is_recorded_and_not_shipped(tmp_path, capsys):
    default = _checkpoint(tmp_path / "default.ckpt", 0)
    before = default.read_bytes()
    record = tmp_path / "record.json"
    gate = _track(tmp_path)
    args = [str(default), "--default", str(default), "--json", str(record), "--gate", gate, "--check", gate]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ship gate failed" in out and "the default stays" in out
    assert default.read_bytes() == before
    entry = json.loads(record.read_text())[-1]
    assert not entry["passed"] and entry["gate"] == gate and entry["checks"] == [gate]
    cand, dflt = entry["candidate"], entry["default"]
    assert cand["scores"][gate]["model"] == dflt["scores"][gate]["model"]       # the same weights score the same
    assert set(cand["scores"][gate]) == {"model", "mixture", "oracle"} and set(dflt["scores"][gate]) == {"model"}
    assert cand["training"]["steps"] == 7 and cand["training"]["hours_seen_total"] == pytest.approx(7 * 2 / 3600, abs=1e-3)
    # a second gate run keeps the first entry; --table prints both
    assert main([*args, "--dry-run"]) == 0
    capsys.readouterr()
    assert len(json.loads(record.read_text())) == 2
    assert main(["--table", str(record)]) == 0
    table = capsys.readouterr().out
    assert table.count("| mixture (baseline) |") == 2 and f"| {gate} |" in table


@pytest.mark.parametrize("args, message", [([], "expected a CANDIDATE checkpoint"),
                                           (["/nonexistent.ckpt"], "CANDIDATE /nonexistent.ckpt: expected a checkpoint file"),
                                           (["--table", "/nonexistent.json"], "expected a record written by"),
                                           (["x", "--tolerance", "-1"], "--tolerance: expected 0..10 dB"),
                                           (["x", "--within", "1.5"], "--within and --to: expected both"),
                                           (["x", "--within", "1.5", "--to", "model/weights/streaming_default.ckpt"],
                                            "expected another file than --default")])
def test_bad_arguments_are_one_line_errors(capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
