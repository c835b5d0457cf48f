"""CPU cost of making `real-vocals` training tracks: seconds of CPU per second of generated audio.

    python -m training.recipes.real_vocals_cost [--tracks 12] [--seconds 12] [--kind all|songs|real|...]

Makes `--tracks` virtual tracks (seed 0, indices from 1000) with the project's `real_vocals` settings, after one
warm-up track (imports, numba kernels, soundfont loading), and prints one JSON line per accompaniment kind:
{"kind", "tracks", "audio_s", "cpu_s", "cpu_per_audio_s"}. `all` keeps the configured accompaniment weights;
a kind name gives that kind weight 1 and the others 0. CPU time is this process's (time.process_time), so a
busy machine slows the wall clock, not the figure.
"""
from __future__ import annotations

import argparse
import json
import time

import core

SR = 44100


def measure(kind: str, tracks: int, seconds: float, first: int = 1000) -> dict:
    from training.real_vocals import RealVocalsConfig, RealVocalTracks, find_data_root

    d = core.load_config()["real_vocals"]
    d["track_seconds"] = seconds
    if kind != "all":
        d["accompaniment"] = {k: float(k == kind) for k in d["accompaniment"]}
    cfg = RealVocalsConfig.from_dict(d)
    src = RealVocalTracks(find_data_root(None, cfg.root), seed=0, sample_rate=SR, cfg=cfg, cache=1)
    src.track(first - 1)  # warm-up: imports, JIT kernels, soundfonts
    t0 = time.process_time()
    for i in range(first, first + tracks):
        src.track(i)
    cpu = time.process_time() - t0
    audio = tracks * seconds
    return {"kind": kind, "tracks": tracks, "audio_s": audio, "cpu_s": round(cpu, 2),
            "cpu_per_audio_s": round(cpu / audio, 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.recipes.real_vocals_cost", description=__doc__.split("\n")[0])
    ap.add_argument("--tracks", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--kind", action="append", help="accompaniment kind(s) to measure alone, or all (default)")
    args = ap.parse_args(argv)
    for kind in args.kind or ["all"]:
        print(json.dumps(measure(kind, args.tracks, args.seconds)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
