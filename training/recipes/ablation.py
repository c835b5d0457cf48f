"""Data ablation at equal steps or equal compute: train one preset on each data mix, evaluate each on real music.

    python -m training.recipes.ablation --out runs/ablation [--preset streaming] [--steps 500] \
        [--arm songs=songs,eif-valid] [--arm songs+real=songs,real-vocals] [--eval eif-valid] [--eval demo]
    python -m training.recipes.ablation --out runs/ablation --budget-minutes 15 --steps 400 \
        --init model/weights/streaming_default.ckpt          # equal CPU time per arm, fine-tuned from the default

Every arm trains the same preset with the same recipe (training/recipes/ablation.yaml merged over
config.yaml: the shipped checkpoint's cheap CPU recipe), seed and schedule (`--steps`), on its own
`--data` specs and, for some default arms, its own settings (`--arm-set ARM:KEY=VALUE` adds more). It trains
all `--steps`, or with `--budget-minutes M` until its training process has used M minutes of CPU time
(`python -m training --stop-after --budget-clock cpu`): equal compute, which on a dedicated core is equal
wall-clock time and stays fair when arms share a loaded machine. Then `tools.evaluate --streaming --baseline
mixture` scores each arm's `last.ckpt` (no checkpoint picked by a validation set that differs between arms)
on every `--eval` data set.
The validation sets: `eif-valid` (the eif validation songs) is part of every default arm, so every arm's
validation curve in `metrics.jsonl` is comparable too; they are never trained on (training.real_vocals
refuses them). A finished arm (its summary in `ARM/ablation.json`) is skipped when the command is run again,
so an interrupted ablation resumes arm by arm; a half-trained arm continues with `python -m training --resume`.

Writes OUT/config.yaml (the merged config), OUT/ARM/ (the run folder, `eval-*.json`, `ablation.json`) and
OUT/summary.json + a Markdown table on stdout: arm, data, steps, hours of audio seen, wall time, and the
model's SDR next to the mixture's per evaluation set and stem.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

import core
from core.config import merge_config, nested
from model.checkpoint import read_checkpoint

DEFAULT_ARMS = {
    "songs": ["songs", "eif-valid"],
    "songs+real": ["songs", "real-vocals"],
    "real": ["real-vocals"],
}
# default arms' own settings (dotted config keys), e.g. the augmentation an "all sources, augmented" arm adds
ARM_SETTINGS: dict[str, dict[str, object]] = {}
RECIPE = Path(__file__).with_name("ablation.yaml")


def merged_config(recipe: Path, overrides: dict) -> dict:
    """config.yaml with the recipe's sections (and command-line overrides) merged over it."""
    cfg = merge_config(core.load_config(), core.load_config(recipe))
    return merge_config(cfg, overrides)


def _run(cmd: list[str], log: Path) -> None:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    with log.open("a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, check=False)
    if r.returncode != 0:
        tail = log.read_text().strip().splitlines()[-1:] or ["?"]
        raise core.UserError(f"ablation: `{' '.join(cmd[2:5])} ...` failed (exit {r.returncode}): {tail[0]} "
                              f"(full log: {log})")


def run_arm(name: str, specs: list[str], args, config_path: Path, cfg: dict, settings: dict | None = None) -> dict:
    out = args.out / name
    done = out / "ablation.json"
    if done.is_file():
        return json.loads(done.read_text())
    out.mkdir(parents=True, exist_ok=True)
    log = out / "ablation.log"
    if settings:  # this arm's own config: the shared one with its settings merged over
        cfg = merge_config(cfg, nested(settings))
        config_path = out / "config.yaml"
        config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    py = [sys.executable, "-m"]
    spent = 0.0
    if (out / "last.ckpt").is_file():
        cmd = py + ["training", "--resume", str(out), "--steps", str(args.steps)]
        spent = float((read_checkpoint(out / "last.ckpt").get("metadata") or {}).get("cpu_time_s", 0.0))
    else:
        cmd = py + ["training", "--config", str(config_path), "--preset", args.preset, "--stems",
                    "vocals,accompaniment", "--out", str(out), "--steps", str(args.steps)]
        if args.init:
            cmd += ["--init", str(args.init)]
    for s in specs:
        cmd += ["--data", s]
    if args.budget_minutes:
        cmd += ["--stop-after", f"{max(1.0, 60 * args.budget_minutes - spent):.0f}", "--budget-clock", "cpu"]
    if args.device:
        cmd += ["--device", args.device]
    meta = (read_checkpoint(out / "last.ckpt").get("metadata") or {}) if spent else {}
    if not (args.budget_minutes and spent >= 60 * args.budget_minutes) and meta.get("steps", 0) < args.steps:
        _run(cmd, log)
    ckpt = read_checkpoint(out / "last.ckpt")
    meta = ckpt.get("metadata") or {}
    t = cfg["training"]
    # the run's own count (on a CPU, config.yaml's training.cpu batch and segment length win over the recipe's)
    seen_h = meta.get("hours_seen", meta.get("steps", 0) * meta.get("global_batch", t["batch_size"])
                      * meta.get("segment_seconds", t["segment_seconds"]) / 3600)
    result = {"arm": name, "data": specs, "settings": settings or {}, "preset": args.preset, "steps": meta.get("steps"),
              "init": meta.get("init"), "budget_cpu_s": 60 * args.budget_minutes if args.budget_minutes else None,
              "audio_hours_seen": round(seen_h, 3), "wall_time_s": meta.get("wall_time_s"),
              "cpu_time_s": meta.get("cpu_time_s"), "hardware": meta.get("hardware"),
              "validation": meta.get("validation"), "eval": {}}
    for ev in args.eval:
        js = out / f"eval-{ev.replace(':', '_').replace('/', '_')}.json"
        if not (js.is_file() and js.stat().st_mtime >= (out / "last.ckpt").stat().st_mtime):  # else: of this checkpoint
            _run(py + ["tools.evaluate", ev, "--checkpoint", str(out / "last.ckpt"), "--streaming", "--baseline",
                       "mixture", "--json", str(js), "-q"], log)
        result["eval"][ev] = json.loads(js.read_text())["aggregate"]
    done.write_text(json.dumps(result, indent=1))
    return result


def table(results: list[dict]) -> str:
    rows = ["| arm | data | steps | audio h | wall s | CPU s | eval | vocals SDR (mixture) | accompaniment SDR (mixture) |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for ev, agg in r["eval"].items():
            m, x = agg.get("model", {}), agg.get("mixture", {})
            cell = [f"{m.get(s, {}).get('SDR', float('nan')):.2f} ({x.get(s, {}).get('SDR', float('nan')):.2f})"
                    for s in ("vocals", "accompaniment")]
            data = " ".join(r["data"]) + "".join(f" {k}={v}" for k, v in (r.get("settings") or {}).items())
            rows.append(f"| {r['arm']} | {data} | {r['steps']} | {r['audio_hours_seen']} | "
                        f"{r['wall_time_s']} | {r.get('cpu_time_s')} | {ev} | {cell[0]} | {cell[1]} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.recipes.ablation", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="ablation folder (one run folder per arm)")
    p.add_argument("--preset", default="streaming")
    p.add_argument("--steps", type=int, default=500, help="optimiser steps of every arm (the schedule's length)")
    p.add_argument("--budget-minutes", type=float, default=None, metavar="M",
                   help="train each arm for M minutes of CPU time of its training process (equal compute), at most --steps")
    p.add_argument("--init", type=Path, default=None, metavar="CKPT", help="every arm starts from these weights")
    p.add_argument("--arm-set", action="append", default=[], metavar="ARM:KEY=YAML",
                   help="a setting of one arm only, e.g. all:training.augment.pitch_shift=0.3 (repeatable)")
    p.add_argument("--arm", action="append", default=[], metavar="NAME=SPEC[,SPEC...]",
                   help="a data mix; default: " + "; ".join(f"{k}={','.join(v)}" for k, v in DEFAULT_ARMS.items()))
    p.add_argument("--eval", action="append", default=[], metavar="DATA",
                   help="tools.evaluate data set (repeatable; default eif-valid)")
    p.add_argument("--recipe", type=Path, default=RECIPE, help="config overrides merged over config.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=YAML",
                   help="one more override, e.g. training.batch_size=2 (repeatable)")
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    args.eval = args.eval or ["eif-valid"]

    def fail(msg: str) -> int:
        print(f"python -m training.recipes.ablation: error: {msg}", file=sys.stderr)
        return 2

    arms = dict(DEFAULT_ARMS)
    if args.arm:
        arms = {}
        for a in args.arm:
            name, _, specs = a.partition("=")
            if not name or not specs or "/" in name:
                return fail(f"--arm {a!r}: expected NAME=SPEC[,SPEC...] with a plain NAME")
            arms[name] = specs.split(",")
    if args.steps < 1:
        return fail(f"--steps: expected >= 1, got {args.steps}")
    if args.budget_minutes is not None and args.budget_minutes <= 0:
        return fail(f"--budget-minutes: expected minutes > 0, got {args.budget_minutes:g}")
    if args.init is not None and not args.init.is_file():
        return fail(f"--init {args.init}: expected a checkpoint file, it does not exist")
    overrides: dict = {}
    for s in args.set:
        key, _, value = s.partition("=")
        if not key or not value:
            return fail(f"--set {s!r}: expected KEY=VALUE")
        overrides = merge_config(overrides, nested({key: yaml.safe_load(value)}))
    settings = {name: dict(ARM_SETTINGS.get(name, {})) for name in arms}
    for s in args.arm_set:
        arm, _, kv = s.partition(":")
        key, _, value = kv.partition("=")
        if arm not in arms or not key or not value:
            return fail(f"--arm-set {s!r}: expected ARM:KEY=VALUE with ARM one of {', '.join(arms)}")
        settings[arm][key] = yaml.safe_load(value)
    try:
        cfg = merged_config(args.recipe, overrides)
        args.out.mkdir(parents=True, exist_ok=True)
        config_path = args.out / "config.yaml"
        config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        results = [run_arm(name, specs, args, config_path, cfg, settings[name]) for name, specs in arms.items()]
    except core.UserError as e:
        return fail(str(e))
    (args.out / "summary.json").write_text(json.dumps(results, indent=1))
    print(table(results))
    return 0


if __name__ == "__main__":
    from core.signals import exit_fast
    exit_fast(main())
