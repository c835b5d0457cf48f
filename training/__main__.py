"""`python -m training`: train a preset and write checkpoints that `python -m streaming --checkpoint` loads.

    python -m training --preset streaming --stems vocals,accompaniment --data musdb-hq:/data/musdb18hq \
        --out runs/streaming-karaoke --epochs 100
    python -m training --resume runs/streaming-karaoke            # continue exactly where it stopped
    torchrun --nproc_per_node 4 -m training ...                    # DistributedDataParallel, same arguments

Bad paths, empty datasets, missing stems, unknown presets: one line on stderr, exit code 2.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import core
from core.errors import OneLineParser, run_cli


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m training", description="Train a TFSWA-UNet separator preset.")
    p.add_argument("--config", type=Path, default=None, help="config.yaml (default: the project's)")
    p.add_argument("--preset", default=None, help="model preset from config.yaml (default: streaming)")
    p.add_argument("--stems", default=None, help="stem set name or comma list, e.g. vocals,accompaniment (default: the preset's)")
    p.add_argument("--data", action="append", default=[], metavar="SPEC",
                   help="musdb:PATH | musdb-hq:PATH | folder:PATH | synthetic | songs; repeat to combine sources")
    p.add_argument("--out", type=Path, default=None, help="run folder (checkpoints, metrics.jsonl, tensorboard/)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None, help="total optimiser steps of the run")
    length.add_argument("--epochs", type=int, default=None, help="total epochs (training.steps_per_epoch steps each)")
    p.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR", help="continue the run in RUN_DIR from last.ckpt")
    p.add_argument("--stop-at", type=int, default=None, metavar="STEP",
                   help="stop (with a checkpoint) at STEP although the schedule runs to --steps; continue with --resume")
    p.add_argument("--stop-after", type=float, default=None, metavar="SECONDS",
                   help="stop (with a checkpoint) after SECONDS of training in this process; continue with --resume")
    p.add_argument("--budget-clock", choices=("wall", "cpu"), default="wall",
                   help="what --stop-after counts: wall-clock time, or this process's CPU time (equal compute on a shared machine)")
    p.add_argument("--init", type=Path, default=None, metavar="CKPT",
                   help="start a new run from this checkpoint's network weights (fine-tuning; same network shapes)")
    p.add_argument("--device", default=None,
                   help="cuda | cuda:N | cpu (default: cuda when available; under torchrun cuda:LOCAL_RANK)")
    knobs = p.add_argument_group("overrides of config.yaml `training:` (and, on a CPU, of its `training.cpu:` defaults)")
    knobs.add_argument("--batch-size", type=int, default=None, metavar="B", help="segments per optimiser step and process")
    knobs.add_argument("--micro-batch", type=int, default=None, metavar="M",
                       help="run a batch in micro-batches of M segments (same gradients, less memory; 0: whole batch)")
    knobs.add_argument("--segment-seconds", type=float, default=None, metavar="S", help="training segment length")
    knobs.add_argument("--workers", default=None, metavar="N", help="DataLoader worker processes per process, or auto")
    knobs.add_argument("--lr", type=float, default=None, help="peak learning rate (AdamW)")
    knobs.add_argument("--val-every", type=int, default=None, metavar="STEPS",
                       help="validate (and end an epoch) every STEPS steps (training.steps_per_epoch)")
    knobs.add_argument("--threads", type=int, default=None, metavar="N", help="torch threads on CPU (0: torch's default)")
    knobs.add_argument("--compile", action="store_true", default=None,
                       help="torch.compile the model and the losses (compiles on the first step)")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    return p


def overrides(args: argparse.Namespace) -> dict[str, object]:
    """Command-line knobs -> dotted `training:` keys (None: not given)."""
    workers = args.workers
    if workers is not None and workers != "auto":
        if not workers.isdigit():
            raise core.UserError(f"--workers: expected a number >= 0 or auto, got {workers!r}")
        workers = int(workers)
    return {"batch_size": args.batch_size, "micro_batch": args.micro_batch, "segment_seconds": args.segment_seconds,
            "num_workers": workers, "optimizer.lr": args.lr, "steps_per_epoch": args.val_every,
            "cpu_threads": args.threads, "compile": args.compile}


def run(args) -> int:
    from core.config import resolve_config
    from core.files import check_output_dir

    from . import COMMAND
    from .data_checks import check_data_specs
    from .trainer import train

    config = resolve_config(args.config, command=COMMAND)
    if args.resume is None and not args.data:
        raise core.UserError("expected --data (musdb:PATH, musdb-hq:PATH, folder:PATH, synthetic or songs)")
    for path, flag in ((args.out, "--out"), (args.resume, "--resume")):
        if path is not None:
            check_output_dir(path, flag)
    check_data_specs(args.data)
    if args.stop_after is not None and args.stop_after <= 0:
        raise core.UserError(f"--stop-after: expected seconds > 0, got {args.stop_after:g}")
    if args.budget_clock != "wall" and args.stop_after is None:
        raise core.UserError("--budget-clock: expected --stop-after SECONDS with it (the budget it counts)")
    if args.init is not None and not args.init.is_file():
        raise core.UserError(f"--init {args.init}: expected a checkpoint file, it does not exist")
    summary = train(config, preset=args.preset, stems=args.stems, data=args.data, out=args.out, steps=args.steps,
                    epochs=args.epochs, resume=args.resume, device=args.device, stop_at=args.stop_at,
                    overrides=overrides(args), init=args.init, stop_after_s=args.stop_after,
                    budget_clock=args.budget_clock)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"done: step {summary['step']}, run folder {summary['out']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli("python -m training", lambda: run(args),
                   interrupted="; continue with --resume RUN_DIR (last.ckpt holds the last checkpoint)")


if __name__ == "__main__":
    from core.signals import exit_fast
    exit_fast(main())
