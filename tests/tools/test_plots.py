"""Pictures from the tools: `tools.bench --plot` and `tools.evaluate --plot` write non-empty PNGs whose data
are the JSON the same run wrote (re-drawing from the JSON file gives the same image, pixel for pixel)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.image import imread

from tools.bench import main as bench_main
from tools.evaluate import main as evaluate_main
from tools.plots import bench_series, evaluate_series
from tools.plots import main as plots_main


def _png(path) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300
    assert img[..., :3].std() > 0.05                    # not a blank canvas
    return img


def test_bench_plot_is_the_json(tmp_path):
    js, png, again = tmp_path / "bench.json", tmp_path / "bench.png", tmp_path / "again.png"
    assert bench_main(["--presets", "tiny", "--modes", "cached,naive", "--hops", "24", "--hops-per-step", "1,2",
                       "--no-offline", "--no-peers", "--json", str(js), "--plot", str(png)]) == 0
    records = json.loads(js.read_text())
    series = bench_series(records)["tiny"]
    assert [m for m, _, _ in series] == ["cached", "cached K=2", "naive"]
    k2 = records[1]
    assert k2["k"] == 2 and k2["latency_ms"] == pytest.approx(records[0]["latency_ms"] + k2["hop_ms"], abs=1e-3)
    assert k2["call_ms_p99"] >= k2["step_ms_p99"]
    for (mode, t, hop), r in zip(series, records):
        np.testing.assert_array_equal(t, r["step_ms"])
        assert hop == r["hop_ms"] and len(t) == r["hops_timed"]
    assert plots_main(["bench", str(js), "--out", str(again)]) == 0
    np.testing.assert_array_equal(_png(png), _png(again))


def test_evaluate_plot_is_the_json(stem_folder, tmp_path):
    js, png, again = tmp_path / "scores.json", tmp_path / "scores.png", tmp_path / "again.png"
    assert evaluate_main([f"folder:{stem_folder}", "--preset", "tiny", "--baseline", "mixture", "--baseline",
                          "oracle", "--json", str(js), "--plot", str(png), "-q"]) == 0
    result = json.loads(js.read_text())
    series = evaluate_series(result)
    assert set(series) == {"vocals", "accompaniment"} and set(series["vocals"]) == {"model", "mixture", "oracle"}
    assert series["vocals"]["oracle"] == [result["tracks"]["song_a"]["oracle"]["vocals"]["SDR"],
                                          result["aggregate"]["oracle"]["vocals"]["SDR"]]
    assert plots_main(["evaluate", str(js), "--out", str(again)]) == 0
    np.testing.assert_array_equal(_png(png), _png(again))


@pytest.mark.parametrize("args,message", [
    (["bench", "/no/such.json", "--out", "x.png"], "no such file"),
    (["training", "/no/such/run", "--out", "x.png"], "metrics.jsonl"),
])
def test_plot_errors_are_one_line(args, message, capsys):
    assert plots_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_plot_into_a_missing_folder_fails_before_the_work(tmp_path, capsys):
    assert bench_main(["--presets", "tiny", "--no-offline", "--no-peers", "--plot", "/no/such/dir/b.png"]) == 2
    assert "folder /no/such/dir does not exist" in capsys.readouterr().err
