"""Benchmark: latency and real-time factor of the streaming presets (cached step vs naive recompute).

    python -m tools.bench [--presets tiny,streaming] [--threads 2] [--device cpu] [--json out.json]

Each record: preset, mode (cached | naive), device, threads, params, latency_ms (algorithmic),
hop_ms, step_ms_p50 / p99 (compute per hop, STFT + network + overlap-add), rtf (p50 step / hop),
rtf_mean (mean step / hop).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch

import model
from model.errors import UserError
from streaming import StreamingSeparator


def causal_presets() -> list[str]:
    config = model.load_config()
    return [name for name, p in config["presets"].items() if p.get("causal")]


def bench_streaming(preset: str, mode: str, device: str, hops: int, warmup: int = 20, seed: int = 0) -> dict:
    """Feed `hops` hop-sized chunks of noise through a fresh engine; per-hop compute statistics."""
    torch.manual_seed(seed)
    sep = model.build_separator(preset).eval()
    engine = StreamingSeparator(sep, device=device, mode=mode)
    hop = engine.hop_length
    rng = np.random.default_rng(seed)
    audio = (0.1 * rng.standard_normal((2, (hops + warmup) * hop))).astype(np.float32)
    for i in range(warmup):
        engine.feed(audio[:, i * hop:(i + 1) * hop])
    engine._steps = 0  # statistics from here on
    for i in range(warmup, warmup + hops):
        engine.feed(audio[:, i * hop:(i + 1) * hop])
    t = engine.step_times_ms
    hop_ms = 1000.0 * hop / engine.sample_rate
    return {
        "preset": preset, "mode": mode, "device": str(engine.device), "threads": torch.get_num_threads(),
        "params": sep.num_parameters(), "latency_ms": round(engine.latency_ms, 3), "hop_ms": round(hop_ms, 3),
        "n_fft": sep.n_fft, "hop_length": hop, "receptive_field_frames": sep.receptive_field_frames,
        "hops_timed": len(t),
        "step_ms_p50": round(float(np.percentile(t, 50)), 4), "step_ms_p99": round(float(np.percentile(t, 99)), 4),
        "rtf": round(float(np.percentile(t, 50)) / hop_ms, 4), "rtf_mean": round(float(t.mean()) / hop_ms, 4),
    }


def format_table(records: list[dict]) -> str:
    cols = ["preset", "mode", "device", "threads", "params", "latency_ms", "hop_ms", "step_ms_p50", "step_ms_p99", "rtf"]
    rows = [[str(r.get(c, "")) for c in cols] for r in records]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    line = lambda vals: "  ".join(v.rjust(w) for v, w in zip(vals, widths))  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default=",".join(causal_presets()), help="comma list of causal presets")
    ap.add_argument("--modes", default="cached,naive", help="cached,naive")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--hops", type=int, default=400, help="timed hops per cached run (naive runs a quarter)")
    ap.add_argument("--json", metavar="PATH", help="also write the records as a JSON list")
    args = ap.parse_args(argv)
    try:
        torch.set_num_threads(args.threads)
        if args.device == "cuda" and not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available")
        records = []
        for preset in [p for p in args.presets.split(",") if p]:
            for mode in [m for m in args.modes.split(",") if m]:
                hops = args.hops if mode == "cached" else max(20, args.hops // 4)
                records.append(bench_streaming(preset, mode, args.device, hops))
                print(format_table(records[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads")
    print(format_table(records))
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
