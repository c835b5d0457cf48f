"""The singer's mic end to end: `python -m streaming --input mic --jack-ports --mic 3` against a real JACK server
(dummy backend, four capture ports). A second client plays a noise burst into the host's `mic_in` port and
records its `mic_L` and `mix_L` ports in the same cycles: the mic comes out unchanged (an empty mic chain at
0 dB), on both ports, without the separation delay."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.streaming.conftest import ROOT
from tools.jack_dummy import JackDummyServer

RATE, PERIOD = 48000, 256
BURST = 2 * RATE                 # frames of tone


@pytest.fixture
def four_inputs():
    with JackDummyServer(RATE, PERIOD, prefix="tfswa-mic", capture=4) as server:
        yield server.env


def _play_and_record(env: dict, seconds: float, timeout: float = 120.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """-> (mic_L, mix_L) recorded from the cycle the burst starts, the burst, and the JACK glitches this
    client saw (xruns reported by the server plus cycles it missed)."""
    os.environ["JACK_DEFAULT_SERVER"] = env["JACK_DEFAULT_SERVER"]
    import jack

    from streaming.host.jack_ports import ProcessCallback
    client = jack.Client("pytest-singer", no_start_server=True)
    out = client.outports.register("voice")
    ins = [client.inports.register(n) for n in ("mic", "mix")]
    n_rec = round(seconds * RATE)
    rec = np.zeros((2, n_rec), np.float32)
    # Noise, not a tone: its correlation with itself has one peak, at the true delay.
    tone = (0.1 * np.random.default_rng(7).standard_normal(BURST)).clip(-0.4, 0.4).astype(np.float32)
    state = {"go": False, "n": 0, "xruns": 0, "skips": 0, "last": None}
    client.set_xrun_callback(lambda _delay: state.__setitem__("xruns", state["xruns"] + 1))

    def process(frames):
        now = client.last_frame_time            # a jump of more than a period: this client missed a cycle
        if state["last"] is not None and now - state["last"] > frames and state["go"]:
            state["skips"] += 1
        state["last"] = now
        buf = out.get_array()
        n = state["n"]
        if not state["go"] or n >= n_rec:
            buf.fill(0.0)
            return
        k = min(frames, n_rec - n)
        buf.fill(0.0)
        if n < BURST:
            m = min(k, BURST - n)
            buf[:m] = tone[n:n + m]
        for i, port in enumerate(ins):
            rec[i, n:n + k] = port.get_array()[:k]
        state["n"] = n + k

    runner = ProcessCallback(client, process)
    deadline = time.monotonic() + timeout
    while not client.get_ports("tfswa-live:mic_in") or not client.get_ports("tfswa-live:mic_L"):
        assert time.monotonic() < deadline, "the host's JACK ports did not appear"
        time.sleep(0.1)
    runner.activate()
    try:
        while True:                                   # ports are registered before the client activates
            try:
                client.disconnect("system:capture_3", "tfswa-live:mic_in")
                break
            except jack.JackError:
                assert time.monotonic() < deadline, "the host did not connect system:capture_3 to its mic"
                time.sleep(0.1)
        client.connect(out, "tfswa-live:mic_in")
        client.connect("tfswa-live:mic_L", ins[0])
        client.connect("tfswa-live:mix_L", ins[1])
        time.sleep(1.0)                               # the host's start-up: head start planned, stream running
        state["go"] = True
        while state["n"] < n_rec and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        runner.close()
    return rec[0], rec[1], tone, state["xruns"] + state["skips"]


def test_the_mic_reaches_its_port_and_the_mix_unchanged_and_early(four_inputs, tmp_path):
    cfg = tmp_path / "dry_mic.yaml"
    cfg.write_text("chains:\n  mic: []\n")             # no compressor, no room: the mic must come out as it went in
    stats = tmp_path / "stats.json"
    proc = subprocess.Popen([sys.executable, "-m", "streaming", "--input", "mic", "--output", "speakers",
                             "--jack-ports", "--mic", "3", "--preset", "tiny", "--config", str(cfg),
                             "--stats-json", str(stats), "-q", "--no-ui"],
                            cwd=ROOT, env=four_inputs, stderr=subprocess.PIPE, text=True)
    try:
        mic, mix, tone, glitches = _play_and_record(four_inputs, 3.0)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, 128 + 15) and "Traceback" not in err, err
    d = json.loads(stats.read_text())
    assert np.abs(mic).max() > 0.1, f"no mic on tfswa-live:mic_L: {d}"
    n = RATE // 2
    scores = [float(np.dot(mic[lag:lag + n], tone[:n])) for lag in range(16 * PERIOD)]
    lag = int(np.argmax(scores))
    # Without the separation delay: the mic's head start (mic.prefill_blocks = 2) plus a period in and out.
    assert lag <= 4 * PERIOD, f"the mic came out {lag} frames ({1000 * lag / RATE:.1f} ms) late: {d}"
    # Every cycle that carries the mic carries it unchanged at that one delay (a cycle the worker missed is
    # silent, and the ring skips it so the delay stays); a loaded machine may miss some, not most.
    first, last = lag // PERIOD + 1, (lag + BURST) // PERIOD - 1
    cycles = [c for c in range(first, last) if np.any(mic[c * PERIOD:(c + 1) * PERIOD])]
    assert len(cycles) >= 0.5 * (last - first), f"{len(cycles)} of {last - first} cycles carry the mic: {d}"
    # A JACK cycle that this client or the host missed or finished late (the two feed each other) repeats or
    # drops one period of the burst on its way through the graph: such a cycle carries a neighbouring period
    # of the burst, still unchanged. Only as many as the glitches the server reported, never otherwise.
    off = []
    for c in cycles:
        got = mic[c * PERIOD:(c + 1) * PERIOD]
        shifts = [k for k in (0, -1, 1, -2, 2) if 0 <= c * PERIOD - lag - k * PERIOD <= BURST - PERIOD and
                  np.allclose(got, tone[c * PERIOD - lag - k * PERIOD:(c + 1) * PERIOD - lag - k * PERIOD], atol=1e-5)]
        assert shifts, f"cycle {c}: the mic came out changed (max |diff| " \
                       f"{np.abs(got - tone[c * PERIOD - lag:(c + 1) * PERIOD - lag]).max():.3g}): {d}"
        if shifts[0]:
            off.append((c, shifts[0]))
    assert len(off) <= 2 * glitches, f"{len(off)} cycles off the delay with {glitches} JACK glitches: {off} {d}"
    # The music inputs are silent (the dummy driver's capture ports), so the mix carries the mic alone.
    np.testing.assert_allclose(mix, mic, atol=2e-3)
    # The reported mic latency: its head start and one block in the host, plus JACK's period in and out.
    host_ms = d["mic_latency_ms"] - d["device_latency_ms"]
    assert host_ms == pytest.approx(1000.0 * 3 * PERIOD / RATE, abs=0.01), d
    assert 1000.0 * lag / RATE <= host_ms + 1000.0 * PERIOD / RATE, (lag, d["mic_latency_ms"])
