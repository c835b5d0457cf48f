"""`python -m tools.ui_bench`: does the terminal mixer disturb the audio? The same live run against a JACK
server without and with the mixer open (textual's headless pilot, pressing a key every 2 s), alternating,
in one process; per run: late blocks, xruns, mean worker load (compute / audio time), per-hop step p50 / p99,
the process's CPU share and the 1-minute load average of the machine.

    python -m tools.ui_bench --seconds 60 [--rounds 1] [--json ui.json] [--screenshot docs/mixer.svg] \\
        [--jack-server NAME] [-- STREAMING ARGS]

It starts a private JACK server (`jackd -d dummy`, 48 kHz, 256-frame periods, as the tests do) unless
`--jack-server` names a running one. Input: the demo clip (the MUSDB18 preview shipped with stempeg) looped
to the run's length, played to the server's default output through PortAudio: `python -m streaming --input
demo` in real time. STREAMING ARGS after `--` are `python -m streaming` options for the model and the mix
(e.g. `--checkpoint X`, `--preset tiny`, `--mute vocals`, `--fx vocals=reverb:wet_level=0.3`).
`--screenshot` saves the mixer as SVG three quarters into the first run with it open (render a PNG with
`rsvg-convert -o mixer.png mixer.svg`, Debian package librsvg2-bin).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

from core.errors import UserError, run_cli
from core.files import write_json, write_text
from tools.host_args import split_host_args
from tools.jack_dummy import JackDummyServer

HEADLESS_SIZE = (124, 24)


def _looped_demo(rate: int, seconds: float):
    from streaming.host.sources import ArraySource, demo_source
    demo = demo_source()
    if demo.rate != rate:
        import soxr
        audio = soxr.resample(demo._audio, demo.rate, rate)
    else:
        audio = demo._audio
    reps = int(np.ceil((seconds + 2.0) * rate / audio.shape[0]))
    return ArraySource(np.tile(audio, (reps, 1)), rate, f"demo x{reps}")


def one_run(setup, seconds: float, ui: bool, screenshot: str | None = None) -> dict:
    """One live run of `seconds` (the mixer open when `ui`) -> its figures."""
    from streaming.launch import open_live
    from streaming.ui.mixer_app import headless_main_loop
    s = setup
    host = open_live(s["plan"], s["engine"], source=_looped_demo(s["rate"], seconds))
    ui_cfg = s["plan"].settings.ui
    main_loop = None
    if ui:
        async def script(app, pilot):
            t0, shot, k = time.monotonic(), screenshot, 0
            while app.is_running and app.view.running():
                await pilot.pause(0.25)
                elapsed = time.monotonic() - t0
                if elapsed > 2.0 * (k + 1):                  # a user at the keys: nudge a fader every 2 s
                    k += 1
                    await pilot.press("right" if k % 2 else "left")
                if shot and elapsed > 0.75 * seconds:
                    write_text(shot, app.export_screenshot(title="python -m streaming --ui"))
                    shot = None
        main_loop = headless_main_loop(host, ui_cfg, script, s["where"], HEADLESS_SIZE,
                                       f"{host.source.name} -> JACK at {host.rate} Hz, block {host.blocksize}")
    cpu0, wall0, rss0 = time.process_time(), time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stats = host.run(seconds, main_loop=main_loop)
    wall = time.perf_counter() - wall0
    steps = np.asarray(s["engine"].step_times_ms)
    return {
        "ui": ui, "seconds": round(stats.seconds, 2), "late_blocks": stats.late_blocks,
        "late_block_times_s": stats.late_block_times_s,
        "xruns_in": stats.input_overflows, "xruns_out": stats.output_underflows,
        "worker_load_mean": stats.extra.get("worker_load_mean"),
        "step_ms_p50": round(float(np.percentile(steps, 50)), 3) if len(steps) else None,
        "step_ms_p99": round(float(np.percentile(steps, 99)), 3) if len(steps) else None,
        "process_cpu": round((time.process_time() - cpu0) / wall, 3),
        "maxrss_growth_mb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024, 1),
        "loadavg_1min": round(os.getloadavg()[0], 2), "engine": s["engine"].engine_kind,
    }


def _table(runs: list[dict]) -> str:
    cols = ["ui", "seconds", "late_blocks", "xruns_in", "xruns_out", "worker_load_mean", "step_ms_p50", "step_ms_p99",
            "process_cpu", "maxrss_growth_mb", "loadavg_1min"]
    rows = [[str(r[c]) for c in cols] for r in runs]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    line = lambda vals: "  ".join(v.rjust(w) for v, w in zip(vals, widths))
    return "\n".join([line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows])


def main(argv: list[str] | None = None) -> int:
    argv, streaming_args = split_host_args(argv)
    ap = argparse.ArgumentParser(prog="python -m tools.ui_bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each run (default 60)")
    ap.add_argument("--rounds", type=int, default=1, help="pairs of runs (without, with the mixer), alternating")
    ap.add_argument("--jack-server", help="name of a running JACK server (default: start a private dummy one)")
    ap.add_argument("--json", metavar="PATH", help="write the runs as JSON")
    ap.add_argument("--screenshot", metavar="SVG", help="save the mixer as SVG during the first run with it open")
    args = ap.parse_args(argv)

    def run() -> int:
        if not args.seconds > 0 or args.rounds < 1:
            raise UserError(f"expected --seconds > 0 and --rounds >= 1, got {args.seconds}, {args.rounds}")
        for flag, path in (("--json", args.json), ("--screenshot", args.screenshot)):
            if path and not Path(path).resolve().parent.is_dir():
                raise UserError(f"{flag}: folder does not exist: {Path(path).resolve().parent}")
        if args.jack_server:
            os.environ["JACK_DEFAULT_SERVER"] = args.jack_server
        with contextlib.nullcontext() if args.jack_server else JackDummyServer(prefix="ui-bench") as jack:
            if jack is not None:
                os.environ["JACK_DEFAULT_SERVER"] = jack.name
            try:
                return _bench(args, streaming_args)
            finally:
                if "sounddevice" in sys.modules:         # PortAudio lets go of the server before it stops
                    sys.modules["sounddevice"]._terminate()
    return run_cli("python -m tools.ui_bench", run)


def _bench(args, streaming_args: list[str]) -> int:
    import dataclasses

    import sounddevice as sd

    from streaming import cli
    from streaming.build import make_engine, warm_engine
    from streaming.host.sources import find_device, parse_output
    from streaming.plan import plan
    from streaming.settings import load_separator, settings_from_args
    # The CLI's way (settings -> plan -> build -> host), playing the looped demo to the server, no status line.
    sargs = cli.build_parser().parse_args([*streaming_args, "--input", "demo", "--output", "speakers", "-q",
                                           "--no-ui"])
    out = find_device(parse_output("speakers"), "output")
    rate = int(sd.query_devices(out.device)["default_samplerate"])
    settings = settings_from_args(sargs)
    settings = dataclasses.replace(settings, host=dataclasses.replace(settings.host, samplerate=rate))
    sep, where = load_separator(settings, sargs.checkpoint, sargs.preset)
    p = plan(settings, sargs, tuple(sep.stems))
    engine = make_engine(p, sep)
    warm_engine(p, engine)
    setup = {"plan": p, "where": where, "rate": rate, "engine": engine}
    runs = []
    shot = args.screenshot
    for _ in range(args.rounds):
        for ui in (False, True):
            runs.append(one_run(setup, args.seconds, ui, shot if ui else None))
            if ui:
                shot = None
            print(_table(runs[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    plain = [r["worker_load_mean"] for r in runs if not r["ui"] and r["worker_load_mean"] is not None]
    with_ui = [r["worker_load_mean"] for r in runs if r["ui"] and r["worker_load_mean"] is not None]
    diff = 100 * (float(np.mean(with_ui)) - float(np.mean(plain))) if plain and with_ui else None
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs; {where}; {rate} Hz; {args.seconds:g} s per run")
    print(_table(runs))
    if diff is not None:
        print(f"worker load with the mixer minus without: {diff:+.1f} percentage points")
    if args.json:
        write_json(args.json, {"runs": runs, "load_difference_points": diff, "model": where, "seconds": args.seconds})
    return 0


if __name__ == "__main__":
    from core.signals import exit_fast
    exit_fast(main())
