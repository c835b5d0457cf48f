"""Karaoke key change: the streaming pitch shifter, its glide, the live bypass, and the CLI file run."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

import model
from core.errors import UserError
from streaming.processing.keyshift import KeyConfig, KeyShiftStage, PitchShifter, check_semitones
from tests.streaming.conftest import run_host

SR = 44100


def tone(freq: float, seconds: float, rate: int = SR, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return np.stack([amp * np.sin(2 * np.pi * freq * t), amp * np.sin(2 * np.pi * freq * t + 0.4)]).astype(np.float32)


def peak_hz(x: np.ndarray, rate: int = SR) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.shape[-1])))
    return float(np.argmax(spec) * rate / x.shape[-1])


def chunks(shifter, x: np.ndarray, sizes=(1, 7, 256, 441, 1000, 4096), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out, pos = [], 0
    while pos < x.shape[1]:
        k = int(rng.choice(sizes))
        out.append(shifter.process(x[:, pos:pos + k]))
        pos += k
    return np.concatenate(out, axis=1)


def test_zero_shift_is_the_input_delayed_by_the_window():
    x = (0.2 * np.random.default_rng(0).standard_normal((2, SR // 2))).astype(np.float32)
    p = PitchShifter(SR, 2, 0.0)
    y = chunks(p, x)
    assert p.latency_samples == 2048
    np.testing.assert_allclose(y[:, 2048:], x[:, :-2048], atol=1e-6)


@pytest.mark.parametrize("semitones", [12.0, -12.0, 3.0, -5.5])
def test_shift_moves_the_peak(semitones):
    y = chunks(PitchShifter(SR, 2, semitones), tone(220.0, 1.5))
    assert abs(peak_hz(y[0, -SR:]) - 220.0 * 2 ** (semitones / 12)) < 2.0


def test_chunking_does_not_change_the_output():
    x = tone(330.0, 0.5)
    a = chunks(PitchShifter(SR, 2, 4.0), x, seed=1)
    b = PitchShifter(SR, 2, 4.0).process(x)
    np.testing.assert_array_equal(a, b)


def _clickiness(y: np.ndarray, start: int, stop: int) -> float:
    """Largest second difference (a click is a sudden slope change) in y[start:stop]."""
    return float(np.abs(np.diff(y[0, start:stop], 2)).max())


def test_live_key_change_glides_without_clicks():
    x = tone(220.0, 3.0)
    stage = KeyShiftStage(SR, 2, 0.0, KeyConfig(), live=True)
    half = x.shape[1] // 2
    out = [stage.process(x[:, i:min(i + 256, half)]) for i in range(0, half, 256)]
    stage.set_semitones(5.0)                                    # a live change, mid-note
    out += [stage.process(x[:, i:i + 256]) for i in range(half, x.shape[1], 256)]
    y = np.concatenate(out, axis=1)
    d = stage.latency_samples
    np.testing.assert_array_equal(y[:, d:half], x[:, :half - d])            # at 0: the delayed dry, bit-exact
    steady_after = _clickiness(y, half + SR // 2, x.shape[1])               # the new pitch, settled
    around = _clickiness(y, half, half + SR // 2)                           # the glide
    assert around <= 1.25 * steady_after, (around, steady_after)
    assert abs(peak_hz(y[0, -SR:]) - 220.0 * 2 ** (5 / 12)) < 2.0


def test_semitone_range_is_checked():
    assert check_semitones(-12, 12) == -12.0
    with pytest.raises(UserError, match="between -12 and 12"):
        check_semitones(12.5, 12)
    with pytest.raises(UserError, match="--key"):
        check_semitones(float("nan"), 12)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    model.save_checkpoint(model.build_separator("tiny").eval(), path, steps=0)
    return path


def test_file_run_key_octave_and_key_zero_bit_identical(tiny_ckpt, tmp_path):
    src = tmp_path / "tone.wav"
    sf.write(src, tone(440.0, 2.0).T, SR, subtype="FLOAT")
    outs = {}
    for name, extra in (("plain", []), ("zero", ["--key", "0"]), ("octave", ["--key", "12"])):
        out = tmp_path / f"{name}.wav"
        stats = tmp_path / f"{name}.json"
        r = run_host(["--input", str(src), "--output", str(out), "--checkpoint", str(tiny_ckpt), "--mute", "vocals",
                      "--stats-json", str(stats), *extra])
        assert r.returncode == 0, r.stderr
        outs[name] = (sf.read(out, dtype="float32")[0], json.loads(stats.read_text()))
    plain, zero, octave = (outs[k][0] for k in ("plain", "zero", "octave"))
    np.testing.assert_array_equal(zero, plain)                              # --key 0: no processing at all
    assert octave.shape == plain.shape                                      # aligned, same length
    assert abs(peak_hz(octave[SR // 2:, 0]) - 880.0) < 3.0 and abs(peak_hz(plain[SR // 2:, 0]) - 440.0) < 3.0
    assert outs["octave"][1]["chain_latency_ms"] == pytest.approx(1000 * 2048 / SR, abs=0.01)
    assert outs["octave"][1]["key_semitones"] == 12.0 and outs["plain"][1]["chain_latency_ms"] == 0.0


@pytest.mark.parametrize("args,match", [
    (["--key", "13"], "--key: expected semitones between -12 and 12"),
    (["--fx", "vocals=reverb:room_size=3"], "room_size = 3 is out of range"),
    (["--fx", "vocals=vst3:path=/no/such.vst3"], "VST3 plugin not found"),
    (["--route", "piano=1,2"], "unknown source"),
    (["--fx", "mic=reverb"], "there is no mic"),
])
def test_bad_plugin_flags_exit_2_before_audio(args, match, tmp_path):
    r = run_host(["--input", "demo", "--output", str(tmp_path / "o.wav"), "--preset", "tiny", *args])
    assert r.returncode == 2 and match in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2       # the --preset note, then the one-line error
    assert not (tmp_path / "o.wav").exists()
