"""Training throughput benchmark: where a training step's time goes, and how close it is to the device's limit.

    python -m training.bench --presets tiny,streaming --device cpu --batch-size 8 --seconds 6 --json

For each preset it builds the real `Trainer` (config.yaml `training:` with these overrides, data from
`--data`, synthetic by default, through the shard cache) and reports per optimiser step:

* the phases: data (drawing and augmenting the batch's segments, as one DataLoader worker does it;
  workers run it in parallel with the model), forward, losses, backward, optimiser, and validation
  (one validation batch, and its share per step at one validation every `steps_per_epoch` steps);
* segments/s of the model step (forward to optimiser) and end to end with `workers` loaders
  (max of the model step and data / workers: what a run can reach);
* model FLOPs per step (matmuls, convolutions, attention counted by torch.utils.flop_counter; FFTs
  and elementwise work not counted), the achieved GFLOP/s, and the peak of a large matmul measured
  on the same device and thread count;
* on CPU, user and system CPU seconds per step (system time is the kernel zeroing freshly mapped
  memory: allocation churn), CPU seconds per wall second (below the thread count: the cores were shared)
  and the peak resident memory of the process so far.

`--set KEY=VAL` (repeatable) sets any dotted `training:` key, e.g. `--set compile=true --set cpu_amp=bf16`.
`--compare` measures, for each preset, a baseline first and then the path with `--set`, one after the
other in the same process, and prints the ratio of their segments/s (new / baseline). The baseline uses
the same flags without `--set`, plus its own `--baseline-set KEY=VAL` (which implies `--compare`):

    python -m training.bench --presets streaming --device cpu --batch-size 8 --seconds 3 --threads 1 \
        --compare --set micro_batch=2 --json
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

import core
import model

from .config import train_config, with_overrides
from .device import choose_device
from .timing import PHASES, PhaseTimer, matmul_peak_gflops
from .trainer import RunSpec, Trainer, resolve_workers

aten = torch.ops.aten
TORCH_THREADS = torch.get_num_threads()  # torch's default, restored for a run with cpu_threads 0 after one that set it


def _cpu_flash(query, key, value, *args, **kwargs) -> int:  # the counter passes shapes
    return sdpa_flop_count(query, key, value)


def _cpu_flash_backward(grad_out, query, key, value, *args, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


# PyTorch's flop counter knows the CUDA attention kernels, not the CPU flash kernel
FLOP_FORMULAS = {aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash,
                 aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_flash_backward}


def _cpu_times() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def _draw_batch(trainer: Trainer, key0: int, batch_size: int) -> list[torch.Tensor]:
    items = [trainer.train_set[key0 + i] for i in range(batch_size)]
    return [torch.stack([it[j] for it in items]) for j in range(len(items[0]))]


def step_flops(trainer: Trainer, batch: list[torch.Tensor]) -> int:
    """FLOPs of one training step's forward, losses and backward (the optimiser's are negligible)."""
    counter = FlopCounterMode(display=False, custom_mapping=FLOP_FORMULAS)
    with counter:
        trainer.train_step(batch)
    return counter.get_total_flops()


def bench_preset(preset: str, config: dict, device: str | None, overrides: dict[str, Any], steps: int, warmup: int,
                 data: list[str], peak: float | None, peak_size: int | None = None, flops: bool = True) -> dict[str, Any]:
    """One preset's measured training step (the fields listed in the module docstring) -> a JSON-ready dict.

    `flops` False skips the FLOP count (one more step, and a second compilation under `compile`)."""
    dev = choose_device(device)
    cfg = with_overrides(train_config(config, dev.type), overrides)
    cfg = dataclasses.replace(cfg, validation=dataclasses.replace(cfg.validation, batch_size=cfg.batch_size),
                              logging=dataclasses.replace(cfg.logging, progress=False, tensorboard=False))
    with tempfile.TemporaryDirectory() as tmp:
        spec = RunSpec(preset, model.model_config(preset, config).stems, data, Path(tmp), 10 ** 6,
                       device=device, merges=model.stem_merges(config))
        if cfg.cpu_threads == 0:
            torch.set_num_threads(TORCH_THREADS)
        if cfg.compile:
            torch._dynamo.reset()  # each compiled run pays (and is timed with) its own compilation
        trainer = Trainer(spec, config, cfg)
        threads = torch.get_num_threads()
        batch_size = cfg.batch_size
        timer = PhaseTimer(trainer.device, enabled=True)
        batches = []
        for s in range(warmup + steps):
            t0 = time.perf_counter()
            batches.append(_draw_batch(trainer, s * batch_size, batch_size))
            if s >= warmup:
                timer.seconds["data"] += time.perf_counter() - t0
        for s in range(warmup):
            trainer.train_step(batches[s])
        u0, s0 = _cpu_times()
        t0 = time.perf_counter()
        for s in range(warmup, warmup + steps):
            trainer.train_step(batches[s], timer)
        model_s = (time.perf_counter() - t0) / steps
        u1, s1 = _cpu_times()
        valid = next(iter(torch.utils.data.DataLoader(trainer.valid_set, batch_size=batch_size)))
        trainer.separator.eval()
        with torch.no_grad():
            mix, target, tmask, fmask = (x.to(trainer.device) for x in valid)
            trainer.model_forward(mix, tmask, fmask)  # warm-up
            with timer.phase("validation"):
                est_spec, est_wav = trainer.model_forward(mix, tmask, fmask)
                trainer.loss_fn(est_spec, trainer.separator.stft(target), est_wav, target)
        trainer.separator.train()
        n_flops = step_flops(trainer, batches[-1]) if flops else None
        if peak is None:
            peak = matmul_peak_gflops(trainer.device, size=peak_size)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    per_step = {k: timer.seconds.get(k, 0.0) / steps for k in PHASES if k != "validation"}
    valid_batch_s = timer.seconds.get("validation", 0.0)
    valid_batches = -(-len(trainer.valid_set) // batch_size)
    per_step["validation"] = valid_batch_s * valid_batches / cfg.steps_per_epoch  # one validation per epoch
    workers = resolve_workers(cfg.num_workers, trainer.device, 1)
    end_to_end = max(model_s, per_step["data"] / max(1, workers) if workers else model_s + per_step["data"])
    compute_s = per_step["forward"] + per_step["losses"] + per_step["backward"]
    gflops = None if n_flops is None else n_flops / 1e9 / max(compute_s, 1e-9)
    return {
        "preset": preset, "device": trainer.device.type,
        "device_name": torch.cuda.get_device_name(trainer.device) if trainer.device.type == "cuda" else f"cpu ({threads} threads)",
        "threads": threads, "batch_size": batch_size, "micro_batch": cfg.micro_batch,
        "segment_seconds": cfg.segment_seconds, "amp": {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(trainer.amp_dtype, "off"),
        "compile": cfg.compile, "data": data, "workers": workers, "parameters": trainer.separator.num_parameters(),
        "seconds_per_step": round(model_s, 4), "segments_per_s": round(batch_size / model_s, 3),
        "segments_per_s_end_to_end": round(batch_size / end_to_end, 3),
        "audio_seconds_per_s": round(batch_size * cfg.segment_seconds / model_s, 2),
        "phases_s": {k: round(v, 4) for k, v in per_step.items()},
        "validation_batch_s": round(valid_batch_s, 4),
        "gflop_per_step": None if n_flops is None else round(n_flops / 1e9, 2),
        "gflops": None if gflops is None else round(gflops, 2),
        "peak_matmul_gflops": round(peak, 1), "fraction_of_peak": None if gflops is None else round(gflops / peak, 4),
        "cpu_user_s_per_step": round((u1 - u0) / steps, 3), "cpu_sys_s_per_step": round((s1 - s0) / steps, 3),
        # CPU seconds per wall second of the timed steps: below the thread count, something else had the cores
        "cpu_per_wall": round((u1 - u0 + s1 - s0) / steps / model_s, 3),
        "segments_per_cpu_s": round(batch_size * steps / max(u1 - u0 + s1 - s0, 1e-9), 3),
        "max_rss_gb": round(rss, 2),
    }


def compare_results(baseline: dict[str, Any], new: dict[str, Any], baseline_set: dict[str, Any],
                    new_set: dict[str, Any]) -> dict[str, Any]:
    """Two measured runs of one preset -> both, the settings that made each, and the ratios new / baseline."""
    return {"preset": new["preset"], "baseline_set": baseline_set, "new_set": new_set, "baseline": baseline, "new": new,
            "ratio": round(new["segments_per_s"] / baseline["segments_per_s"], 4),
            "ratio_end_to_end": round(new["segments_per_s_end_to_end"] / baseline["segments_per_s_end_to_end"], 4),
            # segments of another length: audio seconds per second is the fair rate
            "ratio_audio_seconds": round(new["audio_seconds_per_s"] / baseline["audio_seconds_per_s"], 4),
            # per CPU second (threads 1): what the step costs, whatever else shared the core meanwhile
            "ratio_cpu_time": round(new["segments_per_cpu_s"] / baseline["segments_per_cpu_s"], 4)}


def format_result(r: dict[str, Any]) -> str:
    p = r["phases_s"]
    phases = ", ".join(f"{k} {1000 * p[k]:.0f}" for k in PHASES)
    flops = ("FLOPs not counted (--no-flops)" if r["gflops"] is None else
             f"{r['gflop_per_step']} GFLOP/step, {r['gflops']} GFLOP/s achieved = "
             f"{100 * r['fraction_of_peak']:.1f} % of the measured matmul peak {r['peak_matmul_gflops']} GFLOP/s")
    return (f"{r['preset']} on {r['device_name']}: {r['segments_per_s']:.3f} segments/s model step, "
            f"{r['segments_per_s_end_to_end']:.3f} end to end with {r['workers']} worker(s) "
            f"({r['batch_size']} x {r['segment_seconds']} s, micro-batch {r['micro_batch']}, amp {r['amp']}, "
            f"compile {r['compile']}, {r['seconds_per_step']:.3f} s/step)\n"
            f"  per step (ms): {phases}\n"
            f"  {flops}\n"
            f"  CPU per step: user {r['cpu_user_s_per_step']} s, system {r['cpu_sys_s_per_step']} s "
            f"({r['cpu_per_wall']} CPU s per wall s); "
            f"peak RSS {r['max_rss_gb']} GB")


def format_comparison(c: dict[str, Any]) -> str:
    def sets(d: dict[str, Any]) -> str:
        return ", ".join(f"{k}={v}" for k, v in d.items()) or "the common flags only"
    return (f"baseline ({sets(c['baseline_set'])}):\n{format_result(c['baseline'])}\n"
            f"new ({sets(c['new_set'])}):\n{format_result(c['new'])}\n"
            f"{c['preset']}: new / baseline = {c['ratio']:.3f}x segments/s model step "
            f"({c['new']['segments_per_s']:.3f} / {c['baseline']['segments_per_s']:.3f}), "
            f"{c['ratio_end_to_end']:.3f}x end to end, {c['ratio_audio_seconds']:.3f}x audio seconds/s, "
            f"{c['ratio_cpu_time']:.3f}x segments per CPU second")


def parse_sets(items: list[str], flag: str) -> dict[str, Any]:
    """["optimizer.lr=1e-3", "compile=true"] -> {"optimizer.lr": 0.001, "compile": True} (values read as YAML;
    the keys and values are checked when the TrainConfig is built)."""
    out: dict[str, Any] = {}
    for item in items:
        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise core.ConfigError(f"{flag} {item!r}: expected KEY=VALUE with a dotted training key, e.g. micro_batch=2")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise core.ConfigError(f"{flag} {item!r}: the value is not YAML ({e})") from None
        word = text.strip()
        if isinstance(value, bool) and word.lower() not in ("true", "false"):
            value = word  # YAML 1.1 reads off / on / yes / no as booleans; here they stay words (cpu_amp=off)
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = float(word)  # and 1e-3 (no dot) as a string
        out[key.strip()] = value
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.bench", description=__doc__.splitlines()[0])
    p.add_argument("--presets", default="tiny,streaming")
    p.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: cuda when available)")
    p.add_argument("--data", action="append", default=None, help="--data spec as for training (default: synthetic)")
    p.add_argument("--batch-size", type=int, default=None, help="default: config.yaml (training.cpu on CPU)")
    p.add_argument("--micro-batch", type=int, default=None)
    p.add_argument("--seconds", type=float, default=None, help="segment length (default: config.yaml)")
    p.add_argument("--threads", type=int, default=None, help="torch threads on CPU (default: config.yaml)")
    p.add_argument("--compile", action="store_true", default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VAL",
                   help="a dotted training key for the run (with --compare: the new path only), e.g. amp=bf16")
    p.add_argument("--compare", action="store_true", help="measure a baseline first (without --set) and print new / baseline")
    p.add_argument("--baseline-set", action="append", default=[], metavar="KEY=VAL",
                   help="a dotted training key for the baseline only (implies --compare)")
    p.add_argument("--no-flops", action="store_true", help="skip the FLOP count (one more step per run)")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--peak-size", type=int, default=None, help="matmul size of the peak measurement (default 2048 CPU, 8192 CUDA)")
    p.add_argument("--config", type=Path, default=None)
    p.add_argument("--json", action="store_true", help="one JSON object per preset (with --compare: per comparison)")
    args = p.parse_args(argv)
    common = {"batch_size": args.batch_size, "micro_batch": args.micro_batch, "segment_seconds": args.seconds,
              "cpu_threads": args.threads, "compile": args.compile}
    common = {k: v for k, v in common.items() if v is not None}
    compare = args.compare or bool(args.baseline_set)
    try:
        new_set = parse_sets(args.set, "--set")
        baseline_set = parse_sets(args.baseline_set, "--baseline-set")
        config = core.load_config(args.config)
        peak = None
        data = args.data or ["synthetic"]
        for name in (n.strip() for n in args.presets.split(",") if n.strip()):
            bench = functools.partial(bench_preset, name, config, args.device, steps=args.steps, warmup=args.warmup,
                                      data=data, peak_size=args.peak_size, flops=not args.no_flops)
            if compare:
                base = bench(overrides={**common, **baseline_set}, peak=peak)
                peak = base["peak_matmul_gflops"]
                c = compare_results(base, bench(overrides={**common, **new_set}, peak=peak), baseline_set, new_set)
                print(json.dumps(c) if args.json else format_comparison(c), flush=True)
            else:
                r = bench(overrides={**common, **new_set}, peak=peak)
                peak = r["peak_matmul_gflops"]
                print(json.dumps(r) if args.json else format_result(r), flush=True)
    except core.UserError as e:
        print(f"python -m training.bench: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from core.signals import exit_fast
    exit_fast(main())
