"""Training curves: loss and validation SDR against the step, read from a run's metrics.jsonl and drawn
as `curves.png` in the run folder at each validation (`python -m tools.plots training` draws the same)."""
from __future__ import annotations

import json
from pathlib import Path

from core.errors import UserError
from core.figures import figure, save_png


def training_series(lines: list[dict]) -> dict[str, list]:
    """metrics.jsonl entries -> train (step, loss), valid (step, valid_loss) and valid SDR per stem."""
    train = [(e["step"], e["loss"]) for e in lines if "loss" in e and "valid_loss" not in e]
    valid = [e for e in lines if "valid_loss" in e]
    sdr: dict[str, list[tuple[int, float]]] = {}
    for e in valid:
        for stem, v in (e.get("sdr") or {}).items():
            sdr.setdefault(stem, []).append((e["step"], v))
    return {"train": train, "valid": [(e["step"], e["valid_loss"]) for e in valid], "sdr": sdr}


def read_metrics(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: expected a metrics.jsonl written by `python -m training`, found no such file")
    out = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                if i < len(lines) - 1:                   # a torn last line is a run that is still writing
                    raise UserError(f"{path} line {i + 1}: expected JSON, got {line[:60]!r}") from None
    return out


def training_figure(lines: list[dict]):
    """Loss (train and validation) and validation SDR per stem against the step."""
    s = training_series(lines)
    if not s["train"] and not s["valid"]:
        raise UserError("training plot: metrics.jsonl has no loss entries yet")
    fig = figure(10.0, 3.8)
    ax_loss, ax_sdr = fig.subplots(1, 2)
    if s["train"]:
        steps, loss = zip(*s["train"])
        ax_loss.plot(steps, loss, color="#1f77b4", linewidth=1, label="train loss")
    if s["valid"]:
        steps, loss = zip(*s["valid"])
        ax_loss.plot(steps, loss, color="#d62728", marker="o", markersize=3, linewidth=1.2, label="validation loss")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss")
    values = [v for _, v in s["train"] + s["valid"]]
    if values and min(values) > 0 and max(values) / min(values) > 10:
        ax_loss.set_yscale("log")
    ax_loss.legend(fontsize=8)
    ax_loss.grid(alpha=0.3)
    for stem, pts in s["sdr"].items():
        steps, v = zip(*pts)
        ax_sdr.plot(steps, v, marker="o", markersize=3, linewidth=1.2, label=stem)
    ax_sdr.set_xlabel("step")
    ax_sdr.set_ylabel("validation SDR (dB)")
    if s["sdr"]:
        ax_sdr.legend(fontsize=8)
    ax_sdr.grid(alpha=0.3)
    fig.suptitle("training: loss and validation SDR", fontsize=10)
    return fig


def write_training_plot(run_dir: str | Path, name: str = "curves.png") -> Path:
    """curves.png in a run folder, from its metrics.jsonl (called by the trainer at each validation)."""
    run_dir = Path(run_dir)
    return save_png(training_figure(read_metrics(run_dir / "metrics.jsonl")), run_dir / name)
