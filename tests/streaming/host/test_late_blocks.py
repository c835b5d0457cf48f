"""What a late block plays, on every port, and how the adaptive head start takes it in.

The host is built the CLI's way (settings -> plan -> build -> host) against a real JACK server; these
tests then play the worker's part by hand: they fill the output ring block by block (or leave it short)
and call the host's real duplex callback with real buffers, so every late block happens exactly where
the test puts it."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import sounddevice  # noqa: F401 - PortAudio initialises now, before a test points JACK at its dummy server

from core.errors import UserError
from streaming.cli import build_parser
from streaming.engine.separator import StreamingSeparator
from streaming.host.report import status_line, summary
from streaming.launch import open_live
from streaming.plan import plan
from streaming.settings import load_settings

BLOCK = 256
FADE = 64


@pytest.fixture(scope="module")
def portaudio_on_jack(jack_server):
    """PortAudio re-scanned with this module's JACK server as the default one (PortAudio lists JACK's ports
    when it initialises, which in this process happened before any server ran); re-scanned again after."""
    import os

    import sounddevice as sd
    old = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = jack_server["JACK_DEFAULT_SERVER"]
    sd._terminate()     # sounddevice's documented way to refresh the device list
    sd._initialize()
    yield jack_server
    if old is None:
        os.environ.pop("JACK_DEFAULT_SERVER", None)
    else:
        os.environ["JACK_DEFAULT_SERVER"] = old
    sd._terminate()
    sd._initialize()


def _host(monkeypatch, jack_server, tiny, *flags: str, **host_changes):
    args = build_parser().parse_args(["--input", "mic", "--output", "speakers", "--no-ui", "-q", *flags])
    settings = load_settings(args.config, args.blocksize, args.latency, args.late)
    settings = dataclasses.replace(settings, host=dataclasses.replace(settings.host, **host_changes))
    p = plan(settings, args, tuple(tiny.stems))
    host = open_live(p, StreamingSeparator(tiny, device="cpu"))
    host.stats.buffer_latency_ms = 1000.0 * BLOCK / host.rate          # one block of head start, as planned
    host.plan_growth()
    return host


class Callback:
    """Drives the host's duplex callback: the input is a ramp (so the dry signal is recognisable), the
    'processed' output the worker would write is block number + 1 on every channel."""

    def __init__(self, host):
        self.host = host
        self.channels = host.dev_in_channels
        self.out_channels = host.out_channels
        self.n = 0
        self.worker_blocks = 0

    def worker(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            self.worker_blocks += 1
            self.host.out_ring.write(np.full((BLOCK, self.out_channels), float(self.worker_blocks), np.float32))

    def cycle(self) -> tuple[np.ndarray, np.ndarray]:
        indata = np.tile(0.001 * (self.n * BLOCK + np.arange(BLOCK, dtype=np.float32))[:, None], (1, self.channels))
        outdata = np.full((BLOCK, self.out_channels), np.nan, np.float32)
        self.host.duplex(indata, outdata, BLOCK, None, None)
        self.n += 1
        return indata, outdata


def test_a_late_block_grows_the_head_start_by_one_block_and_nothing_is_skipped(monkeypatch, portaudio_on_jack, tiny):
    host = _host(monkeypatch, portaudio_on_jack, tiny, adaptive_headstart=True, adaptive_headstart_max_ms=1000.0 * 3 * BLOCK / 48000)
    cb = Callback(host)
    cb.worker(2)
    assert cb.cycle()[1][0, 0] == 1.0 and cb.cycle()[1][0, 0] == 2.0
    dry, out = cb.cycle()                         # the worker is late: the dry input plays on the mix channels
    np.testing.assert_array_equal(out, dry[:, :out.shape[1]])
    cb.worker(2)
    dry, out = cb.cycle()                         # block 3 plays, not skipped, cross-faded in from the dry input
    assert out[FADE:].tolist() == [[3.0] * out.shape[1]] * (BLOCK - FADE)
    assert abs(out[0, 0] - dry[0, 0]) < 0.01 and abs(out[FADE - 1, 0] - 3.0) < 0.01
    assert np.all(np.diff(out[:FADE + 1, 0]) > 0)   # a smooth rise over FADE frames, no step
    assert cb.cycle()[1][0, 0] == 4.0             # and the stream goes on one block later, nothing lost
    host.collect(1.0)
    s = host.stats
    assert s.late_blocks == 1 and s.extra["headstart_steps"] == 1 and s.extra["headstart_step_times_s"] == s.late_block_times_s == [round(3 * BLOCK / 48000, 3)]
    assert s.extra["headstart_grown_ms"] == pytest.approx(1000.0 * BLOCK / 48000, abs=1e-3)
    assert s.buffer_latency_ms == pytest.approx(2000.0 * BLOCK / 48000)
    assert "(+1 step)" in status_line(s, host.mixer, np.zeros(2))


def test_past_the_maximum_a_late_block_is_skipped_so_the_latency_stays(monkeypatch, portaudio_on_jack, tiny):
    host = _host(monkeypatch, portaudio_on_jack, tiny, adaptive_headstart=True, adaptive_headstart_max_ms=1000.0 * 2 * BLOCK / 48000)
    cb = Callback(host)
    cb.worker(1)
    cb.cycle()
    cb.cycle()                                    # late 1: grows (to the 2-block maximum)
    cb.worker(1)
    assert cb.cycle()[1][-1, 0] == 2.0
    cb.cycle()                                    # late 2: no room left, block 3 is owed
    cb.worker(3)
    assert cb.cycle()[1][-1, 0] == 4.0            # block 3 was skipped: the latency did not grow again
    host.collect(1.0)
    assert host.stats.late_blocks == 2 and host.stats.extra["headstart_steps"] == 1


def test_with_the_switch_off_every_late_block_is_skipped(monkeypatch, portaudio_on_jack, tiny):
    host = _host(monkeypatch, portaudio_on_jack, tiny, adaptive_headstart=False)
    cb = Callback(host)
    cb.worker(1)
    cb.cycle()
    cb.cycle()                                    # late: block 2 is owed
    cb.worker(2)
    assert cb.cycle()[1][-1, 0] == 3.0
    host.collect(1.0)
    assert host.stats.extra["headstart_steps"] == 0 and host.stats.extra["adaptive_headstart"] is False
    assert host.stats.buffer_latency_ms == pytest.approx(1000.0 * BLOCK / 48000)


def test_a_late_block_is_silent_on_every_port_when_stems_are_routed(monkeypatch, portaudio_on_jack, tiny):
    """--jack-ports carries each stem on its own ports: a stem has no dry signal, so the dry policy of the
    config becomes silence on every port, the mix included (never dry on one port and silent on another)."""
    host = _host(monkeypatch, portaudio_on_jack, tiny, "--jack-ports")
    assert host.cfg.late_policy == "silence" and host.out_channels == 6
    cb = Callback(host)
    cb.worker(1)
    cb.cycle()
    _, out = cb.cycle()
    assert not out.any()
    d = summary({**_summary_fields(host), "headstart_steps": 1, "headstart_grown_ms": 5.3})
    assert "head start grew 1 blocks, +5.3 ms" in d


def test_late_dry_with_routed_stems_is_refused(tiny):
    args = build_parser().parse_args(["--input", "mic", "--output", "speakers", "--route", "vocals=3,4", "--late", "dry"])
    with pytest.raises(UserError, match=r"--late dry: .*stem port \(vocals\)"):
        plan(load_settings(late="dry"), args, tuple(tiny.stems))
    routed_mix = build_parser().parse_args(["--input", "mic", "--output", "speakers", "--route", "mix=1,2",
                                            "--route", "dry=3,4"])
    assert plan(load_settings(), routed_mix, tuple(tiny.stems)).settings.host.late_policy == "dry"
    a_file = build_parser().parse_args(["--input", "demo", "--output", "speakers"])
    assert plan(load_settings(), a_file, tuple(tiny.stems)).settings.host.late_policy == "silence"


def _summary_fields(host) -> dict:
    from streaming.host.report import stats_dict
    return stats_dict(host.stats, host.engine, host.mixer)
