"""tools.separate: files out at the input's rate and length, streaming == the offline causal model, CLI errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from tool_helpers import one_line_error, stem_signals

from tools.separate import main, separate_audio, separate_offline, separate_streaming


@pytest.mark.parametrize("rate,channels", [(44100, 2), (22050, 1)])
def test_cli_writes_stems_at_input_rate_and_length(tmp_path: Path, tiny_checkpoint, rate, channels):
    n = 12345
    audio = 0.1 * np.random.default_rng(0).standard_normal((n, channels)).astype(np.float32)
    src = tmp_path / "in song.flac"
    sf.write(src, audio, rate)
    out = tmp_path / "out"
    code = main([str(src), "--out", str(out), "--checkpoint", str(tiny_checkpoint),
                 "--stems", "vocals,accompaniment", "--plot", "-q"])
    assert code == 0
    d = out / "in song"
    assert sorted(p.name for p in d.iterdir()) == ["accompaniment.wav", "separation.png", "vocals.wav"]
    for stem in ("vocals", "accompaniment"):
        info = sf.info(d / f"{stem}.wav")
        assert (info.samplerate, info.frames, info.channels) == (rate, n, channels)


def test_accompaniment_is_sum_of_parts(tiny_checkpoint):
    import model
    sep = model.load_checkpoint(tiny_checkpoint)
    audio = sum(stem_signals(1.0).values())
    res = separate_audio(sep, audio, 44100, ["drums", "bass", "other", "accompaniment"])
    np.testing.assert_allclose(res["accompaniment"], res["drums"] + res["bass"] + res["other"], atol=1e-6)


@pytest.mark.parametrize("block", [4096, 1000])
def test_streaming_equals_offline_causal_model(tiny_separator, block):
    """The engine path with latency removed reproduces the causal model on the whole input."""
    x = 0.1 * torch.randn(2, 20000, generator=torch.Generator().manual_seed(2))
    y = separate_streaming(tiny_separator, x.numpy(), block=block)
    with torch.no_grad():
        ref = tiny_separator(x[None])[0].numpy()
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, atol=1e-4)


def test_offline_chunked_is_close_to_whole_for_causal(tiny_separator):
    x = 0.1 * torch.randn(2, 30000, generator=torch.Generator().manual_seed(3)).numpy()
    y = separate_offline(tiny_separator, x)     # 6 s segments: one segment here
    with torch.no_grad():
        ref = tiny_separator(torch.from_numpy(x)[None])[0].numpy()
    np.testing.assert_allclose(y, ref, atol=1e-5)


def test_missing_file(tmp_path, capsys):
    line = one_line_error(capsys, main([str(tmp_path / "nope.wav"), "--out", str(tmp_path), "--preset", "tiny"]))
    assert "not found" in line


def test_unknown_stem(tmp_path, capsys):
    src = tmp_path / "a.wav"
    sf.write(src, np.zeros((1000, 2), np.float32), 44100)
    line = one_line_error(capsys, main([str(src), "--out", str(tmp_path / "o"), "--preset", "tiny",
                                        "--stems", "vocals,kazoo"]))
    assert "kazoo" in line and "vocals" in line and "accompaniment" in line
    assert not (tmp_path / "o").exists()


def test_unreadable_audio(tmp_path, capsys):
    src = tmp_path / "garbage.wav"
    src.write_bytes(b"RIFF\x00\x00not really a wave file" * 10)
    line = one_line_error(capsys, main([str(src), "--out", str(tmp_path / "o"), "--preset", "tiny"]))
    assert "garbage.wav" in line


def test_bad_flag(tmp_path, capsys):
    one_line_error(capsys, _exit_code(lambda: main(["x.wav"])))


def _exit_code(fn) -> int:
    try:
        return fn()
    except SystemExit as e:
        return int(e.code)


@pytest.mark.parametrize("rate,channels,streaming", [(48000, 2, False), (22050, 1, False), (48000, 2, True)])
def test_block_pipeline_equals_whole_file_processing(tiny_separator, rate, channels, streaming):
    """separate_stream (read, resample, separate, resample back, write: block by block) gives what whole-array
    processing gives: soxr's stream equals its one-shot output, ChunkedStream equals the overlap-add."""
    from tools.audio_io import fit_length, resample
    from tools.settings import SeparateConfig
    cfg = SeparateConfig(segment_seconds=0.3, read_block=5000, stream_block=1000)
    n = 2 * rate + 123
    audio = 0.1 * np.random.default_rng(4).standard_normal((n, channels)).astype(np.float32)
    got = separate_audio(tiny_separator, audio, rate, ["vocals", "accompaniment"], streaming=streaming, cfg=cfg)
    wav = resample(audio, rate, 44100).T
    y = separate_streaming(tiny_separator, wav, 1000) if streaming else separate_offline(tiny_separator, wav, cfg)
    for i, stem in enumerate(("vocals", "accompaniment")):
        want = fit_length(resample(np.ascontiguousarray(y[i].T), 44100, rate).T, n).T
        assert got[stem].shape == (n, channels)
        np.testing.assert_allclose(got[stem], want, atol=1e-6)


def test_multichannel_input_with_channels_flag(tmp_path, tiny_checkpoint, capsys):
    src = tmp_path / "six.wav"
    sf.write(src, 0.1 * np.random.default_rng(0).standard_normal((5000, 6)).astype(np.float32), 44100)
    assert main([str(src), "--out", str(tmp_path / "out"), "--checkpoint", str(tiny_checkpoint), "--channels", "5,6",
                 "-q"]) == 0
    assert sf.info(tmp_path / "out" / "six" / "vocals.wav").channels == 2
