"""`python -m training` draws curves.png (loss and validation SDR) into its run folder at each validation,
from the metrics.jsonl it writes."""
from __future__ import annotations

import numpy as np
from matplotlib.image import imread

from tools.plots import main as plots_main
from training.__main__ import main
from training.curves import read_metrics, training_series


def test_training_writes_curves_from_its_metrics(tmp_path, config_path):
    run = tmp_path / "run"
    assert main(["--config", str(config_path), "--preset", "tiny", "--data", "synthetic", "--out", str(run),
                 "--device", "cpu", "--steps", "4"]) == 0          # validations at steps 2 and 4
    png = run / "curves.png"
    assert png.stat().st_size > 10_000 and not list(run.glob(".*partial"))
    series = training_series(read_metrics(run / "metrics.jsonl"))
    assert [s for s, _ in series["valid"]] == [2, 4] and set(series["sdr"]) == {"vocals", "accompaniment"}
    assert len(series["train"]) == 4
    again = tmp_path / "again.png"
    assert plots_main(["training", str(run), "--out", str(again)]) == 0
    np.testing.assert_array_equal(imread(png), imread(again))
