"""Pictures of the tools' figures, drawn from the JSON they write (matplotlib, no display needed).

    python -m tools.plots bench bench.json --out bench.png             # per-hop compute time vs the hop deadline
    python -m tools.plots evaluate scores.json --out scores.png        # SDR per track and stem vs the baselines
    python -m tools.plots training runs/NAME/metrics.jsonl --out curves.png   # loss and validation SDR
    python -m tools.plots soak soak.json --out soak.png                 # late blocks and latency over a soak

`tools.bench --plot`, `tools.evaluate --plot` and `python -m training` (curves.png in the run folder at each
validation, drawn by `training.curves`) call the same functions with the records they also write as JSON, so a picture always shows
exactly the numbers of its JSON. PNGs are written atomically (temp file + rename).
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from core.errors import UserError, run_cli
from core.figures import figure, save_png
from training.curves import read_metrics, training_figure

ESTIMATE_STYLE = {"mixture": ("#9e9e9e", "s"), "model": ("#1f77b4", "o"), "oracle": ("#2ca02c", "D")}
MODE_COLOURS = {"cached": "#1f77b4", "compiled": "#ff7f0e", "naive": "#9467bd"}


# -- tools.bench -----------------------------------------------------------------------------------
def bench_series(records: list[dict]) -> dict[str, list[tuple[str, np.ndarray, float]]]:
    """preset -> [(mode, per-hop ms, hop ms)] of the streaming records that carry every timed hop (the mode
    says K when a call ran K hops)."""
    out: dict[str, list[tuple[str, np.ndarray, float]]] = {}
    for r in records:
        if r.get("step_ms"):
            label = r["mode"] if r.get("k", 1) == 1 else f"{r['mode']} K={r['k']}"
            out.setdefault(r["preset"], []).append((label, np.asarray(r["step_ms"], np.float64),
                                                    float(r["hop_ms"])))
    if not out:
        raise UserError("bench plot: expected streaming records with per-hop times (`step_ms`), found none")
    return out


def bench_figure(records: list[dict]):
    """One panel per preset: per mode the distribution of per-hop compute time (violin, p50 and p99 marks),
    against the hop deadline (the time one hop of audio lasts)."""
    series = bench_series(records)
    fig = figure(max(4.0, 3.2 * len(series)), 4.2)
    axes = fig.subplots(1, len(series), squeeze=False)[0]
    meta = records[0]
    for ax, (preset, rows) in zip(axes, series.items()):
        data = [np.maximum(t, 1e-3) for _, t, _ in rows]
        parts = ax.violinplot(data, showextrema=False, widths=0.8)
        for body, (mode, _, _) in zip(parts["bodies"], rows):
            body.set_facecolor(MODE_COLOURS.get(mode, "#7f7f7f"))
            body.set_alpha(0.55)
        for i, t in enumerate(data, start=1):
            p50, p99 = np.percentile(t, [50, 99])
            ax.hlines([p50], i - 0.3, i + 0.3, colors="black", linewidth=1.5)
            ax.hlines([p99], i - 0.2, i + 0.2, colors="black", linewidth=1, linestyles=":")
            ax.annotate(f"p99 {p99:.2f}", (i + 0.22, p99), fontsize=7, va="center")
        hop = rows[0][2]
        ax.axhline(hop, color="#d62728", linestyle="--", linewidth=1.2, label=f"hop deadline {hop:.2f} ms")
        ax.set_xticks(range(1, len(rows) + 1), [f"{m}\n{t.size} hops" for m, t, _ in rows])
        ax.set_title(preset, fontsize=10)
        ax.set_ylabel("compute per hop (ms)")
        top = max(float(np.max(t)) for t in data)
        bottom = min(float(np.min(t)) for t in data)
        if top / max(bottom, 1e-3) > 30:
            ax.set_yscale("log")
        ax.legend(loc="upper left", fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"tools.bench: per-hop compute time ({meta.get('device', 'cpu')}, {meta.get('threads', '?')} "
                 f"thread(s)); solid: p50, dotted: p99", fontsize=10)
    return fig


# -- tools.soak ------------------------------------------------------------------------------------
def soak_figure(record: dict):
    """The soak's timeline from its status lines: late blocks and xruns (cumulative) and head-start steps
    above; the total latency and the worker load below."""
    line = record.get("timeline") or []
    if not line:
        raise UserError("soak plot: expected a record with a timeline (`tools.soak --json`), found none")
    t = np.asarray([p["t"] for p in line]) / 60.0
    fig = figure(8.0, 5.2)
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.step(t, [p["late"] for p in line], where="post", color="#d62728", label="late blocks")
    top.step(t, [p["xruns_in"] + p["xruns_out"] for p in line], where="post", color="#7f7f7f", label="xruns (in + out)")
    steps = np.asarray([p["steps"] for p in line])
    for i in np.flatnonzero(np.diff(steps, prepend=0) > 0):
        top.axvline(t[i], color="#2ca02c", linewidth=0.8, alpha=0.7)
    top.plot([], [], color="#2ca02c", label=f"head-start step ({int(steps[-1])})")
    top.set_ylabel("count (cumulative)")
    top.legend(loc="upper left", fontsize=7)
    top.grid(alpha=0.3)
    bottom.plot(t, [p["latency_ms"] for p in line], color="#1f77b4", label="total latency (ms)")
    bottom.set_ylabel("latency (ms)")
    bottom.set_xlabel("minutes")
    bottom.grid(alpha=0.3)
    load = bottom.twinx()
    load.plot(t, [100 * p["load"] for p in line], color="#ff7f0e", linewidth=0.8, alpha=0.8, label="worker load (%)")
    load.set_ylabel("worker load (%)")
    h1, l1 = bottom.get_legend_handles_labels()
    h2, l2 = load.get_legend_handles_labels()
    bottom.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=7)
    extra = f", competing load {100 * record['competing_load']:.0f} %" if record.get("competing_load") else ""
    fig.suptitle(f"tools.soak: {record['minutes']:g} min at {record['rate']} Hz / {record['blocksize']}{extra}: "
                 f"{record['late_blocks']} late of {record['blocks']} blocks", fontsize=10)
    return fig


# -- tools.evaluate --------------------------------------------------------------------------------
def evaluate_series(result: dict, metric: str = "SDR") -> dict[str, dict[str, list[float | None]]]:
    """stem -> estimate -> [score per track (None: NaN), then the aggregate (median over tracks)]."""
    tracks = list(result["tracks"])
    stems: dict[str, dict[str, list[float | None]]] = {}
    for est, per_stem in result["aggregate"].items():
        for stem in per_stem:
            stems.setdefault(stem, {})[est] = [_finite(result["tracks"][t].get(est, {}).get(stem, {}).get(metric))
                                               for t in tracks] + [_finite(per_stem[stem].get(metric))]
    return stems


def _finite(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def evaluate_figure(result: dict, metric: str = "SDR"):
    """Per stem, every estimate it ran (mixture = the floor, model, oracle = the ceiling of magnitude
    masking): bars with their values for one track, else a dot plot with a row per track and the median."""
    series = evaluate_series(result, metric)
    names = list(result["tracks"])
    order = lambda e: list(ESTIMATE_STYLE).index(e) if e in ESTIMATE_STYLE else 9
    if len(names) == 1:
        fig = figure(max(4.5, 3.3 * len(series)), 3.4)
        axes = fig.subplots(1, len(series), squeeze=False)[0]
        for ax, (stem, ests) in zip(axes, series.items()):
            keys = sorted(ests, key=order)
            vals = [np.nan if ests[e][0] is None else ests[e][0] for e in keys]
            bars = ax.bar(keys, vals, color=[ESTIMATE_STYLE.get(e, ("#7f7f7f",))[0] for e in keys])
            ax.bar_label(bars, labels=[f"{v:+.2f}" for v in vals], fontsize=8, padding=2)
            ax.axhline(0, color="#555555", linewidth=0.8)
            ax.set_title(stem, fontsize=10)
            ax.set_ylabel(f"{metric} (dB)")
            ax.margins(y=0.18)
            ax.grid(axis="y", alpha=0.3)
    else:
        rows = [*names, "median"]
        fig = figure(max(4.5, 3.6 * len(series)), 1.4 + 0.32 * len(rows))
        axes = fig.subplots(1, len(series), squeeze=False, sharey=True)[0]
        y = np.arange(len(rows))[::-1]
        for ax, (stem, ests) in zip(axes, series.items()):
            for est in sorted(ests, key=order):
                colour, marker = ESTIMATE_STYLE.get(est, ("#7f7f7f", "x"))
                vals = np.array([np.nan if v is None else v for v in ests[est]])
                ax.scatter(vals, y, color=colour, marker=marker, label=est, zorder=3, s=28)
            for row in range(len(rows)):
                vals = [v[row] for v in ests.values() if v[row] is not None]
                if vals:
                    ax.hlines(y[row], min(vals), max(vals), colors="#dddddd", zorder=1)
            ax.axhline(0.5, color="#bbbbbb", linewidth=0.8)          # the median below, the tracks above
            ax.set_title(stem, fontsize=10)
            ax.set_xlabel(f"{metric} (dB)")
            ax.grid(axis="x", alpha=0.3)
        axes[0].set_yticks(y, rows, fontsize=8)
        axes[-1].legend(loc="lower right", fontsize=7)
    meta = result.get("meta") or {}
    model_name = str(meta.get("model", "model"))
    model_name = Path(model_name).name if "/" in model_name else model_name
    what = f"{len(names)} tracks" if len(names) > 1 else names[0]
    fig.suptitle(f"tools.evaluate: {metric} ({model_name}; {meta.get('mode', '')}; {what})", fontsize=9)
    return fig


# -- CLI -------------------------------------------------------------------------------------------
def _read_json(path: str) -> object:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{path}: expected a JSON file written by the tool, found no such file")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: expected JSON ({e})") from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.plots", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=("bench", "evaluate", "training", "soak"))
    ap.add_argument("input", help="bench / evaluate: the tool's --json file; training: metrics.jsonl or its run folder")
    ap.add_argument("--out", required=True, help="PNG to write")
    args = ap.parse_args(argv)

    def run() -> int:
        if args.kind == "bench":
            records = _read_json(args.input)
            if not isinstance(records, list):
                raise UserError(f"{args.input}: expected the list of records `tools.bench --json` writes")
            fig = bench_figure(records)
        elif args.kind == "evaluate":
            result = _read_json(args.input)
            if not isinstance(result, dict) or "tracks" not in result or "aggregate" not in result:
                raise UserError(f"{args.input}: expected the object `tools.evaluate --json` writes")
            fig = evaluate_figure(result)
        elif args.kind == "soak":
            record = _read_json(args.input)
            if not isinstance(record, dict):
                raise UserError(f"{args.input}: expected the object `tools.soak --json` writes")
            fig = soak_figure(record)
        else:
            path = Path(args.input)
            fig = training_figure(read_metrics(path / "metrics.jsonl" if path.is_dir() else path))
        print(save_png(fig, args.out))
        return 0
    return run_cli("python -m tools.plots", run)


if __name__ == "__main__":
    from core.signals import exit_fast
    exit_fast(main())
