"""MIDI: message parsing, the map, and a real JACK MIDI port driving the live host's mixer."""
from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time

import pytest
import yaml

from core.errors import UserError
from streaming.control.midi import MidiMap, fader_db, load_midi_map, parse_message
from tests.streaming.conftest import ROOT

STEMS = ("vocals", "accompaniment")


@pytest.mark.parametrize("msg,expected", [
    ([0xB0, 20, 64], ("cc", 0, 20, 64)), ([0x9F, 36, 100], ("note", 15, 36, 100)), ([0x80, 36, 10], ("note", 0, 36, 0)),
    ([0xE0, 0, 64], None), ([0xB0, 200, 1], None), ([0xB0, 1], None), ([0x20, 1, 1], None), ("junk", None),
    ([0xB0, 1.5, 3], None), ([], None),
])
def test_parse_message(msg, expected):
    assert parse_message(msg) == expected


def test_fader_law():
    assert fader_db(0) == -math.inf and fader_db(127) == 0.0
    assert abs(fader_db(64) - 40 * math.log10(64 / 127)) < 1e-12 and abs(fader_db(127, 6.0) - 6.0) < 1e-12


def test_map_file_errors(tmp_path):
    p = tmp_path / "map.yaml"
    p.write_text(yaml.safe_dump({"bindings": [{"action": "gain", "stem": "guitar", "cc": 1}]}))
    with pytest.raises(UserError, match="vocals, accompaniment"):
        load_midi_map(p, STEMS)
    p.write_text(yaml.safe_dump({"bindings": [{"action": "gain", "stem": "vocals", "note": 1}]}))
    with pytest.raises(UserError, match="needs a CC"):
        load_midi_map(p, STEMS)
    with pytest.raises(UserError, match="not found"):
        load_midi_map(tmp_path / "none.yaml", STEMS)
    m = MidiMap.from_list([{"action": "mute", "stem": "drums", "note": 1}], STEMS, strict=False)
    assert m.bindings == []


def _open_virtual_out(jack_env: dict, port_substring: str, timeout: float = 60.0):
    """A JACK MIDI output (python-rtmidi API_UNIX_JACK) connected to the host's input port."""
    import os
    os.environ["JACK_DEFAULT_SERVER"] = jack_env["JACK_DEFAULT_SERVER"]
    import rtmidi
    if rtmidi.API_UNIX_JACK not in rtmidi.get_compiled_api():
        pytest.skip("this python-rtmidi build has no JACK MIDI")
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="pytest-sender")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ports = out.get_ports()
        hits = [i for i, p in enumerate(ports) if port_substring in p]
        if hits:
            out.open_port(hits[0])
            return out
        time.sleep(0.1)
    pytest.fail(f"no MIDI port {port_substring!r} appeared; ports: {out.get_ports()}")


class _Delivery:
    """A second JACK MIDI input fed by the same sender, connected after the host's: once it receives a probe,
    the host's connection is in the graph too (a JACK connection takes effect on a later cycle, so a message
    sent at once may be lost), and what it received the host received in the same cycles. Probes are MIDI
    clock (0xF8), which the host's rtmidi input ignores, so the host's counts stay those of the test."""

    def __init__(self, jack_env: dict, out, timeout: float = 60.0):
        import os
        os.environ["JACK_DEFAULT_SERVER"] = jack_env["JACK_DEFAULT_SERVER"]
        import jack

        from streaming.host.jack_ports import ProcessCallback
        self.client = jack.Client("pytest-midi-monitor", no_start_server=True)
        self.port = self.client.midi_inports.register("in")
        self.got: list[bytes] = []
        self.runner = ProcessCallback(self.client, self._process)
        self.runner.activate()
        self.timeout = timeout
        sender = self.client.get_ports("pytest-sender", is_midi=True, is_output=True)
        assert sender, self.client.get_ports(is_midi=True)
        self.client.connect(sender[0], self.port)
        deadline = time.monotonic() + timeout
        while b"\xf8" not in self.got:
            assert time.monotonic() < deadline, "no MIDI probe arrived through the JACK graph"
            out.send_message([0xF8])
            time.sleep(0.05)

    def _process(self, frames) -> None:
        for _, data in self.port.incoming_midi_events():
            self.got.append(bytes(data))

    def wait_for(self, n: int) -> None:
        """Until the monitor has received n messages other than probes."""
        deadline = time.monotonic() + self.timeout
        while sum(m != b"\xf8" for m in self.got) < n:
            assert time.monotonic() < deadline, f"{self.got} arrived, expected {n} messages besides the probes"
            time.sleep(0.02)

    def close(self) -> None:
        self.runner.close()


def _start(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "streaming", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_midi_controls_live_mixer(jack_server_midi, tmp_path):
    jack_server = jack_server_midi
    stats_path = tmp_path / "stats.json"
    # Ended by SIGINT once the messages are through (a --duration would race a slow start), at most 120 s.
    proc = _start(["--input", "mic", "--preset", "tiny", "--midi", "virtual", "--duration", "120", "-q",
                   "--stats-json", str(stats_path)], jack_server)
    try:
        out = _open_virtual_out(jack_server, "tfswa-live")
        while "Ctrl-C stops" not in (line := proc.stderr.readline()):   # the stream and worker are running
            assert line, "the host exited before starting"
        delivery = _Delivery(jack_server, out)
        messages = ([0xB0, 20, 64],             # vocals fader -> 40 log10(64/127) dB
                    [0x90, 37, 100],            # accompaniment mute toggle on
                    [0x80, 37, 0],              # its note off: no change
                    [0x90, 44, 100],            # vocals solo on
                    [0x90, 44, 100],            # ... and off again
                    [0xB0, 7, 100],             # master fader
                    [0xB0, 99, 5],              # unmapped CC: ignored
                    [0xE0, 0, 64])              # pitch bend: ignored
        for msg in messages:
            out.send_message(msg)
            time.sleep(0.02)                    # one JACK period apart, as a hand on a controller sends them
        delivery.wait_for(len(messages))        # the sender's JACK client delivers on its next cycles
        delivery.close()
        out.close_port()
        time.sleep(1.0)                         # the host's rtmidi callback and worker apply what arrived
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "stopped by SIGINT" in err, err     # the CLI's exit for Ctrl-C
    s = json.loads(stats_path.read_text())
    assert s["midi_messages"] == 8 and s["midi_ignored"] == 2, \
        (f"the host counted {s['midi_messages']} messages ({s['midi_ignored']} ignored); "
         f"the monitor beside it received {delivery.got}")
    mix = s["mixer"]
    master = 40 * math.log10(100 / 127)
    assert abs(mix["master_db"] - master) < 1e-3
    assert abs(mix["stems"]["vocals"]["gain_db"] - 40 * math.log10(64 / 127)) < 1e-3
    assert mix["stems"]["accompaniment"]["mute"] and not mix["stems"]["vocals"]["solo"]
    assert s["stem_gains_db"]["accompaniment"] is None
    assert abs(s["stem_gains_db"]["vocals"] - (40 * math.log10(64 / 127) + master)) < 1e-2


def test_midi_learn_writes_a_map_the_host_loads(jack_server_midi, tmp_path):
    jack_server = jack_server_midi
    cfg = tmp_path / "fast.yaml"
    cfg.write_text("midi:\n  learn_timeout_s: 20.0\n  learn_settle_s: 0.1\n")
    map_path = tmp_path / "learned.yaml"
    proc = _start(["--preset", "tiny", "--config", str(cfg), "--midi", "virtual", "--midi-learn", str(map_path)],
                  jack_server)
    try:
        out = _open_virtual_out(jack_server, "tfswa-live")
        delivery = _Delivery(jack_server, out)
        sequence = [[0xB0, 30, 10], [0x91, 60, 90], [0x91, 61, 90], [0xB0, 31, 10], [0x91, 62, 90],
                    [0x91, 63, 90], [0xB2, 32, 10]]
        for msg in sequence:
            time.sleep(0.6)
            out.send_message(msg)
        delivery.wait_for(len(sequence))
        delivery.close()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    m = load_midi_map(map_path, STEMS)
    got = [(b.action, b.stem, b.kind, b.channel, b.number) for b in m.bindings]
    assert got == [("gain", "vocals", "cc", 1, 30), ("mute", "vocals", "note", 2, 60), ("solo", "vocals", "note", 2, 61),
                   ("gain", "accompaniment", "cc", 1, 31), ("mute", "accompaniment", "note", 2, 62),
                   ("solo", "accompaniment", "note", 2, 63), ("master", None, "cc", 3, 32)]
