"""File -> file through the real CLI and engine equals the offline separator; errors are one line."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

import model
from tests.streaming.conftest import run_host


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(1)
    sep = model.build_separator("tiny").eval()
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    model.save_checkpoint(sep, path)
    return sep, path


def write_input(path, n=20000, channels=2, rate=44100, seed=0):
    x = (0.05 * np.random.default_rng(seed).standard_normal((n, channels))).astype(np.float32)
    sf.write(path, x, rate, subtype="FLOAT")
    return x


@pytest.mark.parametrize("channels", [1, 2])
def test_file_to_file_equals_offline_separator(tmp_path, tiny_ckpt, channels):
    sep, ckpt = tiny_ckpt
    x = write_input(tmp_path / "in.wav", channels=channels)
    wav = torch.from_numpy(x.T.copy())[None]
    if channels == 1:
        wav = wav.expand(-1, 2, -1)            # the host duplicates mono to stereo
    with torch.no_grad():
        stems = sep(wav)[0].numpy()            # (S, 2, N)
    for extra, expected in (([], stems.sum(0)), (["--mute", "vocals"], stems[1:].sum(0))):
        out = tmp_path / "out.wav"
        r = run_host(["--input", str(tmp_path / "in.wav"), "--output", str(out), "--checkpoint", str(ckpt),
                      "--stats-json", str(tmp_path / "s.json"), *extra])
        assert r.returncode == 0, r.stderr
        y, rate = sf.read(out, dtype="float32", always_2d=True)
        assert rate == 44100 and y.shape == (x.shape[0], 2)
        np.testing.assert_allclose(y.T, expected, atol=1e-4)
        stats = json.loads((tmp_path / "s.json").read_text())
        assert stats["stem_gains_db"]["vocals"] == (None if extra else 0.0)


def test_other_rate_keeps_length_and_rate_and_nan_is_sanitised(tmp_path, tiny_ckpt):
    _, ckpt = tiny_ckpt
    x = write_input(tmp_path / "in.wav", n=24000, rate=48000)
    x[100:110] = np.nan
    x[200] = np.inf
    sf.write(tmp_path / "in.wav", x, 48000, subtype="FLOAT")
    r = run_host(["--input", str(tmp_path / "in.wav"), "--output", str(tmp_path / "out.flac"), "--checkpoint",
                  str(ckpt), "--stats-json", str(tmp_path / "s.json")])
    assert r.returncode == 0, r.stderr
    y, rate = sf.read(tmp_path / "out.flac", dtype="float32", always_2d=True)
    assert rate == 48000 and y.shape == (24000, 2) and np.isfinite(y).all() and np.abs(y).max() > 0
    assert json.loads((tmp_path / "s.json").read_text())["nonfinite_samples"] == 22


def test_demo_runs_to_a_file(tmp_path):
    r = run_host(["--input", "demo", "--mute", "vocals", "--output", str(tmp_path / "karaoke.wav"),
                  "--preset", "tiny", "--duration", "0.5"])
    assert r.returncode == 0, r.stderr
    info = sf.info(tmp_path / "karaoke.wav")
    assert info.channels == 2 and info.frames == round(0.5 * info.samplerate)
    assert not list(tmp_path.glob(".*partial*"))
