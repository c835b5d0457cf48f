"""`python -m tools.bench_chains`: what effect chains and the key change cost per audio block.

Runs the host's own `StemEffects` (key change + per-stem chains + alignment) on random stems in blocks of
`--block` frames at 44.1 kHz, the way the worker does after separation, and prints the added time per
block (p50 / p99 / mean) with and without the key change. Default workload: the issue's target, a
3-effect chain on each of two stems (compressor -> peak EQ -> reverb on vocals; high-pass -> chorus ->
delay on accompaniment) plus a key change of the accompaniment.
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np

DEFAULT_FX = ["vocals=compressor:threshold_db=-20,ratio=3", "vocals=peak:cutoff_frequency_hz=3000,gain_db=3",
              "vocals=reverb:room_size=0.6,wet_level=0.25", "accompaniment=highpass:cutoff_frequency_hz=60",
              "accompaniment=chorus:mix=0.3", "accompaniment=delay:delay_seconds=0.25,feedback=0.3,mix=0.2"]


def measure(fx_args: list[str], key: float | None, block: int, seconds: float, rate: int = 44100) -> dict:
    from streaming.build import build_effects
    from streaming.cli import build_parser
    from streaming.plan import plan
    from streaming.settings import load_settings
    # The host's own way: the plan of `python -m streaming --fx ... --key ...`, its effects built.
    flags = [f for a in fx_args for f in ("--fx", a)] + ([] if key is None else ["--key", str(key)])
    args = build_parser().parse_args(["--list-controls", *flags])
    fx = build_effects(plan(load_settings(), args, ("vocals", "accompaniment")), rate)
    x = (0.1 * np.random.default_rng(0).standard_normal((2, 2, int(seconds * rate)))).astype(np.float32)
    for i in range(0, 8 * block, block):                 # warm-up (numba compile, first-call allocations)
        fx.process_stems(x[:, :, i:i + block])
    times = []
    for i in range(0, x.shape[-1] - block, block):
        t0 = time.perf_counter()
        fx.process_stems(x[:, :, i:i + block])
        times.append(1000.0 * (time.perf_counter() - t0))
    t = np.asarray(times)
    return {"fx": len(fx_args), "key": key, "block": block, "blocks": len(t), "ms_p50": round(float(np.median(t)), 4),
            "ms_p99": round(float(np.percentile(t, 99)), 4), "ms_mean": round(float(t.mean()), 4),
            "latency_ms": round(1000.0 * fx.latency_samples / rate, 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench_chains", description=__doc__.splitlines()[0])
    p.add_argument("--fx", action="append", help="chain effects as for python -m streaming (default: the target "
                   "workload, 3 effects on each of two stems)")
    p.add_argument("--key", type=float, default=2.0, help="key change of the accompaniment in semitones (default 2)")
    p.add_argument("--block", type=int, default=256, help="frames per block (default 256)")
    p.add_argument("--seconds", type=float, default=20.0, help="audio per measurement (default 20)")
    p.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = p.parse_args(argv)
    if args.json:
        from core.files import check_output_file
        check_output_file(args.json, "--json")
    import torch
    torch.set_num_threads(1)
    fx_args = args.fx or DEFAULT_FX
    rows = [measure(fx_args, None, args.block, args.seconds), measure([], args.key, args.block, args.seconds),
            measure(fx_args, args.key, args.block, args.seconds)]
    print(f"# {platform.machine()}, {platform.python_version()}, block {args.block} frames at 44.1 kHz")
    print(f"{'workload':>28s} {'p50 ms':>8s} {'p99 ms':>8s} {'mean ms':>8s} {'latency ms':>10s}")
    for r in rows:
        name = f"{r['fx']} effects" + (f" + key {r['key']:+g}" if r["key"] else "")
        print(f"{name:>28s} {r['ms_p50']:8.4f} {r['ms_p99']:8.4f} {r['ms_mean']:8.4f} {r['latency_ms']:10.3f}")
    if args.json:
        from core.files import write_json
        write_json(args.json, {"machine": platform.machine(), "rows": rows})
    return 0


if __name__ == "__main__":
    from core.errors import run_cli
    from core.signals import exit_fast
    exit_fast(run_cli("python -m tools.bench_chains", main))
