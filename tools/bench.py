"""Benchmark: latency and real-time factor of the streaming presets (the per-hop step eager, compiled,
and a naive receptive-field recompute), the offline presets on full clips, and peer architectures with
random weights, on one machine and thread count in one run.

    python -m tools.bench [--presets tiny,streaming] [--modes cached,compiled,naive] [--threads auto]
                          [--device cpu] [--json out.json] [--no-offline] [--no-peers]

Modes: `cached` is the eager per-hop step (ring-buffer state, the engine with compile off), `compiled`
the same step through torch.compile (on CUDA replayed as a CUDA graph), `naive` recomputes the whole
receptive field every hop (reference). Each record: preset, mode, engine (what ran), device, threads,
params, latency_ms (algorithmic; offline models: none, they need the whole input, HTDemucs: its
segment), hop_ms, step_ms_p50 / p99 (compute per hop, STFT + network + overlap-add), rtf (streaming:
p50 step / hop; offline: compute time / clip duration), rtf_mean (mean step / hop), compile_s (time
to compile and warm up, including the on-disk cache lookup). The JSON records also hold every timed
hop (`step_ms`). Peer records add `how` (how the package was run) or `error` (why it could not
run). Speed only: random weights, nothing downloaded.
"""
from __future__ import annotations

import argparse
import gc
import platform
import sys

import numpy as np
import torch

import core
import model
from core.errors import UserError
from streaming import StreamingSeparator
from streaming.engine import cpu


def causal_presets() -> list[str]:
    config = core.load_config()
    return [name for name, p in config["presets"].items() if p.get("causal")]


ROUND_HOPS = 48   # hops per engine per round when several K run side by side (a multiple of every K up to 4)


def bench_streaming(preset: str, mode: str, device: str, hops: int, warmup: int = 20, seed: int = 0,
                    ks: tuple[int, ...] = (1,)) -> list[dict]:
    """Feed `hops` hop-sized chunks of noise through a fresh engine per K (hops per step); per-hop compute
    statistics, one record per K. With K > 1 every K-th chunk runs one call of K hops, and per hop is that
    call's time / K. Several K run side by side: in rounds of ROUND_HOPS hops each, one engine after the
    other, so that a machine whose speed drifts during the run slows every K alike."""
    torch.manual_seed(seed)
    sep = model.build_separator(preset).eval()
    engines = [StreamingSeparator(sep, device=device, mode="naive" if mode == "naive" else "cached",
                                  compile="on" if mode == "compiled" else "off", hops_per_step=k) for k in ks]
    hop = sep.hop_length
    rng = np.random.default_rng(seed)
    audio = (0.1 * rng.standard_normal((2, (hops + warmup) * hop))).astype(np.float32)
    for engine in engines:
        engine.warm_up()
        for i in range(warmup):
            engine.feed(audio[:, i * hop:(i + 1) * hop])
    rounds = [(a, min(a + ROUND_HOPS, warmup + hops)) for a in range(warmup, warmup + hops, ROUND_HOPS)] \
        if len(engines) > 1 else [(warmup, warmup + hops)]
    times: list[list[np.ndarray]] = [[] for _ in engines]
    gc.collect()
    gc.freeze()         # as the live host runs its worker: no cyclic-GC pass inside a hop
    gc.disable()
    try:
        for a, z in rounds:
            for engine, out in zip(engines, times):
                engine.reset_stats()
                for i in range(a, z):
                    engine.feed(audio[:, i * hop:(i + 1) * hop])
                out.append(engine.step_times_ms)
    finally:
        gc.enable()
        gc.unfreeze()
    return [_record(preset, mode, sep, engine, np.concatenate(t)) for engine, t in zip(engines, times)]


def _record(preset: str, mode: str, sep, engine: StreamingSeparator, t: np.ndarray) -> dict:
    hop = engine.hop_length
    hop_ms = 1000.0 * hop / engine.sample_rate
    k = engine.hops_per_step
    calls = t[::k] * k                                   # one entry per call (its K hops share its time)
    return {
        "preset": preset, "mode": mode, "k": k, "engine": engine.engine_kind, "device": str(engine.device),
        "threads": torch.get_num_threads(), "compile_s": round(engine.compile_s, 2),
        "params": sep.num_parameters(), "latency_ms": round(engine.latency_ms, 3), "hop_ms": round(hop_ms, 3),
        "n_fft": sep.n_fft, "hop_length": hop, "receptive_field_frames": sep.receptive_field_frames,
        "hops_timed": len(t),
        "step_ms_p50": round(float(np.percentile(t, 50)), 4), "step_ms_p99": round(float(np.percentile(t, 99)), 4),
        "rtf": round(float(np.percentile(t, 50)) / hop_ms, 4), "rtf_mean": round(float(t.mean()) / hop_ms, 4),
        "call_ms_p50": round(float(np.percentile(calls, 50)), 4), "call_ms_p99": round(float(np.percentile(calls, 99)), 4),
        "p99_of_hop": round(float(np.percentile(t, 99)) / hop_ms, 4),
        "step_ms": [round(float(v), 4) for v in t],
    }


def offline_presets() -> list[str]:
    config = core.load_config()
    return [name for name, p in config["presets"].items() if not p.get("causal")]


def bench_offline(preset: str, seconds: float, device: str, seed: int = 0) -> dict:
    """Separate a `seconds`-long noise clip with the offline separator (chunked overlap-add, as
    tools.separate does); rtf = compute time / clip duration (after a short warm-up)."""
    import time

    from tools.separate import SeparateConfig, separate_offline
    torch.manual_seed(seed)
    sep = model.build_separator(preset).eval()
    rng = np.random.default_rng(seed)
    audio = (0.1 * rng.standard_normal((2, round(seconds * sep.sample_rate)))).astype(np.float32)
    cfg = SeparateConfig.from_config()
    separate_offline(sep, audio[:, :sep.sample_rate], cfg, device)      # warm-up
    t = time.perf_counter()
    separate_offline(sep, audio, cfg, device)
    dt = time.perf_counter() - t
    return {"preset": preset, "mode": "offline", "device": device, "threads": torch.get_num_threads(),
            "params": sep.num_parameters(), "latency_ms": None, "hop_ms": round(1000.0 * sep.hop_length / sep.sample_rate, 3),
            "step_ms_p50": None, "step_ms_p99": None, "rtf": round(dt / seconds, 4), "seconds": seconds,
            "compute_s": round(dt, 3),
            "how": f"tools.separate offline path: {cfg.segment_seconds} s segments, overlap {cfg.overlap}, random weights"}


def _hops_per_step(text: str) -> list[int]:
    try:
        ks = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        ks = []
    if not ks or any(k not in (1, 2, 3, 4) for k in ks) or len(set(ks)) != len(ks):
        raise UserError(f"--hops-per-step: expected a comma list of distinct K from 1 to 4, got {text!r}")
    return ks


def format_table(records: list[dict]) -> str:
    cols = ["preset", "mode", "k", "device", "threads", "params", "latency_ms", "hop_ms", "step_ms_p50", "step_ms_p99",
            "p99_of_hop", "rtf", "compile_s"]
    rows = [[_cell(r, c) for c in cols] for r in records]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    line = lambda vals: "  ".join(v.rjust(w) for v, w in zip(vals, widths))
    return "\n".join([line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _cell(r: dict, c: str) -> str:
    v = r.get(c)
    if v is None:
        return "n/a" if c == "rtf" and r.get("error") else "-"
    return str(v)


def notes(records: list[dict]) -> str:
    """How each peer / offline row was run, or why it could not run."""
    out = []
    for r in records:
        if r.get("error"):
            out.append(f"- {r['preset']}: NOT RUN: {r['error']}")
        elif r.get("how"):
            out.append(f"- {r['preset']} ({r['mode']}, {r.get('seconds')} s clip): {r['how']}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default=",".join(causal_presets()), help="comma list of causal presets")
    ap.add_argument("--modes", default="cached,compiled,naive",
                    help="comma list of cached (eager per-hop step), compiled, naive (default: all three)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--threads", default="auto", help="torch CPU threads: a number (capped at the usable cores) or "
                    "auto, the engine's policy: 1 (default auto; see streaming/engine/cpu.py)")
    ap.add_argument("--hops", type=int, default=400, help="timed hops per cached run (naive runs a quarter)")
    ap.add_argument("--hops-per-step", default="1", metavar="K,...",
                    help="comma list of K: hops per network call of the cached and compiled modes, each K in its "
                         "own row (K - 1 hops of extra latency; default 1)")
    ap.add_argument("--json", metavar="PATH", help="also write the records as a JSON list")
    ap.add_argument("--plot", metavar="PNG", help="draw the per-hop compute time of each preset and mode against "
                    "the hop deadline (tools/plots.py; the same records as --json)")
    tools_cfg = (core.load_config().get("tools") or {}).get("bench") or {}
    ap.add_argument("--offline", action=argparse.BooleanOptionalAction, default=True,
                    help="offline presets (paper) on full clips (default on)")
    ap.add_argument("--offline-presets", default=",".join(offline_presets()), help="comma list of offline presets")
    ap.add_argument("--offline-seconds", type=float, default=float(tools_cfg.get("offline_seconds", 10.0)))
    ap.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True,
                    help="Open-Unmix and HTDemucs with random weights (default on)")
    ap.add_argument("--peer-seconds", type=float, default=float(tools_cfg.get("peer_seconds", 10.0)))
    args = ap.parse_args(argv)
    try:
        from core.files import check_output_file
        for flag, path in (("--json", args.json), ("--plot", args.plot)):
            if path:
                check_output_file(path, flag)
        threads = cpu.set_threads(args.threads)
        if args.device == "cuda" and not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available")
        modes = [m for m in args.modes.split(",") if m]
        bad = sorted(set(modes) - {"cached", "compiled", "naive"})
        if bad:
            raise UserError(f"--modes: expected some of cached, compiled, naive, got {', '.join(bad)}")
        ks = _hops_per_step(args.hops_per_step)
        records = []
        for preset in [p for p in args.presets.split(",") if p]:
            for mode in modes:
                hops = args.hops if mode == "cached" else max(20, args.hops // 4)
                hops = -(-hops // ROUND_HOPS) * ROUND_HOPS if len(ks) > 1 else hops
                got = bench_streaming(preset, mode, args.device, hops, ks=tuple(ks) if mode != "naive" else (1,))
                records += got
                for line in format_table(got).splitlines()[2:]:
                    print(line, file=sys.stderr, flush=True)
        if args.offline:
            if not args.offline_seconds > 0:
                raise UserError(f"--offline-seconds: expected > 0, got {args.offline_seconds}")
            for preset in [p for p in args.offline_presets.split(",") if p]:
                records.append(bench_offline(preset, args.offline_seconds, args.device))
                print(format_table(records[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
        if args.peers:
            if args.device != "cpu":
                print("peers run on cpu only", file=sys.stderr)
            from tools.peers import bench_peers
            for r in bench_peers(args.peer_seconds, torch.get_num_threads(),
                                 float(tools_cfg.get("demucs_segment", 7.8))):
                records.append(r)
                print(format_table(records[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {threads} threads "
          f"({cpu.available_cores()} usable cores)")
    print(format_table(records))
    if notes(records):
        print(notes(records))
    if args.json:
        from core.files import write_json
        write_json(args.json, records)
    if args.plot:
        from core.figures import save_png
        from tools.plots import bench_figure
        try:
            save_png(bench_figure(records), args.plot)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    from core.errors import run_cli
    from core.signals import exit_fast
    exit_fast(run_cli("python -m tools.bench", main))
