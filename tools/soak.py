"""`python -m tools.soak`: the live host for minutes on a JACK server, optionally against a competing CPU load.

Starts its own JACK server on the dummy backend (real-time when this process may, as a user's JACK runs;
otherwise as is), runs the real CLI (`python -m streaming --input mic --output speakers`, in a subprocess,
as a user starts it) for the given minutes, and, with `--load DUTY`, a second process that burns one core
for DUTY of every 10 ms. While it runs, this tool timestamps the host's status lines (latency, worker load,
xruns, late blocks, head-start steps, twice a second; t = 0 when the stream opens) and samples its resident
memory once a second.

Reported: late blocks, xruns (input overflows, output underflows), adaptive head-start steps, the latency
at the start and at the end, the worker load (mean and peak of the status lines) and the RSS drift (from
the first status line to the end), next to the machine's load average. `--json` writes the record with
the whole timeline; `--plot` draws the late blocks and the latency over time.

    python -m tools.soak [--minutes 10] [--rate 48000] [--blocksize 256] [--load 0.5]
                         [--latency-mode lowest | --preset P | --checkpoint C] [--json soak.json] [--plot soak.png]
                         [-- HOST ARGS]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from core.errors import UserError
from core.machine import cpu_model
from tools.host_args import split_host_args
from tools.jack_dummy import JackDummyServer

ROOT = Path(__file__).resolve().parents[1]
STATUS = re.compile(r"lat\s+(?P<lat>[\d.]+) ms(?: \(\+(?P<steps>\d+) steps?\))? \| load\s+(?P<load>\d+)% \| "
                    r"xruns in (?P<xin>\d+) out (?P<xout>\d+) late (?P<late>\d+)")
BURN_PERIOD_S = 0.01


def burn(duty: float, period_s: float = BURN_PERIOD_S) -> None:
    """Busy-loop for `duty` of every period, sleep for the rest, until killed (the competing load)."""
    while True:
        end = time.perf_counter() + duty * period_s
        while time.perf_counter() < end:
            pass
        time.sleep(max(0.0, (1.0 - duty) * period_s))


def parse_status(line: str) -> dict | None:
    """One status line of the host -> {latency_ms, steps, load, xruns_in, xruns_out, late} (None: another line)."""
    m = STATUS.search(line)
    if m is None:
        return None
    return {"latency_ms": float(m["lat"]), "steps": int(m["steps"] or 0), "load": int(m["load"]) / 100.0,
            "xruns_in": int(m["xin"]), "xruns_out": int(m["xout"]), "late": int(m["late"])}


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


class _Watch:
    """Reads the host's stderr as it comes (timestamped status lines; the rest kept for errors) and samples
    its RSS once a second; stops with the process."""

    def __init__(self, proc: subprocess.Popen, t0: float):
        self.proc, self.t0 = proc, t0
        self.timeline: list[dict] = []
        self.rss: list[tuple[float, float]] = []
        self.other: list[str] = []
        self.threads = [threading.Thread(target=self._read, daemon=True), threading.Thread(target=self._sample, daemon=True)]
        for t in self.threads:
            t.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            status = parse_status(line)
            if line.startswith("streaming: latency"):        # the stream opened: the timeline's t = 0
                self.t0 = time.monotonic()
            if status is not None:
                self.timeline.append({"t": time.monotonic(), **status})
            elif len(self.other) < 400:
                self.other.append(line.rstrip())

    def _sample(self) -> None:
        while self.proc.poll() is None:
            mb = _rss_mb(self.proc.pid)
            if mb is not None:
                self.rss.append((time.monotonic(), round(mb, 2)))
            time.sleep(1.0)

    def join(self) -> None:
        """Wait for the readers; then times are seconds since the stream opened (< 0: model loading,
        compiling, warm-up)."""
        for t in self.threads:
            t.join(10.0)
        for p in self.timeline:
            p["t"] = round(p["t"] - self.t0, 3)
        self.rss = [(round(t - self.t0, 3), mb) for t, mb in self.rss]


def soak(minutes: float, rate: int = 48000, blocksize: int | None = None, load: float = 0.0,
         latency_mode: str | None = None, host_args: tuple[str, ...] = (), startup_timeout: float = 300.0) -> dict:
    """One soak run -> its record (see the module docstring)."""
    import multiprocessing

    import core
    from streaming.host.latency_modes import get_mode
    if not 0 < minutes <= 24 * 60:
        raise UserError(f"--minutes: expected 0 < minutes <= 1440, got {minutes}")
    if not 0.0 <= load < 1.0:
        raise UserError(f"--load: expected a duty cycle 0 <= DUTY < 1 of one core, got {load}")
    if latency_mode:
        blocksize = blocksize or get_mode(core.load_config(), latency_mode).blocksize
    blocksize = blocksize or 256
    seconds = 60.0 * minutes
    load0 = os.getloadavg()
    burner = None
    with tempfile.TemporaryDirectory(prefix="tfswa-soak-") as tmp, \
            JackDummyServer(rate, blocksize, prefix="tfswa-soak") as server:
        stats_path = Path(tmp) / "stats.json"
        cmd = [sys.executable, "-m", "streaming", "--input", "mic", "--output", "speakers", "--duration", str(seconds),
               "--stats-json", str(stats_path), "--no-ui", "--blocksize", str(blocksize)]
        if latency_mode:
            cmd += ["--latency-mode", latency_mode]
        cmd += list(host_args)
        if load > 0:
            burner = multiprocessing.get_context("spawn").Process(target=burn, args=(load,), daemon=True)
            burner.start()
        try:
            t0 = time.monotonic()
            proc = subprocess.Popen(cmd, cwd=ROOT, env=server.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True, errors="replace")
            watch = _Watch(proc, t0)
            try:
                proc.wait(timeout=seconds + startup_timeout)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
            watch.join()
        finally:
            if burner is not None:
                burner.kill()
                burner.join(5)
        if proc.returncode != 0 or not stats_path.is_file():
            raise UserError(f"tools.soak: the host failed (exit {proc.returncode}): "
                            + " | ".join(watch.other[-6:])[-1500:])
        st = json.loads(stats_path.read_text())
        jack_realtime = server.realtime
    return _record(st, watch, minutes, rate, blocksize, load, latency_mode, host_args, jack_realtime, load0)


def rss_span(rss: list, line: list) -> tuple[float | None, float | None]:
    """The host's RSS (MB) at its first and its last status line: the run itself, without the start-up before
    it or the teardown after (where the host frees its model and buffers)."""
    if not rss:
        return None, None
    if not line:
        return rss[0][1], rss[-1][1]
    during = [mb for t, mb in rss if line[0]["t"] <= t <= line[-1]["t"]] or [rss[-1][1]]
    return during[0], during[-1]


def _record(st: dict, watch: _Watch, minutes: float, rate: int, blocksize: int, load: float,
            latency_mode: str | None, host_args: tuple[str, ...], jack_realtime: bool, load0) -> dict:
    line = watch.timeline
    rss_start, rss_end = rss_span(watch.rss, line)
    loads = [p["load"] for p in line]
    return {
        "minutes": minutes, "rate": rate, "blocksize": blocksize, "competing_load": load,
        "latency_mode": latency_mode, "host_args": list(host_args), "engine": st.get("engine"),
        "hops_per_step": st.get("hops_per_step", 1), "jack_realtime": jack_realtime,
        "worker_realtime": st.get("worker_realtime"),
        "seconds": st["seconds"], "blocks": round(st["seconds"] * rate / blocksize),
        "late_blocks": st["late_blocks"], "xruns_in": st["input_overflows"], "xruns_out": st["output_underflows"],
        "late_block_times_s": st["late_block_times_s"], "xrun_times_s": st["xrun_times_s"],
        "headstart_steps": st.get("headstart_steps", 0), "headstart_step_times_s": st.get("headstart_step_times_s", []),
        "latency_start_ms": line[0]["latency_ms"] if line else None,
        "latency_end_ms": round(st["total_latency_ms"], 3),
        "buffer_latency_ms": st["buffer_latency_ms"], "headstart_grown_ms": st.get("headstart_grown_ms", 0.0),
        "worker_load_mean": st.get("worker_load_mean"), "worker_load_peak": max(loads) if loads else None,
        "step_ms_p50": st["step_ms_p50"], "step_ms_p99": st["step_ms_p99"],
        "rss_start_mb": rss_start, "rss_end_mb": rss_end,
        "rss_drift_mb": round(rss_end - rss_start, 2) if rss_start is not None and rss_end is not None else None,
        "loadavg_start": list(load0), "loadavg_end": list(os.getloadavg()), "cores": os.cpu_count(), "cpu": cpu_model(),
        "timeline": line, "rss_timeline": watch.rss,
    }


def read_record(path: str | Path) -> dict:
    """A tools.soak --json record (one-line error when it is not one)."""
    try:
        r = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"--table {path}: expected a tools.soak --json record ({e})") from None
    if not isinstance(r, dict) or "timeline" not in r:
        raise UserError(f"--table {path}: expected a tools.soak --json record")
    return r


def report(r: dict) -> str:
    load = f", competing load {100 * r['competing_load']:.0f} % of a core" if r["competing_load"] else ""
    return "\n".join([
        (f"# {r['minutes']:g} min at {r['rate']} Hz, block {r['blocksize']}{load} | "
         f"{r['latency_mode'] or 'default'} mode, {r['engine']} step, K = {r['hops_per_step']} | JACK "
         f"{'realtime' if r['jack_realtime'] else 'no-realtime'}, worker {'SCHED_FIFO' if r['worker_realtime'] else 'normal'}"
         f" | load average {r['loadavg_start'][0]:.2f} -> {r['loadavg_end'][0]:.2f} on {r['cores']} cores"),
        (f"late blocks {r['late_blocks']} of {r['blocks']} ({100 * r['late_blocks'] / max(1, r['blocks']):.3f} %), "
         f"xruns in {r['xruns_in']} out {r['xruns_out']}, head-start steps {r['headstart_steps']} "
         f"(+{r['headstart_grown_ms']:.1f} ms)"),
        (f"latency {r['latency_start_ms']} -> {r['latency_end_ms']} ms; worker load mean {r['worker_load_mean']} "
         f"peak {r['worker_load_peak']}; step p50/p99 {r['step_ms_p50']}/{r['step_ms_p99']} ms; RSS "
         f"{r['rss_start_mb']} -> {r['rss_end_mb']} MB (drift {r['rss_drift_mb']} MB)"),
    ])


TABLE_HEAD = ("| run | minutes | rate / block | competing load | late blocks | xruns in / out | head-start steps | "
              "latency start -> end | worker load mean / peak | step p50 / p99 | RSS drift |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|")


def table(records: list[tuple[str, dict]]) -> str:
    """A markdown table of soak records (name, record), for the README."""
    rows = [TABLE_HEAD]
    for name, r in records:
        late = f"{r['late_blocks']} of {r['blocks']} ({100 * r['late_blocks'] / max(1, r['blocks']):.2f} %)"
        load = f"{100 * r['competing_load']:.0f} %" if r["competing_load"] else "none"
        rows.append(
            f"| {name} | {r['minutes']:g} | {r['rate']} / {r['blocksize']} | {load} | {late} | "
            f"{r['xruns_in']} / {r['xruns_out']} | {r['headstart_steps']} (+{r['headstart_grown_ms']:.1f} ms) | "
            f"{r['latency_start_ms']} -> {r['latency_end_ms']:.1f} ms | {r['worker_load_mean']} / {r['worker_load_peak']} | "
            f"{r['step_ms_p50']} / {r['step_ms_p99']} ms | {r['rss_drift_mb']:+.1f} MB |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    from core.errors import run_cli
    from core.files import check_output_file
    p = argparse.ArgumentParser(prog="python -m tools.soak", description=__doc__.splitlines()[0],
                                epilog="Arguments after -- go to the host (python -m streaming), e.g. -- --preset tiny")
    p.add_argument("--minutes", type=float, default=10.0, help="how long the host runs (default 10)")
    p.add_argument("--rate", type=int, default=48000, help="JACK server rate (default 48000)")
    p.add_argument("--blocksize", type=int, help="JACK period = host block (default: the latency mode's, else 256)")
    p.add_argument("--load", type=float, default=0.0, metavar="DUTY",
                   help="a competing process burns one core for DUTY of every 10 ms (0.5 = 50 %%; default none)")
    p.add_argument("--latency-mode", choices=("lowest", "balanced", "safe"), help="run the host with this mode")
    p.add_argument("--json", metavar="PATH", help="also write the record (with the timeline) as JSON")
    p.add_argument("--plot", metavar="PNG", help="draw the late blocks and the latency over time")
    p.add_argument("--table", nargs="+", metavar="JSON", help="print the markdown table of these --json records "
                   "(the README's) and exit; no run")
    argv, host_args = split_host_args(argv)
    args = p.parse_args(argv)

    def go() -> int:
        if args.table:
            print(table([(Path(p).stem, read_record(p)) for p in args.table]))
            return 0
        for flag, path in (("--json", args.json), ("--plot", args.plot)):
            if path:
                check_output_file(path, flag)
        r = soak(args.minutes, args.rate, args.blocksize, args.load, args.latency_mode, tuple(host_args))
        print(report(r))
        if args.json:
            from core.files import write_json
            write_json(args.json, r)
        if args.plot:
            from core.figures import save_png
            from tools.plots import soak_figure
            save_png(soak_figure(r), args.plot)
        return 0
    return run_cli("python -m tools.soak", go)


if __name__ == "__main__":
    from core.signals import exit_fast
    exit_fast(main())
