"""CLI: --help documents the flags; user errors print one line and exit with code 2."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from tests.streaming.conftest import run_host


def test_help_documents_flags():
    r = run_host(["--help"])
    assert r.returncode == 0
    for flag in ("--input", "--output", "--mute", "--solo", "--gain", "--midi", "--midi-learn", "--midi-map",
                 "--list-midi", "--list-devices", "--checkpoint", "--preset", "--config", "--blocksize", "--latency",
                 "--device", "--channels", "--duration", "--stats-json", "demo", "Fader law", "--latency-mode"):
        assert flag in r.stdout, flag


@pytest.fixture
def wav(tmp_path):
    sf.write(tmp_path / "in.wav", np.zeros((4410, 2), np.float32), 44100)
    return tmp_path / "in.wav"


@pytest.mark.parametrize("args,expected", [
    (["--input", "no/such/file.wav", "--output", "o.wav"], "input file not found"),
    (["--output", "x.mp3"], "unsupported output file type"),
    (["--mute", "guitar"], "vocals, accompaniment"),
    (["--gain", "vocals"], "STEM=DB"),
    (["--checkpoint", "missing.ckpt"], "checkpoint not found"),
    (["--preset", "nosuch"], "unknown preset"),
    (["--blocksize", "many"], "invalid int value"),
    (["--midi-map", "map.yaml"], "needs --midi"),
    (["--duration", "-1"], "--duration"),
    (["--latency-mode", "fast"], "invalid choice"),
])
def test_user_errors_one_line_exit_2(tmp_path, wav, args, expected):
    full = ["--input", str(wav), "--output", str(tmp_path / "o.wav"), "--preset", "tiny"]
    if "--checkpoint" in args:
        full.remove("--preset"), full.remove("tiny")
    r = run_host(full + args)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip() and not line.startswith("streaming: using")]
    assert len(lines) == 1 and expected in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_bad_checkpoint_file(tmp_path, wav):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    r = run_host(["--input", str(wav), "--output", str(tmp_path / "o.wav"), "--checkpoint", str(bad)])
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "checkpoint" in r.stderr


def test_no_audio_device_without_server(tmp_path):
    r = run_host(["--input", "mic", "--output", "speakers", "--preset", "tiny", "--duration", "1"],
                 env={"PATH": "/usr/bin:/bin", "JACK_DEFAULT_SERVER": "no-such-server-xyz", "HOME": str(tmp_path)})
    assert r.returncode == 2, r.stderr
    assert "device" in r.stderr.strip().splitlines()[-1] and "Traceback" not in r.stderr


def test_latency_mode_picks_the_model_and_says_so(tmp_path, wav):
    stats = tmp_path / "s.json"
    r = run_host(["--input", str(wav), "--output", str(tmp_path / "o.wav"), "--latency-mode", "lowest", "--no-compile",
                  "--stats-json", str(stats)])
    assert r.returncode == 0, r.stderr
    assert "latency mode lowest" in r.stderr and "lowlatency" in r.stderr and "block 128" in r.stderr
    assert "lowlatency_default.ckpt" in r.stderr and "RANDOM" not in r.stderr     # the shipped lowlatency checkpoint
    import json
    s = json.loads(stats.read_text())
    assert s["hops_per_step"] == 2 and "2 hops per step" in r.stderr     # lowest runs two 2.9 ms hops per call
    assert s["algorithmic_latency_ms"] == pytest.approx(5.805 + 2.902, abs=0.01) and s["step_latency_ms"] == pytest.approx(2.902, abs=0.01)
    # Without that file the mode runs its preset with random weights, and says so.
    cfg = tmp_path / "no_ckpt.yaml"
    cfg.write_text("latency_modes:\n  lowest:\n    checkpoint: not_shipped.ckpt\n")
    r = run_host(["--input", str(wav), "--output", str(tmp_path / "o.wav"), "--latency-mode", "lowest", "--no-compile",
                  "--config", str(cfg)])
    assert r.returncode == 0 and "RANDOM weights" in r.stderr and "not_shipped.ckpt" in r.stderr, r.stderr
    # An explicit model wins over the mode's.
    r = run_host(["--input", str(wav), "--output", str(tmp_path / "o.wav"), "--latency-mode", "lowest", "--preset",
                  "tiny", "--no-compile"])
    assert r.returncode == 0 and "latency mode lowest: preset 'tiny'" in r.stderr, r.stderr
