"""`python -m tools.roundtrip`: the live host's input-to-output delay, measured with clicks on a JACK server.

Starts a JACK server with the dummy backend (or uses a running one, `--server`), runs the real host
(`python -m streaming --input mic --output speakers`, in a subprocess, exactly as a user starts it) with a
pass-through network: the chosen model's architecture with the mask head set to 1 (zero head weights, bias
30), so every hop runs the full network at its real cost and the model's algorithmic latency is in the loop,
and the mixer solos one stem (= the input). Two JACK clients of this tool then replace the server's capture
ports at the host's inputs with a click track and record, in one callback, the click track beside the
host's output; each click's delay is found between the two channels (peak within the click interval,
parabolic sub-sample refinement), so server xruns or a missed cycle of one client do not shift it.

Reported: the measured delay (median; min / max; clicks lost to late blocks) next to the host's computed
breakdown (model, resampler, buffers = output head start; `--stats-json`); the two must agree within one
device block. The device's own latency (capture + playback, what an audio interface adds) is not in the
JACK graph: the total adds the figure the host's audio API reports (and JACK's declared port latencies are
listed too). The host's late blocks, xruns, head-start plan and the machine's load average come along.

    python -m tools.roundtrip [--preset streaming | --checkpoint P | --latency-mode lowest]
                              [--rate 48000] [--blocksize 256] [--seconds 10] [--json out.json] [-- HOST ARGS]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tools.host_args import split_host_args
from tools.jack_dummy import JackDummyServer

ROOT = Path(__file__).resolve().parents[1]
CLICK = 0.5                  # click amplitude (-6 dBFS: below the mixer's limiter threshold)


# pass-through model ----------------------------------------------------------------------------------
def passthrough_checkpoint(path: Path, checkpoint: str | None, preset: str | None,
                           levels: tuple[float, ...] | None = None) -> tuple[str, tuple[str, ...]]:
    """Write the model's architecture with a constant mask head to `path`; returns (what, stems).

    Every stem's mask is 1 (each stem is the input), or `levels[i]` for stem i (0 < level < 1), so that a
    test can tell the stems apart by their gain alone."""
    import torch

    import model
    if checkpoint:
        sep, what = model.load_checkpoint(checkpoint), f"{checkpoint} (mask head set to constants)"
    else:
        preset = preset or "streaming"
        sep, what = model.build_separator(preset).eval(), f"preset {preset} (mask head set to constants)"
    stems = tuple(sep.stems)
    if levels is not None and (len(levels) != len(stems) or not all(0.0 < v < 1.0 for v in levels)):
        raise ValueError(f"expected one mask level in (0, 1) per stem of {stems}, got {levels}")
    with torch.no_grad():
        sep.net.head.weight.zero_()
        bias = sep.net.head.bias.view(-1, len(stems), sep.net.cfg.audio_channels)   # (sf, S, C), as the head
        if levels is None:
            bias.fill_(30.0)           # sigmoid(30) == 1.0 in float32: every stem is the input
        else:
            for i, v in enumerate(levels):
                bias[:, i] = math.log(v / (1.0 - v))
    model.save_checkpoint(sep, path, steps=0)
    return what, stems


# click player / recorder -------------------------------------------------------------------------------
class ClickProbe:
    """Two JACK clients: `play` writes a click every `interval` frames; `rec` records, in one callback, the
    click track itself (port `ref`) and the host's output (port `in`). Each delay is measured between the two
    channels of that one recording, so neither the server's frame clock (the dummy driver resynchronises it
    after an xrun) nor a cycle one client misses can shift it. Nothing is allocated in the callbacks."""

    def __init__(self, server: str, seconds: float, interval: int):
        import jack

        from streaming.host.jack_ports import ProcessCallback
        self.play = jack.Client("tfswa-rt-play", no_start_server=True, servername=server)
        self.rec = jack.Client("tfswa-rt-rec", no_start_server=True, servername=server)
        self.rate = int(self.play.samplerate)
        self.out = self.play.outports.register("click")
        self.inp = self.rec.inports.register("in")
        self.ref = self.rec.inports.register("ref")
        self.interval = int(interval)
        self.total = int(seconds * self.rate)
        self.buf = np.zeros((self.total + 2 * self.interval, 2), np.float32)   # columns: host output, click track
        self.running = False
        self.played = 0
        self.recorded = 0
        self.xruns = 0
        # Closed without a process thread cancelled inside Python (see streaming.host.jack_ports.ProcessCallback).
        self.runners = [ProcessCallback(self.play, self._play, silence=(self.out,)), ProcessCallback(self.rec, self._rec)]
        self.play.set_xrun_callback(self._xrun)

    def _xrun(self, delay_usecs) -> None:
        if self.running:
            self.xruns += 1

    def _play(self, frames: int) -> None:
        out = self.out.get_array()
        out.fill(0.0)
        if not self.running:
            return
        t0 = self.played
        self.played += frames
        if t0 >= self.total:
            return
        at = -(-t0 // self.interval) * self.interval
        while at < t0 + frames:
            out[at - t0] = CLICK
            at += self.interval

    def _rec(self, frames: int) -> None:
        if not self.running:
            return
        pos = self.recorded
        if pos + frames <= len(self.buf):
            self.buf[pos:pos + frames, 0] = self.inp.get_array()
            self.buf[pos:pos + frames, 1] = self.ref.get_array()
            self.recorded += frames

    def activate(self) -> None:
        for runner in self.runners:
            runner.activate()

    def go(self) -> None:
        self.running = True

    def close(self) -> None:
        for runner in self.runners:
            runner.close()

    def delays(self) -> tuple[np.ndarray, int]:
        """(delay in frames of each click found, clicks lost). A click is found when the host output's peak
        within the click interval after the reference click is above a quarter of the click."""
        rec, ref = self.buf[:self.recorded, 0], self.buf[:self.recorded, 1]
        found, lost = [], 0
        for at in np.flatnonzero(ref > 0.5 * CLICK):
            seg = rec[at:at + self.interval]
            if len(seg) < self.interval:
                break
            i = int(np.argmax(np.abs(seg)))
            if abs(seg[i]) < 0.25 * CLICK:
                lost += 1
                continue
            frac = 0.0
            if 0 < i < len(seg) - 1:        # parabolic refinement of the peak
                y0, y1, y2 = abs(seg[i - 1]), abs(seg[i]), abs(seg[i + 1])
                den = y0 - 2 * y1 + y2
                frac = 0.5 * (y0 - y2) / den if den else 0.0
            found.append(i + frac)
        return np.asarray(found, np.float64), lost


def _host_ports(client, timeout: float, proc, err_path: Path) -> tuple[list[str], list[str]]:
    """The host's input ports (fed by system:capture_*) and its first output port (to system:playback_1)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            from core.errors import UserError
            tail = err_path.read_text(errors="replace").strip().splitlines()[-3:]
            raise UserError(f"tools.roundtrip: the host exited before its stream opened: {' | '.join(tail)}")
        ins = []
        for cap in ("system:capture_1", "system:capture_2"):
            ins += [p.name for p in client.get_all_connections(cap) if not p.name.startswith("tfswa-rt-")]
        outs = [p.name for p in client.get_all_connections("system:playback_1") if not p.name.startswith("tfswa-rt-")]
        if ins and outs:
            return sorted(set(ins)), outs[:1]
        time.sleep(0.1)
    from core.errors import UserError
    raise UserError(f"tools.roundtrip: the host's ports did not appear on the JACK server within {timeout:g} s")


def _declared_device_ms(env: dict, rate: int) -> float | None:
    """JACK's declared latency of the physical ports, capture + playback (what an interface would add), read
    with `jack_lsp -l` (JACK-Client has no port latency API); None when jack_lsp is missing."""
    import re
    total = 0
    for port, kind in (("system:capture_1", "capture"), ("system:playback_1", "playback")):
        try:
            out = subprocess.run(["jack_lsp", "-l", port], check=False, env=env, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            return None
        m = re.search(rf"port {kind} latency = \[ *(\d+) +(\d+) *\]", out)
        if m is None:
            return None
        total += int(m.group(2))
    return 1000.0 * total / rate


def measure(preset: str | None = None, checkpoint: str | None = None, latency_mode: str | None = None,
            rate: int = 48000, blocksize: int | None = None, seconds: float = 10.0, server: str | None = None,
            host_args: tuple[str, ...] = (), startup_timeout: float = 300.0, interval_s: float = 0.25,
            realtime: bool = False) -> dict:
    """One measured round trip -> a record (see the module docstring)."""
    import core
    import model
    from core.errors import UserError
    from streaming.host.latency_modes import get_mode

    config = core.load_config()
    if latency_mode:
        mode = get_mode(config, latency_mode)
        blocksize = blocksize or mode.blocksize
        if not (checkpoint or preset):
            checkpoint, preset = mode.model_choice()
    blocksize = blocksize or 256
    if not checkpoint and not preset:
        checkpoint = str(model.DEFAULT_CHECKPOINT) if model.DEFAULT_CHECKPOINT.is_file() else None
        preset = None if checkpoint else "streaming"
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="tfswa-rt-") as tmp:
        ckpt = Path(tmp) / "passthrough.ckpt"
        what, stems = passthrough_checkpoint(ckpt, checkpoint, preset)
        stats_path = Path(tmp) / "stats.json"
        cmd = [sys.executable, "-m", "streaming", "--input", "mic", "--output", "speakers", "--checkpoint", str(ckpt),
               "--solo", stems[0], "--late", "silence", "--stats-json", str(stats_path), "-q"]
        if latency_mode:
            cmd += ["--latency-mode", latency_mode]
        if "--blocksize" not in host_args:
            cmd += ["--blocksize", str(blocksize)]
        if "--config" not in host_args:       # a fixed latency to measure: no head-start steps mid-run
            fixed = Path(tmp) / "fixed_headstart.yaml"
            fixed.write_text("host:\n  adaptive_headstart: false\n")
            cmd += ["--config", str(fixed)]
        cmd += list(host_args)
        srv = JackDummyServer(rate, blocksize, realtime=realtime, prefix="tfswa-rt") if server is None else None
        ctx = srv if srv is not None else _Existing(server)
        with ctx as s:
            env = s.env
            interval = int(interval_s * rate) + 37        # clicks wander across block and hop phases
            probe = ClickProbe(s.name, seconds, interval)
            rate = probe.rate
            # The host's stderr goes to a file: libjack prints a line per xrun, which would fill a pipe and block it.
            err_path = Path(tmp) / "host.err"
            with open(err_path, "w") as err_file:
                host = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=err_file, stdout=subprocess.DEVNULL)
            try:
                probe.activate()
                ins, outs = _host_ports(probe.play, startup_timeout, host, err_path)
                for p in ins:
                    for cap in ("system:capture_1", "system:capture_2"):
                        try:
                            probe.play.disconnect(cap, p)
                        except Exception:  # noqa: BLE001, S110 - not connected
                            pass
                    probe.play.connect("tfswa-rt-play:click", p)
                probe.rec.connect(outs[0], "tfswa-rt-rec:in")
                probe.rec.connect("tfswa-rt-play:click", "tfswa-rt-rec:ref")
                device_declared = _declared_device_ms(env, rate)
                time.sleep(0.5)                        # let the host settle on the new connections
                probe.go()
                time.sleep(seconds + 0.5)
                host.send_signal(signal.SIGTERM)       # stops like Ctrl-C (SIGINT may be ignored in a background job)
                try:
                    host.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    raise UserError("tools.roundtrip: the host did not stop within 60 s of SIGTERM") from None
            finally:
                err = err_path.read_text(errors="replace")
                if host.poll() is None:
                    host.kill()
                    host.wait()
                probe.close()
        # A live run stopped by SIGTERM ends normally (stats written) and says so with 128 + 15 (core.signals)
        if host.returncode not in (0, 128 + signal.SIGTERM):
            raise UserError(f"tools.roundtrip: the host failed (exit {host.returncode}): {err.strip()[-2000:]}")
        st = json.loads(stats_path.read_text())
    return _record(st, probe, err, what, latency_mode, rate, seconds, device_declared, realtime, load0)


def _record(st: dict, probe, err: str, what: str, latency_mode: str | None, rate: int, seconds: float,
            device_declared: float | None, realtime: bool, load0: tuple) -> dict:
    """The host's stats, the probe's clicks and the host's start line -> the round trip's record."""
    delays, lost = probe.delays()
    ms = 1000.0 * delays / rate if len(delays) else np.full(1, np.nan)    # nan: no click came back
    block_ms = 1000.0 * st["blocksize"] / rate
    host_computed = (st["algorithmic_latency_ms"] + st.get("chain_latency_ms", 0.0) + st["resampler_latency_ms"]
                     + st["buffer_latency_ms"])
    measured = float(np.median(ms))
    measured_r = None if np.isnan(measured) else round(measured, 3)
    start_line = next((ln for ln in err.splitlines() if "latency " in ln and " = model" in ln), "")
    return {
        "model": what, "latency_mode": latency_mode, "rate": rate, "blocksize": st["blocksize"],
        "model_rate": st["model_sample_rate"], "seconds": seconds, "engine": st.get("engine"),
        "clicks": int(len(delays) + lost), "clicks_lost": int(lost),
        "measured_ms": measured_r, "measured_ms_min": None if measured_r is None else round(float(ms.min()), 3),
        "measured_ms_max": None if measured_r is None else round(float(ms.max()), 3),
        "measured_all_ms": [] if measured_r is None else [round(float(v), 3) for v in ms],
        "computed_ms": round(host_computed, 3),
        "agree_within_block": measured_r is not None and bool(abs(measured - host_computed) <= block_ms),
        "block_ms": round(block_ms, 3),
        "model_ms": st["algorithmic_latency_ms"], "chains_ms": st.get("chain_latency_ms", 0.0),
        "resampler_ms": st["resampler_latency_ms"], "resample_quality": st.get("resample_quality"),
        "buffers_ms": st["buffer_latency_ms"], "headstart_blocks": st.get("headstart_blocks"),
        "headstart_grown_ms": st.get("headstart_grown_ms", 0.0),
        "worker_block_ms_p50": st.get("worker_block_ms_p50"), "worker_block_ms_p99": st.get("worker_block_ms_p99"),
        "device_ms": st["device_latency_ms"], "device_ms_jack_declared": None if device_declared is None else round(device_declared, 3),
        "total_measured_ms": None if measured_r is None else round(measured + st["device_latency_ms"], 3),
        "total_computed_ms": st["total_latency_ms"],
        "server_xruns": probe.xruns, "late_blocks": st["late_blocks"], "jack_realtime": realtime,
        "worker_realtime": st.get("worker_realtime"), "late_block_times_s": st["late_block_times_s"],
        "xruns": max(st["input_overflows"], st["output_underflows"]), "host_seconds": st["seconds"],
        "step_ms_p50": st.get("step_ms_p50"), "step_ms_p99": st.get("step_ms_p99"),
        "worker_load": st.get("worker_load"), "loadavg_start": [round(x, 2) for x in load0],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()], "cores": os.cpu_count(),
        "start_line": start_line.strip(),
    }


class _Existing:
    """A JACK server started by someone else (`--server NAME`)."""

    def __init__(self, name: str):
        self.name = name
        self.env = dict(os.environ, JACK_DEFAULT_SERVER=name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def report(r: dict) -> str:
    m = r["measured_ms"]
    lines = [
        (f"# {r['model']} | {r['rate']} Hz, block {r['blocksize']} | engine {r['engine']} | "
         f"{r['seconds']:g} s, {r['clicks']} clicks | JACK {'realtime' if r['jack_realtime'] else 'no-realtime'}, worker "
         f"{'SCHED_FIFO' if r['worker_realtime'] else 'normal'} | load average {r['loadavg_start'][0]:.2f} -> "
         f"{r['loadavg_end'][0]:.2f} on {r['cores']} cores"),
        ("measured (host, click in -> click out): no click came back" if m is None else
         f"measured (host, click in -> click out): {m:.2f} ms (min {r['measured_ms_min']:.2f}, "
         f"max {r['measured_ms_max']:.2f}; {r['clicks_lost']} of {r['clicks']} clicks lost)"),
        f"computed (host): {r['computed_ms']:.2f} ms = model {r['model_ms']:.2f}"
        + (f" + chains {r['chains_ms']:.2f}" if r["chains_ms"] else "")
        + f" + resampler {r['resampler_ms']:.2f} ({r['resample_quality']}) + buffers {r['buffers_ms']:.2f} "
        f"({r['headstart_blocks']} blocks; worker p99 {r['worker_block_ms_p99']} ms per block)  -> "
        + ("agree within one block" if r["agree_within_block"] else f"DIFFER by more than one block ({r['block_ms']} ms)"),
        (f"device: {r['device_ms']:.2f} ms (audio API; JACK declares {r['device_ms_jack_declared']} ms)  -> "
         f"total round trip {'-' if m is None else format(r['total_measured_ms'], '.2f')} ms measured "
         f"({r['total_computed_ms']:.2f} computed)"),
        (f"late blocks {r['late_blocks']} (first at {r['late_block_times_s'][:4]} s), host xruns {r['xruns']}, JACK "
         f"server xruns while measuring {r['server_xruns']}, step p50/p99 {r['step_ms_p50']}/{r['step_ms_p99']} ms, "
         f"worker load {r['worker_load']}"),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from core.errors import run_cli
    p = argparse.ArgumentParser(prog="python -m tools.roundtrip", description=__doc__.splitlines()[0],
                                epilog="Arguments after -- go to the host (python -m streaming), e.g. -- --no-compile")
    p.add_argument("--preset", help="model preset (random weights; pass-through head)")
    p.add_argument("--checkpoint", help="model checkpoint (its architecture; pass-through head)")
    p.add_argument("--latency-mode", choices=("lowest", "balanced", "safe"), help="run the host with this mode")
    p.add_argument("--rate", type=int, default=48000, help="JACK server rate (default 48000; 44100 bypasses resampling)")
    p.add_argument("--blocksize", type=int, help="JACK period = host block (default: the latency mode's, else 256)")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds of clicks (default 10)")
    p.add_argument("--server", help="use this running JACK server instead of starting a dummy one")
    p.add_argument("--realtime", action="store_true", help="start the dummy server with real-time scheduling (jackd -R; "
                   "its clients' process threads run SCHED_FIFO, as on a musician's machine; needs rtprio)")
    p.add_argument("--json", metavar="PATH", help="also write the record as JSON")
    argv, host_args = split_host_args(argv)
    args = p.parse_args(argv)

    def go() -> int:
        r = measure(args.preset, args.checkpoint, args.latency_mode, args.rate, args.blocksize, args.seconds,
                    args.server, tuple(host_args), realtime=args.realtime)
        print(report(r))
        if args.json:
            Path(args.json).write_text(json.dumps(r, indent=2) + "\n")
        return 0
    return run_cli("python -m tools.roundtrip", go)


if __name__ == "__main__":
    from core.signals import exit_fast
    exit_fast(main())
