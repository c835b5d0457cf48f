"""The training benchmark reports the per-step breakdown, FLOPs and the measured peak."""
from __future__ import annotations

import json

import pytest

import core
from training.bench import main, parse_sets
from training.timing import PHASES


def test_bench_reports_breakdown_flops_and_peak(config_path, capsys):
    assert main(["--presets", "tiny", "--device", "cpu", "--batch-size", "2", "--seconds", "0.2", "--steps", "1",
                 "--warmup", "0", "--peak-size", "256", "--config", str(config_path), "--json"]) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    r = json.loads(line)
    assert set(r["phases_s"]) == set(PHASES)
    assert all(r["phases_s"][k] > 0 for k in ("data", "forward", "losses", "backward", "optimizer", "validation"))
    assert r["gflop_per_step"] > 0 and r["gflops"] > 0 and r["peak_matmul_gflops"] > 0 and 0 < r["fraction_of_peak"]
    assert r["segments_per_s"] > 0 and r["segments_per_s_end_to_end"] <= r["segments_per_s"] + 1e-9
    assert r["batch_size"] == 2 and r["segment_seconds"] == 0.2 and r["cpu_user_s_per_step"] > 0


def test_bench_text_output_and_bad_preset(config_path, capsys):
    assert main(["--presets", "tiny", "--device", "cpu", "--batch-size", "1", "--seconds", "0.2", "--steps", "1",
                 "--warmup", "0", "--peak-size", "128", "--config", str(config_path)]) == 0
    out = capsys.readouterr().out
    assert "per step (ms): data" in out and "% of the measured matmul peak" in out
    assert main(["--presets", "nope", "--device", "cpu", "--config", str(config_path)]) == 2
    assert "nope" in capsys.readouterr().err


def test_compare_runs_baseline_and_new_path_and_reports_their_ratio(config_path, capsys):
    assert main(["--presets", "tiny", "--device", "cpu", "--batch-size", "2", "--seconds", "0.2", "--steps", "1",
                 "--warmup", "0", "--peak-size", "128", "--no-flops", "--config", str(config_path), "--json",
                 "--baseline-set", "micro_batch=1", "--set", "micro_batch=2"]) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    c = json.loads(line)
    base, new = c["baseline"], c["new"]
    assert (c["baseline_set"], c["new_set"]) == ({"micro_batch": 1}, {"micro_batch": 2})
    assert (base["micro_batch"], new["micro_batch"]) == (1, 2) and base["batch_size"] == new["batch_size"] == 2
    assert base["segments_per_s"] > 0 and new["segments_per_s"] > 0 and base["gflops"] is None
    assert c["ratio"] == pytest.approx(new["segments_per_s"] / base["segments_per_s"], abs=1e-4)
    assert c["ratio_end_to_end"] == pytest.approx(new["segments_per_s_end_to_end"] / base["segments_per_s_end_to_end"], abs=1e-4)
    assert c["ratio_audio_seconds"] == pytest.approx(new["audio_seconds_per_s"] / base["audio_seconds_per_s"], rel=1e-2)
    assert c["ratio_cpu_time"] == pytest.approx(new["segments_per_cpu_s"] / base["segments_per_cpu_s"], rel=1e-3)
    assert 0 < base["cpu_per_wall"] and 0 < new["cpu_per_wall"]


def test_compare_text_output_and_bad_settings(config_path, capsys):
    assert main(["--presets", "tiny", "--device", "cpu", "--batch-size", "1", "--seconds", "0.2", "--steps", "1",
                 "--warmup", "0", "--peak-size", "128", "--no-flops", "--config", str(config_path), "--compare",
                 "--set", "cpu_amp=bf16"]) == 0
    out = capsys.readouterr().out
    assert "baseline (the common flags only):" in out and "new (cpu_amp=bf16):" in out and "amp bf16" in out
    assert "tiny: new / baseline = " in out
    assert main(["--presets", "tiny", "--device", "cpu", "--config", str(config_path), "--set", "nope=1"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["--presets", "tiny", "--device", "cpu", "--config", str(config_path), "--baseline-set", "micro_batch"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_settings_are_read_as_yaml_with_words_kept():
    assert parse_sets(["compile=true", "cpu_amp=off", "optimizer.lr=1e-3", "micro_batch=2"], "--set") == {
        "compile": True, "cpu_amp": "off", "optimizer.lr": 1e-3, "micro_batch": 2}
    with pytest.raises(core.ConfigError):
        parse_sets(["=1"], "--set")
