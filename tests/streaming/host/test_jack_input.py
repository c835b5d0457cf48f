"""`--input jack:PATTERN`, `--connect`, `--list-ports` and `--wait` against a real JACK server (dummy backend):
another program's output ports as the input, followed across a restart of that program, the remix connected
to a recorder client on start and disconnected at exit, and a server that goes away mid-run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.errors import UserError
from streaming.cli import build_parser
from streaming.host.jack_graph import pair, parse_connect, resolve_targets, source_ports
from streaming.plan import plan
from streaming.settings import settings_from_args
from tests.streaming.conftest import ROOT, run_host
from tools.jack_dummy import JackDummyServer
from tools.roundtrip import passthrough_checkpoint

STEMS = ("vocals", "accompaniment")
RATE = 48000

CLICK_EVERY = 12007  # frames (250 ms): longer than any latency here, so a click's lag is unambiguous
# A player process: a JACK client with ports out_L / out_R, until killed. Left: a click at every server frame time
# that is a multiple of CLICK_EVERY; right: a 660 Hz tone. The recorder takes the clicks straight from the player
# too (port ref) and measures each click's delay between its two ports, in one callback.
PLAYER = f"""
import sys, numpy as np, jack, time
c = jack.Client(sys.argv[1], no_start_server=True)
outs = [c.outports.register("out_L"), c.outports.register("out_R")]
def proc(frames):
    t = c.last_frame_time + np.arange(frames)
    outs[0].get_array()[:] = np.where(t % {CLICK_EVERY} == 0, 0.5, 0.0)
    outs[1].get_array()[:] = 0.1 * np.sin(2 * np.pi * 660 * (t % 48000) / 48000)
c.set_process_callback(proc)
c.activate()
print("playing", flush=True)
while True:
    time.sleep(1)
"""


def _plan(*flags: str):
    args = build_parser().parse_args(list(flags))
    return plan(settings_from_args(args), args, STEMS)


# -- matching and planning (no server) ---------------------------------------------------------------
def test_ports_match_by_part_of_the_name_of_one_client_never_our_own():
    names = ["system:capture_1", "system:capture_2", "mpv:out_0", "mpv:out_1", "Firefox:output_FL",
             "Firefox:output_FR", "tfswa-live:mix_L", "mpv2:out_0"]
    assert source_ports(names, "MPV", "tfswa-live") == ["mpv:out_0", "mpv:out_1"]        # the first client only
    assert source_ports(names, "firefox", "tfswa-live") == ["Firefox:output_FL", "Firefox:output_FR"]
    assert source_ports(names, "tfswa-live", "tfswa-live") == []
    assert source_ports(names, "vlc", "tfswa-live") == []
    inputs = ["system:playback_1", "system:playback_2", "rec:in", "tfswa-live:in_1"]
    assert resolve_targets(inputs, ("system:playback",), "tfswa-live") == ["system:playback_1", "system:playback_2"]
    assert resolve_targets(inputs, ("rec:in", "system:playback_2"), "tfswa-live") == ["rec:in", "system:playback_2"]
    assert pair(["a:L", "a:R"], ["b:1"]) == [("a:L", "b:1"), ("a:R", "b:1")]               # a mono target sums
    assert pair(["a:L"], ["b:1", "b:2"]) == [("a:L", "b:1"), ("a:L", "b:2")]               # a mono source feeds both
    assert parse_connect("mix=none").targets == ()
    for bad in ("mix", "=x", "mix=", "mix=none,x"):
        with pytest.raises(UserError, match="--connect"):
            parse_connect(bad)


def test_the_plan_gives_a_jack_input_its_own_client_and_refuses_what_it_cannot_honour(tmp_path):
    p = _plan("--input", "jack:mpv")
    assert p.kind == "device->device" and p.jack_client == "tfswa-live" and p.port_names == ("mix_L", "mix_R")
    assert [(c.source, c.targets, c.explicit) for c in p.connect] == [("mix", ("system:playback",), False)]
    p = _plan("--input", "jack:mpv", "--jack-ports", "--connect", "vocals=rec:in", "--connect", "mix=none")
    assert {c.source: c.targets for c in p.connect} == {"mix": (), "vocals": ("rec:in",)}
    assert _plan("--input", "jack:mpv", "--output", str(tmp_path / "o.wav")).kind == "device->file"
    for flags, match in [
        (["--input", "jack:"], "expected a client or port name"),
        (["--input", "jack:mpv", "--channels", "1,2"], "^--channels picks"),
        (["--input", "jack:mpv", "--route", "vocals=1,2"], "^--route plays"),
        (["--input", "jack:mpv", "--output", "3"], "^--output 3: with --input jack:"),
        (["--input", "jack:mpv", "--connect", "vocals=rec:in"], "stem ports need --jack-ports"),
        (["--input", "jack:mpv", "--output", str(tmp_path / "o.wav"), "--connect", "mix=rec"], "has no output ports"),
        (["--input", "mic", "--connect", "mix=rec"], "^--connect needs the host's own JACK client"),
        (["--input", "mic", "--wait", "1"], "^--wait needs the host's own JACK client"),
        (["--input", "mic", "--jack-ports", "--wait", "1"], "^--wait S waits for the ports of --input jack:"),
        (["--input", "jack:mpv", "--wait", "-1"], "^--wait: expected"),
        (["--input", "jack:mpv", "--latency", "high"], "^--latency: the --jack-ports client"),
    ]:
        with pytest.raises(UserError, match=match):
            _plan(*flags)


# -- against a JACK server --------------------------------------------------------------------------
def _player(env: dict, name: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", PLAYER, name], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "playing"
    return proc


class Recorder:
    """An in-process JACK client `NAME` with input ports in_L / in_R that records what reaches them
    (preallocated; the process callback only copies)."""

    def __init__(self, server: str, name: str, seconds: float):
        import jack

        from streaming.host.jack_ports import ProcessCallback
        self.client = jack.Client(name, no_start_server=True, servername=server)
        self.ins = [self.client.inports.register(n) for n in ("in_L", "in_R", "ref")]
        self.buf = np.zeros((int(seconds * self.client.samplerate) + 8192, 3), np.float32)
        self.n = 0
        self.t0 = 0                  # the server frame time of the first recorded frame
        self.runner = ProcessCallback(self.client, self._process)

    def _process(self, frames: int) -> None:
        if self.n == 0:
            self.t0 = self.client.last_frame_time
        if self.n + frames <= len(self.buf):
            for i, p in enumerate(self.ins):
                self.buf[self.n:self.n + frames, i] = p.get_array()
            self.n += frames

    def connections(self) -> list[str]:
        return sorted(p.name for port in self.ins[:2] for p in self.client.get_all_connections(port))

    def audio(self) -> np.ndarray:
        return self.buf[:self.n].copy()

    def close(self) -> None:
        self.runner.close()


def _wait_for(what, timeout: float, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert proc is None or proc.poll() is None, "the host ended early"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _host(env: dict, tmp_path: Path, *flags: str, quiet: bool = True) -> tuple[subprocess.Popen, Path, Path]:
    stats, err = tmp_path / "stats.json", tmp_path / "host.err"
    ckpt = tmp_path / "half.pt"
    passthrough_checkpoint(ckpt, None, "tiny", levels=(0.5, 0.5))      # the mix is the input itself
    with open(err, "w") as f:                     # a file, not a pipe: libjack may print a line per xrun
        proc = subprocess.Popen([sys.executable, "-m", "streaming", "--checkpoint", str(ckpt), *(["-q"] if quiet else []),
                                 "--stats-json", str(stats), "--config", str(_fixed_headstart(tmp_path)), *flags],
                                cwd=ROOT, env=env, stderr=f, stdout=subprocess.DEVNULL)
    return proc, stats, err


def _fixed_headstart(tmp_path: Path) -> Path:
    cfg = tmp_path / "host.yaml"      # a head start long enough for a loaded CI machine; fixed, so the delay is known
    cfg.write_text("host:\n  prefill_blocks: 16\n  adaptive_headstart: false\n")
    return cfg


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)


def test_list_ports_and_wait_zero(jack_server):
    player = _player(jack_server, "tfswa-test-lister")
    try:
        r = run_host(["--list-ports"], env=jack_server)
        assert r.returncode == 0, r.stderr
        assert "tfswa-test-lister: out_L, out_R" in r.stdout and "system: playback_1, playback_2" in r.stdout
    finally:
        player.kill()
        player.wait()
    r = run_host(["--input", "jack:no-such-player", "--wait", "0", "--preset", "tiny", "-q"], env=jack_server)
    lines = [x for x in r.stderr.splitlines() if x.strip() and not x.startswith("streaming: using")]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "no JACK output ports match 'no-such-player' now" in lines[0]
    r = run_host(["--input", "jack:mpv", "--connect", "mix=no-such-recorder", "--preset", "tiny", "-q",
                  "--duration", "1"], env=jack_server)
    assert r.returncode == 2 and "--connect mix=no-such-recorder: no JACK input ports match" in r.stderr
    assert "Traceback" not in r.stderr


def test_follows_a_player_that_restarts_and_connects_the_mix_to_a_recorder(jack_server, tmp_path):
    server = jack_server["JACK_DEFAULT_SERVER"]
    rec = Recorder(server, "tfswa-test-rec", 40.0)
    rec.runner.activate()
    player = None
    proc, stats, err = _host(jack_server, tmp_path, "--input", "jack:tfswa-test-player", "--connect",
                             "mix=tfswa-test-rec:in_", quiet=False)
    try:
        # The host starts before the player: it waits, its mix already connected to the recorder.
        _wait_for(lambda: rec.connections() == ["tfswa-live:mix_L", "tfswa-live:mix_R"], 90, proc)
        _wait_for(lambda: "waiting for ports matching 'tfswa-test-player' | lat" in err.read_text(), 30, proc)
        assert np.abs(rec.audio()).max() == 0.0                       # nothing to play yet
        player = _player(jack_server, "tfswa-test-player")
        rec.client.connect("tfswa-test-player:out_L", "tfswa-test-rec:ref")     # the clicks as they leave
        t_play = rec.n
        _wait_for(lambda: rec.n - t_play > 3 * RATE, 30, proc)
        player.kill()                                                 # the player dies ...
        player.wait()
        t_gone = rec.n
        _wait_for(lambda: rec.n - t_gone > 2 * RATE, 30, proc)
        player = _player(jack_server, "tfswa-test-player")            # ... and comes back
        rec.client.connect("tfswa-test-player:out_L", "tfswa-test-rec:ref")
        t_back = rec.n
        _wait_for(lambda: rec.n - t_back > 3 * RATE, 30, proc)
    finally:
        if player is not None:
            player.kill()
            player.wait()
        _stop(proc)
    audio = rec.audio()
    text = err.read_text()
    assert "source 'tfswa-test-player' connected 2x, 1 gap" in text                # the summary line
    assert proc.returncode == 130 and "Traceback" not in text, text     # stopped by SIGINT, as Ctrl-C
    assert rec.connections() == []                                    # the host's connections are gone at exit
    rec.close()
    d = json.loads(stats.read_text())
    src = d["jack_source"]
    assert src["connects"] == 2 and src["gaps"] == 1 and src["gap_s"] > 1.0, src
    assert all(0 <= x < 1.0 for x in src["connect_delays_s"]), src   # ports seen -> connected
    # The remix is the input (masks 0.5 + 0.5), delayed by the host's reported latency less the device term:
    # the player, the host and the recorder run in one JACK cycle, with no period between them.
    lag = (d["total_latency_ms"] - d["device_latency_ms"]) * RATE / 1000
    for start, end in ((t_play, t_gone), (t_back, len(audio))):
        seg = audio[start + RATE:end - RATE // 4]                     # a second in: the host has connected
        clicks, out = _peaks(seg[:, 2]), _peaks(seg[:, 0])
        assert len(clicks) >= 5 and len(out) >= 5, (start, end, len(clicks), len(out))
        delays = [o - max(c for c in clicks if c <= o) for o in out if o >= clicks[0]]
        assert max(abs(x - lag) for x in delays) <= 8, (delays[:5], lag)   # every click, at the reported latency
        spec = np.abs(np.fft.rfft(seg[:RATE, 1]))                     # the right side keeps its own tone
        assert np.argmax(spec) == pytest.approx(660, abs=2)
    quiet = audio[t_gone + RATE // 2 + round(lag):t_back]
    assert np.abs(quiet).max() < 1e-3                                  # the gap is silence, not noise


def _peaks(x: np.ndarray) -> list[int]:
    return [i for i in range(1, len(x) - 1) if x[i] > 0.25 and x[i] >= x[i - 1] and x[i] > x[i + 1]]


def test_a_server_that_goes_away_ends_the_run_with_one_line_and_the_stats(tmp_path):
    import shutil
    if shutil.which("jackd") is None:
        pytest.skip("jackd (Debian package jackd2) is not installed")
    with JackDummyServer(48000, 256, prefix="tfswa-gone") as srv:
        env = srv.env
        player = _player(env, "tfswa-gone-player")
        proc, stats, err = _host(env, tmp_path, "--input", "jack:tfswa-gone-player", "--connect", "mix=none")
        try:
            _wait_for(lambda: "Ctrl-C stops" in err.read_text(), 90, proc)
            time.sleep(2.0)
            assert proc.poll() is None, err.read_text()
            srv.close()
        finally:
            player.kill()
            player.wait()
        proc.wait(timeout=60)
    text = err.read_text()
    lines = [x for x in text.splitlines() if x.startswith("python -m streaming: error")]
    assert proc.returncode == 2 and len(lines) == 1 and "the JACK server went away mid-run" in lines[0], text
    assert "Traceback" not in text
    d = json.loads(stats.read_text())
    assert d["jack_server_gone"] and d["jack_source"]["connects"] == 1 and d["seconds"] > 1.0


def test_connect_and_follow_in_the_plan_reach_the_device_format(jack_server):
    os.environ["JACK_DEFAULT_SERVER"] = jack_server["JACK_DEFAULT_SERVER"]
    from streaming.host.devices import negotiate
    fmt = negotiate(_plan("--input", "jack:mpv", "--mic", "1", "--connect", "mix=none"))
    assert fmt.in_cols == (0, 1) and fmt.mic_channel == 2 and fmt.dev_in_channels == 3
    assert fmt.jack_wiring.follow == "mpv" and fmt.jack_wiring.mic_capture == 0
    with pytest.raises(UserError, match="^--mic 3: the JACK server has 2 capture ports"):
        negotiate(_plan("--input", "jack:mpv", "--mic", "3"))


# -- PipeWire's JACK layer ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pipewire(tmp_path_factory):
    """A private PipeWire daemon (no session manager, no devices: its dummy driver runs the graph) -> the
    environment of clients started under `pw-jack` (quantum 256 at 48 kHz)."""
    import shutil
    if shutil.which("pipewire") is None or shutil.which("pw-jack") is None:
        pytest.skip("PipeWire (Debian packages pipewire-bin, pipewire-jack) is not installed")
    run = tmp_path_factory.mktemp("pwrt")
    run.chmod(0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(run), PIPEWIRE_QUANTUM="256/48000")
    env.pop("JACK_DEFAULT_SERVER", None)
    with open(run / "pipewire.log", "w") as log:
        daemon = subprocess.Popen(["pipewire"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while subprocess.run(["pw-jack", "jack_lsp"], check=False, env=env, capture_output=True, timeout=10).returncode != 0:
            assert daemon.poll() is None and time.monotonic() < deadline, (run / "pipewire.log").read_text()
            time.sleep(0.2)
        yield env
    finally:
        daemon.terminate()
        daemon.wait(10)


def test_the_same_commands_under_pw_jack(pipewire, tmp_path):
    player = subprocess.Popen(["pw-jack", sys.executable, "-c", PLAYER, "tfswa-pw-player"], env=pipewire,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert player.stdout.readline().strip() == "playing"
        r = subprocess.run(["pw-jack", sys.executable, "-m", "streaming", "--list-ports"], check=False, cwd=ROOT, env=pipewire,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "tfswa-pw-player: out_L, out_R" in r.stdout, r.stdout + r.stderr
        out, stats = tmp_path / "pw.wav", tmp_path / "pw.json"
        ckpt = tmp_path / "half.pt"
        passthrough_checkpoint(ckpt, None, "tiny", levels=(0.5, 0.5))
        r = subprocess.run(["pw-jack", sys.executable, "-m", "streaming", "--input", "jack:tfswa-pw-player",
                            "--wait", "10", "--output", str(out), "--checkpoint", str(ckpt), "--duration", "3", "-q",
                            "--stats-json", str(stats)], check=False, cwd=ROOT, env=pipewire, capture_output=True, text=True,
                           timeout=180)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    finally:
        player.kill()
        player.wait()
    import soundfile as sf
    audio, rate = sf.read(out, dtype="float32")
    d = json.loads(stats.read_text())
    assert rate == 48000 and d["jack_source"]["connects"] == 1 and d["mode"] == "device->file"
    right = audio[rate // 2:, 1]                                   # the player's 660 Hz tone, through the host
    assert np.sqrt(np.mean(right ** 2)) > 0.03
    assert np.argmax(np.abs(np.fft.rfft(right[:rate]))) == pytest.approx(660, abs=2)
    assert len(_peaks(audio[:, 0])) >= 3                           # and its clicks on the left
