"""Routing (sources -> output channels), the control registry, and named JACK ports on a real JACK server."""
from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from core.errors import UserError
from streaming.control.registry import Control, ControlRegistry
from streaming.host.jack_ports import ProcessCallback
from streaming.processing.routing import Route, Router, jack_layout, parse_route
from tests.streaming.conftest import ROOT
from tools.roundtrip import passthrough_checkpoint

STEMS = ("vocals", "accompaniment")


def test_parse_route():
    assert parse_route("vocals=3,4") == Route("vocals", (2, 3))
    assert parse_route("mix=1-2") == Route("mix", (0, 1)) and parse_route("dry=5") == Route("dry", (4,))
    for bad in ("vocals", "vocals=0", "vocals=1,2,3", "vocals=a", "vocals=2,2"):
        with pytest.raises(UserError, match="--route SOURCE=CHANNELS"):
            parse_route(bad)


def test_router_renders_and_checks():
    r = Router([parse_route("accompaniment=1,2"), parse_route("vocals=3"), parse_route("mix=3")], STEMS, mic=False)
    assert r.n_channels == 3 and r.uses_stems and not r.uses_dry
    stems = np.stack([np.full((2, 4), 0.1, np.float32), np.full((2, 4), 0.2, np.float32)])
    stems[0, 1] = 0.3
    mix = np.full((2, 4), 0.05, np.float32)
    out = r.render(stems, mix, None, 0.7, 0.99)
    np.testing.assert_allclose(out[0], 0.2)
    np.testing.assert_allclose(out[2], 0.2 + 0.05)            # vocals' mono sum (0.1+0.3)/2, plus the mix
    with pytest.raises(UserError, match="output device has 2 output channels"):
        Router([parse_route("vocals=3,4")], STEMS, mic=False, out_channels=2)
    with pytest.raises(UserError, match="unknown source; expected one of: vocals, accompaniment, mix, dry, mic"):
        Router([parse_route("drums=1,2")], STEMS, mic=False)
    with pytest.raises(UserError, match="expected --mic"):
        Router([parse_route("mic=1,2")], STEMS, mic=False)
    routes, names = jack_layout(STEMS, mic=True)
    assert names == ["mix_L", "mix_R", "vocals_L", "vocals_R", "accompaniment_L", "accompaniment_R", "mic_L", "mic_R"]
    taps = Router(routes, STEMS, mic=True).mic_taps()
    assert taps == [(6, 0), (7, 1), (0, 0), (1, 1)]             # its own ports and the mix


def test_registry_requests_apply_in_order_on_the_worker():
    got = []
    reg = ControlRegistry(queue_size=8)
    reg.add(Control("key", -12, 12, 0.0, got.append, "st", midi_step=1.0))
    reg.add(Control("vocals.mute", 0, 1, 0.0, got.append, curve="toggle"))
    reg.add(Control("vocals.gain_db", -math.inf, 12, 0.0, got.append, "dB", "fader"))
    reg.request("key", 20)                                     # clamped
    reg.request_step("key", -1)
    reg.request_toggle("vocals.mute")
    reg.request("vocals.gain_db", reg["vocals.gain_db"].from_midi(64))
    assert got == [] and reg.apply_pending() == 4
    assert got[:3] == [12.0, 11.0, 1.0] and abs(got[3] - 40 * math.log10(64 / 127)) < 1e-12
    assert reg["key"].from_midi(64) == 0.0 and reg["key"].from_midi(127) == 12.0 and reg["key"].from_midi(0) == -12.0
    assert reg.snapshot()["key"] == 11.0
    with pytest.raises(UserError, match="unknown control 'keys'"):
        reg.request("keys", 1)
    with pytest.raises(UserError, match="expected a number"):
        reg.request("key", float("nan"))


# Cycles left out after the last connection is made: until the server has re-sorted its graph, a just
# connected input can hold the previous cycle's buffer while the others hold this cycle's (seen once: the
# first captured mix cycle was the sum of the stems one cycle earlier).
SETTLE_CYCLES = 16


def _capture(env: dict, sources: list[str], cycles: int, timeout: float = 90.0) -> tuple[np.ndarray, np.ndarray]:
    """A JACK client in this process: connect tfswa-live:<source> to our inputs and keep `cycles` process
    cycles in which the first source is not silent (on a loaded machine the host plays some late blocks as
    silence) -> ((cycles, len(sources), frames), (cycles,) bool: the server reported an xrun within a cycle
    of it, when a client that overran its period may have left its ports half written)."""
    os.environ["JACK_DEFAULT_SERVER"] = env["JACK_DEFAULT_SERVER"]
    import jack
    client = jack.Client("pytest-capture", no_start_server=True)
    ins = [client.inports.register(s) for s in sources]
    rec = np.zeros((cycles, len(sources), client.blocksize), np.float32)
    xrun_at = np.zeros(cycles, np.int64)
    state = {"n": 0, "go": False, "xruns": 0, "settle": SETTLE_CYCLES}

    def process(frames):
        n = state["n"]
        if state["go"] and state["settle"] > 0:  # new connections reach the graph's order a few cycles late
            state["settle"] -= 1
        elif state["go"] and n < cycles and frames == rec.shape[-1]:
            first = ins[0].get_array()
            if np.any(first):
                for i, port in enumerate(ins):
                    rec[n, i] = port.get_array()
                xrun_at[n] = state["xruns"]
                state["n"] = n + 1

    def xrun(delay_usecs):
        state["xruns"] += 1

    runner = ProcessCallback(client, process)             # closes without a thread cancelled inside Python
    client.set_xrun_callback(xrun)
    deadline = time.monotonic() + timeout
    while not client.get_ports("tfswa-live:mix_L"):
        assert time.monotonic() < deadline, "the host's JACK ports did not appear"
        time.sleep(0.1)
    runner.activate()
    try:
        for port, s in zip(ins, sources):
            while True:                         # the host registers its ports before it activates them
                try:
                    client.connect(f"tfswa-live:{s}", port)
                    break
                except jack.JackError:
                    assert time.monotonic() < deadline, "cannot connect to the host's JACK ports"
                    time.sleep(0.1)
        state["go"] = True
        while state["n"] < cycles and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.05)                        # an xrun in the last kept cycle is reported after it
        xrun_at = np.append(xrun_at, state["xruns"])
    finally:
        runner.close()
    n = state["n"]
    counts = xrun_at[:n + 1]
    near = np.diff(counts) != 0                 # an xrun between cycle i and i + 1 (or after the last)
    near[1:] |= near[:-1].copy()                # ... or between cycle i - 1 and i
    return rec[:n], near


def test_jack_ports_carry_each_stem(jack_server, tmp_path):
    src = tmp_path / "tone.wav"
    t = np.arange(6 * 48000) / 48000
    x = 0.2 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 3000 * t)
    sf.write(src, np.stack([x, x], 1).astype(np.float32), 48000, subtype="FLOAT")
    # A long head start (1.6 s of prefill) so that a busy shared CPU still delivers audio to the ports.
    cfg = tmp_path / "headroom.yaml"
    cfg.write_text("host:\n  prefill_blocks: 300\n  ring_seconds: 4.0\n")
    # Constant masks (vocals 0.8, accompaniment 0.2): random weights give both stems ~0.5 of the input, too
    # close to tell apart, while constant masks make each port's content known exactly.
    ckpt = tmp_path / "fixed.pt"
    passthrough_checkpoint(ckpt, None, "tiny", levels=(0.8, 0.2))
    proc = subprocess.Popen([sys.executable, "-m", "streaming", "--input", str(src), "--jack-ports", "--checkpoint", str(ckpt),
                             "-q", "--late", "silence", "--config", str(cfg)], cwd=ROOT, env=jack_server,
                            stderr=subprocess.PIPE, text=True)
    try:
        rec, near_xrun = _capture(jack_server, ["mix_L", "vocals_L", "accompaniment_L"], cycles=40)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err, err
    assert rec.shape[0] == 40, f"only {rec.shape[0]} cycles with audio on tfswa-live:mix_L"
    mix, voc, acc = rec[:, 0], rec[:, 1], rec[:, 2]
    rms = [float(np.sqrt(np.mean(a ** 2))) for a in (mix, voc, acc)]
    assert min(rms) > 1e-3, rms                                    # each port carries audio
    # Ports are written in the same JACK cycle: the mix is exactly the sum of the two stems (no limiting here),
    # and each stem port carries its own stem (vocals four times the accompaniment), in every cycle the server
    # did not cut short by an xrun.
    clean = ~near_xrun
    assert clean.sum() >= 20, f"{int(near_xrun.sum())} of 40 cycles next to a server xrun"
    np.testing.assert_allclose(mix[clean], voc[clean] + acc[clean], atol=2e-5)
    np.testing.assert_allclose(voc[clean], 4.0 * acc[clean], atol=1e-4)
    np.testing.assert_allclose(acc[clean], 0.2 * mix[clean], atol=1e-4)


def test_midi_param_and_step_bindings_drive_the_registry(jack_server):
    os.environ["JACK_DEFAULT_SERVER"] = jack_server["JACK_DEFAULT_SERVER"]
    import rtmidi

    from streaming.control.midi import MidiConfig, MidiControl, MidiMap
    if rtmidi.API_UNIX_JACK not in rtmidi.get_compiled_api():
        pytest.skip("this python-rtmidi build has no JACK MIDI")
    got = {}
    reg = ControlRegistry()
    reg.add(Control("key", -12, 12, 0.0, lambda v: got.__setitem__("key", v), "st", midi_step=1.0))
    reg.add(Control("vocals.reverb.wet_level", 0, 1, 0.3, lambda v: got.__setitem__("wet", v)))
    m = MidiMap.from_list([{"action": "param", "param": "vocals.reverb.wet_level", "cc": 30},
                           {"action": "step", "param": "key", "by": 1, "note": 50},
                           {"action": "param", "param": "nope", "cc": 31}], STEMS, strict=False, controls=reg.names())
    assert len(m.bindings) == 2
    with pytest.raises(UserError, match="unknown control 'nope'"):
        MidiMap.from_list([{"action": "param", "param": "nope", "cc": 31}], STEMS, controls=reg.names())
    with pytest.raises(UserError, match="needs a number 'by'"):
        MidiMap.from_list([{"action": "step", "param": "key", "note": 50}], STEMS)
    port = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="pytest-midi")
    port.open_virtual_port("in")
    control = MidiControl(port, m, MidiConfig(), reg)
    try:
        for msg in ([0xB0, 30, 127], [0x90, 50, 100], [0x80, 50, 0], [0x90, 50, 90], [0xB0, 31, 5]):
            control._on_message((msg, 0.0))        # what rtmidi's thread calls for each message
    finally:
        control.close()
    assert reg.apply_pending() == 3 and got == {"wet": 1.0, "key": 2.0}
    assert control.messages == 5 and control.ignored == 1
