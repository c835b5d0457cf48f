"""Training throughput benchmark: optimiser steps of a preset on fixed synthetic batches -> segments/s.

    python -m training.bench --presets tiny,streaming --device cpu --batch-size 4 --seconds 2 --json

Measures the model step only (forward, losses, backward, AdamW), not data loading: the DataLoader
workers run in parallel with it. Uses the `training:` config (losses, AMP) with these overrides.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

import model

from .config import train_config
from .trainer import RunSpec, Trainer


def bench_preset(preset: str, config: dict, device: str, batch_size: int, seconds: float, steps: int, warmup: int) -> dict:
    cfg = train_config(config)
    cfg = dataclasses.replace(cfg, batch_size=batch_size, segment_seconds=seconds, num_workers=0,
                              validation=dataclasses.replace(cfg.validation, segment_seconds=seconds))
    with tempfile.TemporaryDirectory() as tmp:
        spec = RunSpec(preset, model.model_config(preset, config).stems, ["synthetic"], Path(tmp), steps + warmup,
                       device=device, merges=model.stem_merges(config))
        trainer = Trainer(spec, config, cfg)
        items = [trainer.train_set[i] for i in range(batch_size)]
        batch = [torch.stack([it[j] for it in items]) for j in range(4)]
        for _ in range(warmup):
            trainer.train_step(batch)
        sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            trainer.train_step(batch)
        sync()
        dt = (time.perf_counter() - t0) / steps
    name = torch.cuda.get_device_name(trainer.device) if trainer.device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    return {"preset": preset, "device": name, "batch_size": batch_size, "segment_seconds": seconds,
            "amp": cfg.amp if trainer.device.type == "cuda" else "off", "seconds_per_step": round(dt, 4),
            "segments_per_s": round(batch_size / dt, 3), "audio_seconds_per_s": round(batch_size * seconds / dt, 2),
            "parameters": trainer.separator.num_parameters()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.bench", description=__doc__.splitlines()[0])
    p.add_argument("--presets", default="tiny,streaming")
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seconds", type=float, default=2.0, help="segment length")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--config", type=Path, default=None)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        config = model.load_config(args.config)
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        results = [bench_preset(name.strip(), config, device, args.batch_size, args.seconds, args.steps, args.warmup)
                   for name in args.presets.split(",") if name.strip()]
    except model.UserError as e:
        print(f"python -m training.bench: error: {e}", file=sys.stderr)
        return 2
    for r in results:
        if args.json:
            print(json.dumps(r))
        else:
            print(f"{r['preset']:>10} on {r['device']}: {r['segments_per_s']:.2f} segments/s "
                  f"({r['segment_seconds']} s segments, batch {r['batch_size']}, {r['seconds_per_step']:.3f} s/step, "
                  f"{r['audio_seconds_per_s']} s of audio/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
