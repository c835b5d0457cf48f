"""The terminal mixer driven by textual's headless pilot against a real engine streaming to a real JACK server
(dummy backend): keys mute and fade stems in the recorded output, meters move with the audio and fall when it
stops, MIDI and the keyboard move the same faders; and the real CLI in a pseudo-terminal (the mixer is on by
default there)."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import pty
import select
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
import sounddevice  # noqa: F401 - PortAudio initialises now, before a test points JACK at its dummy server
import soundfile as sf
import torch

import model
from streaming.cli import build_parser
from streaming.control.registry import ControlRegistry, register_mixer
from streaming.engine.separator import StreamingSeparator
from streaming.host.jack_ports import ProcessCallback
from streaming.host.sources import ArraySource
from streaming.launch import open_live
from streaming.plan import plan
from streaming.processing.routing import RoutingConfig
from streaming.processing.stem_mixer import StemMixer
from streaming.settings import load_settings
from streaming.ui.mixer_view import UiConfig, build_strips, fader_request, want_ui
from tests.streaming.conftest import ROOT

pytest.importorskip("textual")
from streaming.ui.mixer_app import headless_main_loop

RATE = 48000          # the dummy server's rate (conftest)
UI = UiConfig(refresh_hz=15.0)


def _tone(seconds: float, silence: float) -> np.ndarray:
    """(N, 2): two steady tones at -20 dBFS-ish, then silence."""
    t = np.arange(round(seconds * RATE)) / RATE
    x = 0.05 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.sin(2 * np.pi * 2500 * t)
    x = np.concatenate([x, np.zeros(round(silence * RATE))]).astype(np.float32)
    return np.stack([x, x], 1)


def _host(monkeypatch, jack_server, audio: np.ndarray, midi=None):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", jack_server["JACK_DEFAULT_SERVER"])
    torch.manual_seed(0)
    sep = model.build_separator("tiny")
    engine = StreamingSeparator(sep, device="cpu", threads=1, compile="auto")    # as the CLI runs it
    engine.warm_up()
    name = f"uitest-{uuid.uuid4().hex[:6]}"
    # The CLI's way: settings -> plan -> build (inside open_live) -> host, with the tones as the file input.
    settings = dataclasses.replace(load_settings(), routing=RoutingConfig(jack_client_name=name))
    args = build_parser().parse_args(["--input", "demo", "--output", "speakers", "--jack-ports", "--no-ui", "-q"])
    host = open_live(plan(settings, args, tuple(sep.stems)), engine, source=ArraySource(audio, RATE, "tones"))
    host.midi = midi
    return host, name


class Recorder:
    """A JACK client recording some output ports of the host, cycle by cycle. `audible` collects only the
    cycles that carry audio: a late block (a hiccup of a loaded machine, not what these tests are about)
    plays silence and is left out rather than averaged in."""

    def __init__(self, sources: list[str], seconds: float = 30.0):
        import jack
        self.client = jack.Client(f"rec-{uuid.uuid4().hex[:6]}", no_start_server=True)
        self.ports = [self.client.inports.register(f"in_{i}") for i in range(len(sources))]
        self.buf = np.zeros((len(sources), round(seconds * RATE)), np.float32)
        self.n = 0
        self.runner = ProcessCallback(self.client, self._process)   # closes without a thread cancelled in Python
        self.runner.activate()
        for port, src in zip(self.ports, sources):
            self.client.connect(src, port)

    def _process(self, frames: int) -> None:
        if self.n + frames <= self.buf.shape[1]:
            for i, p in enumerate(self.ports):
                self.buf[i, self.n:self.n + frames] = p.get_array()
            self.n += frames

    async def audible(self, pilot, seconds: float, cycle: int = 256, timeout: float = 20.0) -> np.ndarray:
        """(ports, n): the next `seconds` of cycles in which any port is not silent."""
        start, deadline = self.n, time.monotonic() + timeout
        while True:
            await pilot.pause(0.1)
            end = start + (self.n - start) // cycle * cycle
            cycles = self.buf[:, start:end].reshape(len(self.ports), -1, cycle)
            keep = np.abs(cycles).max(axis=(0, 2)) > 0
            if keep.sum() * cycle >= seconds * RATE:
                return cycles[:, keep].reshape(len(self.ports), -1)
            if time.monotonic() > deadline:
                pytest.fail(f"only {keep.sum() * cycle} audible frames in {timeout} s: the worker does not keep up "
                            "with real time on this machine (every block late)")

    def close(self) -> None:
        self.runner.close()


async def _until(pilot, condition, timeout: float = 15.0, state=None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out ({state() if state else ''})"
        await pilot.pause(0.05)


async def _press(app, pilot, *keys: str) -> None:
    """Key presses as the terminal delivers them. (`pilot.press` waits for the process to go idle after each
    key, up to 2 s: with the separation worker busy in this process it never does.)"""
    from textual import events
    for key in keys:
        app.post_message(events.Key(key, key if len(key) == 1 else None))
        await pilot.pause(0.05)


def _rms_db(x: np.ndarray) -> float:
    return 10 * math.log10(float(np.mean(np.square(x, dtype=np.float64)))) if x.size else -200.0


def test_pilot_mutes_and_fades_stems_in_the_output_and_meters_follow_the_audio(monkeypatch, jack_server):
    host, name = _host(monkeypatch, jack_server, _tone(14.0, 5.0))
    found: dict = {}

    async def script(app, pilot):
        controls, vocals = app.controls, app.rows[0]
        # The meters move once audio flows (the worker's meters and the strip on screen).
        await _until(pilot, lambda: app.view.meters.read().rms_db[-1] > -40 and vocals._drawn
                     and vocals._drawn[0][0] > 0)
        rec = Recorder([f"{name}:mix_L", f"{name}:vocals_L", f"{name}:accompaniment_L"])

        async def settled(measure, target, tol, timeout=15.0):
            """Record until `measure(window)` is within `tol` of `target` (a file plays through the output
            ring, so a change is heard once the audio queued before it has played) -> the last value."""
            deadline = time.monotonic() + timeout
            while True:
                value = measure(await rec.audible(pilot, 0.3))
                if abs(value - target) <= tol or time.monotonic() > deadline:
                    return value

        try:
            w = await rec.audible(pilot, 0.4)
            found["vocals_before"] = float(np.abs(w[0] - w[2]).max())        # mix - accompaniment = vocals
            await _press(app, pilot, "m")                                     # vocals (selected) muted
            await _until(pilot, lambda: controls.value("vocals.mute") == 1.0 and vocals.toggles[0])
            found["vocals_muted"] = await settled(lambda w: float(np.abs(w[0] - w[2]).max()), 0.0, 1e-6)
            w = await rec.audible(pilot, 0.3)
            found["vocals_port"] = float(np.abs(w[1]).max())                 # its direct out still plays
            await _press(app, pilot, "m", "down", "m", "up")                  # vocals on, accompaniment off
            await _until(pilot, lambda: controls.value("accompaniment.mute") == 1.0
                         and controls.value("vocals.mute") == 0.0)
            only_vocals = lambda w: float(np.abs(w[0] - w[1]).max())        # mix == the vocals port
            await settled(only_vocals, 0.0, 1e-6)
            found["level_0db"] = _rms_db((await rec.audible(pilot, 0.5))[0])
            await _press(app, pilot, *["left"] * 6)                           # vocals fader -6 dB
            await _until(pilot, lambda: controls.value("vocals.gain_db") == -6.0,
                         state=lambda: (controls.snapshot(), app.selected))
            found["level_-6db"] = await settled(lambda w: _rms_db(w[0]), found["level_0db"] - 6.0, 0.3)
            found["fader_text"] = vocals.render_line(1).text
        finally:
            rec.close()
        # Then the file goes silent: every meter falls to the bottom of the scale, on screen too.
        await _until(pilot, lambda: app.view.meters.read().peak_db.max() < UI.meter_floor_db
                     and all(r._drawn[0] == (0, 0, 0) for r in app.rows if r.strip.meter is not None))
        found["silent"] = True

    stats = host.run(None, main_loop=headless_main_loop(host, UI, script, "tiny"))
    assert found.get("silent"), (found, stats)
    assert found["vocals_before"] > 1e-3 and found["vocals_muted"] < 1e-6 < found["vocals_port"], (found, stats)
    assert found["level_-6db"] - found["level_0db"] == pytest.approx(-6.0, abs=0.3), found
    assert "-6.0 dB" in found["fader_text"]
    assert stats.seconds > 6


def test_midi_and_the_keyboard_move_the_same_fader(monkeypatch, jack_server_midi):
    jack_server = jack_server_midi      # JACK MIDI: a server without real-time priority (see its fixture)
    monkeypatch.setenv("JACK_DEFAULT_SERVER", jack_server["JACK_DEFAULT_SERVER"])
    import rtmidi

    from streaming.control.midi import MidiConfig, MidiControl, MidiMap, fader_db, open_midi_input
    if rtmidi.API_UNIX_JACK not in rtmidi.get_compiled_api():
        pytest.skip("this python-rtmidi build has no JACK MIDI")
    cfg = MidiConfig(client_name=f"uimidi-{uuid.uuid4().hex[:6]}", api="jack")
    host, _ = _host(monkeypatch, jack_server, _tone(30.0, 0.0))
    midi_map = MidiMap.from_list([{"action": "gain", "stem": "vocals", "cc": 20},
                                  {"action": "step", "param": "vocals.gain_db", "by": 1, "note": 60}],
                                 host.mixer.stems, controls=host.controls.names())
    midi_in, _ = open_midi_input("virtual", cfg)
    host.midi = MidiControl(midi_in, midi_map, cfg, host.controls)
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="pytest-ui-sender")
    port = next(i for i, p in enumerate(out.get_ports()) if cfg.client_name in p)
    out.open_port(port)
    found: dict = {}

    async def script(app, pilot):
        controls, vocals = app.controls, app.rows[0]
        value = lambda: controls.value("vocals.gain_db")
        shown = lambda: vocals.render_line(1).text
        out.send_message([0xB0, 20, 64])                          # MIDI fader: the fader on screen follows
        await _until(pilot, lambda: abs(vocals.fader - fader_db(64)) < 1e-9)
        found["after_midi"] = (value(), shown())
        await _press(app, pilot, "right")                         # the keyboard: +1 dB from where MIDI left it
        await _until(pilot, lambda: abs(value() - (fader_db(64) + 1)) < 1e-9)
        out.send_message([0x90, 60, 100])                         # MIDI relative step: from the keyboard's value
        await _until(pilot, lambda: abs(value() - (fader_db(64) + 2)) < 1e-9 and vocals.fader == value())
        await pilot.pause(2 * UI.stats_interval_s)
        found["after_step"] = (value(), shown(), app.engine_panel.text)

    try:
        host.run(None, main_loop=headless_main_loop(host, UI, script, "tiny"))
    finally:
        out.close_port()
        host.midi.close()
    assert f"{fader_db(64):+.1f} dB" in found["after_midi"][1]                 # -11.9 dB on screen
    assert found["after_step"][0] == pytest.approx(fader_db(64) + 2)
    assert f"{fader_db(64) + 2:+.1f} dB" in found["after_step"][1]
    assert "MIDI 2 msgs" in found["after_step"][2]


def test_keys_and_strips_without_a_stream():
    """Strips for stems, master, mic and chains; fader steps through the queue, off below the floor."""
    mixer = StemMixer(("vocals", "accompaniment"))
    controls = ControlRegistry()
    register_mixer(controls, mixer)
    strips = build_strips(mixer.stems, controls, {})
    assert [s.name for s in strips] == ["vocals", "accompaniment", "master"]
    assert strips[0].mute == "vocals.mute" and strips[2].mute is None and strips[2].meter == 2
    fader_request(controls, "vocals.gain_db", -1.0, -60.0)
    controls.apply_pending()
    assert controls.value("vocals.gain_db") == -1.0
    controls.set_now("vocals.gain_db", -59.5)
    fader_request(controls, "vocals.gain_db", -1.0, -60.0)
    controls.apply_pending()
    assert controls.value("vocals.gain_db") == -math.inf
    fader_request(controls, "vocals.gain_db", 1.0, -60.0)
    controls.apply_pending()
    assert controls.value("vocals.gain_db") == -60.0


def test_ui_default_and_errors(monkeypatch):
    from core.errors import UserError
    assert want_ui(False, UI, True, False) is False
    assert want_ui(True, UI, True, True) is True                 # explicit --ui wins over -q
    assert want_ui(None, UiConfig(enabled="off"), True, False) is False
    assert want_ui(None, UI, True, True) is False                # auto: -q keeps the plain run
    with pytest.raises(UserError, match="live run"):
        want_ui(True, UI, False, False)
    with pytest.raises(UserError, match="refresh_hz"):
        UiConfig.from_config({"ui": {"refresh_hz": 60}})
    with pytest.raises(UserError, match="unknown key"):
        UiConfig.from_config({"ui": {"colour": "red"}})


def test_cli_in_a_terminal_shows_the_mixer_by_default_and_takes_keys(jack_server, tmp_path):
    """The real `python -m streaming` in a pseudo-terminal: the mixer starts without --ui, `m` mutes the
    selected stem (vocals), the run ends at --duration with the terminal restored and the usual summary."""
    wav, stats_path = tmp_path / "tones.wav", tmp_path / "stats.json"
    sf.write(wav, _tone(20.0, 0.0), RATE, subtype="FLOAT")
    leader, follower = pty.openpty()
    os.set_blocking(leader, False)
    env = dict(jack_server, TERM="xterm-256color", COLUMNS="120", LINES="36")
    proc = subprocess.Popen([sys.executable, "-m", "streaming", "--input", str(wav), "--output", "speakers",
                             "--preset", "tiny", "--no-compile", "--duration", "6", "--stats-json", str(stats_path)],
                            cwd=ROOT, env=env, stdin=follower, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    screen, sent = b"", False
    try:
        deadline = time.monotonic() + 240            # start-up on a loaded machine can take a minute
        while proc.poll() is None and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.1)[0]:
                try:
                    screen += os.read(leader, 65536)
                except OSError:
                    break
            if not sent and b"accompaniment" in screen and b"late blocks" in screen:
                os.write(leader, b"m")
                sent = True
        proc.wait(timeout=60)
        while select.select([leader], [], [], 0.2)[0]:
            try:
                screen += os.read(leader, 65536)
            except OSError:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    err = screen.decode(errors="replace")
    assert proc.returncode == 0, err[-2000:]
    assert sent and b"\x1b[?1049h" in screen and b"\x1b[?1049l" in screen     # alternate screen in and out
    assert "done:" in err and "Traceback" not in err
    s = json.loads(stats_path.read_text())
    assert s["mixer"]["stems"]["vocals"]["mute"] is True and s["controls"]["vocals.mute"] == 1.0
    assert "worker_load_mean" in s


def test_chain_parameters_on_the_strips_and_their_key_steps():
    """Each effect's main parameter lands on its strip; `,` / `.` move it by 1 dB, a log step or 1/40 of the range."""
    from streaming.processing.effects import parse_fx
    from streaming.processing.stem_fx import StemEffects
    specs = {t: (spec,) for t, spec in (parse_fx(a) for a in ("vocals=reverb:wet_level=0.3",
                                                              "accompaniment=highpass:cutoff_frequency_hz=100",
                                                              "mix=compressor:threshold_db=-20"))}
    mixer = StemMixer(("vocals", "accompaniment"))
    controls = ControlRegistry()
    register_mixer(controls, mixer)
    fx = StemEffects(mixer.stems, 44100, specs, None)
    fx.register(controls)
    chains = {t: [(e.name, e.effect) for e in c.effects] for t, c in (*fx.chains.items(), ("mix", fx.mix_chain))}
    strips = build_strips(mixer.stems, controls, chains)
    assert [s.params for s in strips] == [["vocals.reverb.wet_level"], ["accompaniment.highpass.cutoff_frequency_hz"],
                                          ["mix.compressor.threshold_db"]]
    from streaming.ui.mixer_view import param_label, param_request
    param_request(controls, "vocals.reverb.wet_level", +1, 40)
    param_request(controls, "accompaniment.highpass.cutoff_frequency_hz", +1, 40)
    param_request(controls, "mix.compressor.threshold_db", -1, 40)
    controls.apply_pending()
    assert controls.value("vocals.reverb.wet_level") == pytest.approx(0.3 + 1 / 40)
    assert controls.value("accompaniment.highpass.cutoff_frequency_hz") == pytest.approx(100 * 1000 ** (1 / 40))
    assert controls.value("mix.compressor.threshold_db") == -21.0
    assert param_label("mix.compressor.threshold_db", controls) == "compressor thr -21.0 dB"
    assert fx.chains["vocals"].effects[0].plugin.wet_level == pytest.approx(0.325)      # the DSP object moved
