"""The training benchmark reports the per-step breakdown, FLOPs and the measured peak."""
from __future__ import annotations

import json

from training.bench import main
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
