"""settings -> plan -> build: the settings are built once from config + flags, the plan is a pure function that
opens nothing and refuses what a run cannot honour, and the builder makes the pieces the plan names."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from core.errors import UserError
from streaming.cli import build_parser
from streaming.plan import plan
from streaming.settings import load_settings, settings_from_args
from tests.streaming.conftest import ROOT, run_host

STEMS = ("vocals", "accompaniment")


@pytest.fixture
def wav(tmp_path):
    sf.write(tmp_path / "in.wav", np.zeros((4410, 2), np.float32), 44100)
    return tmp_path / "in.wav"


def _plan(*flags: str):
    args = build_parser().parse_args(list(flags))
    return plan(settings_from_args(args), args, STEMS)


def test_settings_apply_the_host_flags_and_remember_which_were_given():
    s = load_settings(blocksize=512, late="silence")
    assert s.host.blocksize == 512 and s.host.late_policy == "silence"
    assert s.host_flags == {"blocksize", "late_policy"}
    mode = load_settings(latency_mode="lowest")
    assert mode.host.blocksize == 128 and mode.host_flags == frozenset()    # the mode's block is not a flag
    assert load_settings(blocksize=300, latency_mode="lowest").host.blocksize == 300
    with pytest.raises(UserError, match="--samplerate"):
        load_settings(samplerate=100)


def test_hops_per_step_comes_from_the_flag_then_the_latency_mode_then_the_config():
    assert load_settings().engine.hops_per_step == 1
    assert load_settings(latency_mode="lowest").engine.hops_per_step == 2
    assert load_settings(latency_mode="balanced").engine.hops_per_step == 1
    assert load_settings(latency_mode="lowest", hops_per_step=1).engine.hops_per_step == 1
    assert load_settings(hops_per_step=4).engine.hops_per_step == 4
    with pytest.raises(UserError, match="--hops-per-step"):
        load_settings(hops_per_step=0)


@pytest.mark.parametrize("flags,flag", [
    (["--samplerate", "48000"], "--samplerate"),
    (["--latency", "high"], "--latency"),
    (["--late", "silence"], "--late"),
    (["--blocksize", "512"], "--blocksize"),
])
def test_a_file_to_file_plan_refuses_device_flags(wav, tmp_path, flags, flag):
    with pytest.raises(UserError, match=f"^{flag}: a file -> file run"):
        _plan("--input", str(wav), "--output", str(tmp_path / "o.wav"), *flags)
    assert _plan("--input", str(wav), "--output", str(tmp_path / "o.wav")).kind == "file->file"


def test_the_cli_refuses_what_a_file_run_cannot_honour_and_writes_nothing(wav, tmp_path):
    out = tmp_path / "o.wav"
    r = run_host(["--input", str(wav), "--output", str(out), "--preset", "tiny", "--samplerate", "48000",
                  "--latency", "high", "--late", "silence"])
    lines = [x for x in r.stderr.splitlines() if x.strip() and not x.startswith("streaming: using")]
    assert r.returncode == 2 and len(lines) == 1 and "expected no" in lines[0], r.stderr
    assert not out.exists()


def test_late_policy_flags_a_run_cannot_honour(wav, tmp_path):
    with pytest.raises(UserError, match="^--late: a device -> file run"):
        _plan("--input", "mic", "--output", str(tmp_path / "o.wav"), "--late", "dry")
    with pytest.raises(UserError, match="^--late: a file input has no live dry signal"):
        _plan("--input", str(wav), "--output", "speakers", "--late", "dry")
    assert _plan("--input", str(wav), "--output", "speakers", "--late", "silence").kind == "file->device"
    with pytest.raises(UserError, match="^--latency: the --jack-ports client"):
        _plan("--input", "mic", "--output", "speakers", "--jack-ports", "--latency", "high")


@pytest.mark.parametrize("flags,match", [
    (["--mute", "vocals", "--solo", "vocals"], "contradict"),
    (["--mute", "kazoo"], "unknown stem 'kazoo'"),
    (["--gain", "drums=3"], "unknown stem 'drums'"),
    (["--mic-level", "-6"], "--mic-level DB needs --mic"),
    (["--jack-ports", "--route", "mix=1,2"], "either it or --route"),
    (["--route", "mic=3"], "there is no mic"),
    (["--route", "piano=1"], "unknown source"),
    (["--key", "13"], "--key: expected semitones"),
    (["--fx", "mic=reverb"], "there is no mic"),
    (["--channels", "1,2,3"], "--channels"),
])
def test_contradictions_are_one_user_error(flags, match):
    with pytest.raises(UserError, match=match):
        _plan("--input", "mic", "--output", "speakers", *flags)


def test_the_plan_resolves_routes_mic_mixer_and_midi():
    p = _plan("--input", "mic", "--output", "speakers", "--mic", "3", "--mic-level", "-6", "--jack-ports",
              "--mute", "vocals", "--gain", "accompaniment=-3", "--master", "-1", "--key", "2", "--channels", "1,2",
              "--fx", "mic=reverb:room_size=0.4", "--no-ui")
    assert p.kind == "device->device" and p.live and p.action == "run"
    assert p.input.kind == "device" and p.input.device is None and p.input.spec == "mic"    # not looked up
    assert p.mic.channel == 2 and p.mic.level_db == -6.0 and [e.effect for e in p.mic.specs] == ["reverb"]
    assert p.jack_client == p.settings.routing.jack_client_name
    assert p.port_names[:2] == ("mix_L", "mix_R") and p.port_names[-2:] == ("mic_L", "mic_R")
    assert [r.source for r in p.routes] == ["mix", "vocals", "accompaniment", "mic", "mic"]
    assert p.mixer.mutes == ("vocals",) and p.mixer.gains == (("accompaniment", -3.0),) and p.mixer.master_db == -1
    assert p.key_semitones == 2.0 and p.in_channels == (0, 1) and not p.ui
    assert _plan("--list-controls").action == "list-controls" and _plan("--list-controls").input is None


def test_planning_opens_no_device_and_imports_no_audio_backend():
    """A live plan for devices that do not exist here: the plan is made without PortAudio, JACK or MIDI."""
    code = ("import sys\nfrom streaming.cli import build_parser\nfrom streaming.plan import plan\n"
            "from streaming.settings import settings_from_args\n"
            "args = build_parser().parse_args(['--input', 'no-such-interface', '--output', 'speakers', '--jack-ports',"
            " '--mic', '3', '--midi', 'virtual', '--no-ui'])\n"
            "p = plan(settings_from_args(args), args, ('vocals', 'accompaniment'))\n"
            "loaded = [m for m in ('sounddevice', 'jack', 'rtmidi', 'torch', 'pedalboard') if m in sys.modules]\n"
            "print(p.kind, p.midi.port, loaded)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
                       env={"PATH": "/usr/bin:/bin", "JACK_DEFAULT_SERVER": "no-such-server-xyz"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[:2] == ["device->device", "virtual"] and "sounddevice" not in r.stdout
    assert "'jack'" not in r.stdout and "rtmidi" not in r.stdout, r.stdout


def test_build_makes_the_planned_pieces_once():
    import torch

    import model
    from streaming.build import build, make_engine
    torch.manual_seed(0)
    sep = model.build_separator("tiny")
    args = build_parser().parse_args(["--input", "mic", "--output", "speakers", "--mic", "3", "--mute", "vocals",
                                      "--gain", "accompaniment=-6", "--route", "accompaniment=3,4", "--no-ui"])
    p = plan(settings_from_args(args), args, tuple(sep.stems))
    pieces = build(p, make_engine(p, sep), 48000, device_out_channels=4)
    assert pieces.chain.mixer is pieces.mixer and pieces.chain.router is pieces.router
    assert pieces.router.n_channels == 4 and pieces.chain.out_channels == 4
    assert "mic.level_db" in pieces.controls.names() and "accompaniment.gain_db" in pieces.controls.names()
    # The mixer starts at the planned gains: the first block is not a fade from unity.
    stems = np.ones((2, 2, 64), np.float32)
    first = pieces.mixer.mix(stems, limit=False)
    assert np.allclose(first, 10 ** (-6 / 20)), first[:, :4]
    assert not pieces.mixer.silent and pieces.mixer.limiter_levels[0] < pieces.mixer.limiter_levels[1] <= 1.0
    with pytest.raises(UserError, match="channel 4 does not exist"):
        build(p, make_engine(p, sep), 48000, device_out_channels=2)
    assert math.isfinite(pieces.mic.level_db)


def test_an_explicit_blocksize_the_jack_server_does_not_run_is_refused(jack_server):
    r = run_host(["--input", "demo", "--output", "speakers", "--preset", "tiny", "--no-compile", "--blocksize", "512",
                  "--duration", "1", "-q"], env=jack_server)
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 2 and "--blocksize 512: the JACK server runs 256-frame periods" in last, r.stderr
