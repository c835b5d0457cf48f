"""Inputs that are processed with a warning: truncated files (with the real length), a silent mix."""
from __future__ import annotations

import pytest
import soundfile as sf


@pytest.mark.parametrize("name,real", [("trunc.wav", 1.67), ("trunc.flac", None)])
def test_truncated_input_warns_once_with_the_real_length(assets, tmp_path, capfd, name, real):
    from streaming.cli import main
    out = tmp_path / "out.wav"
    assert main(["--input", str(assets / name), "--output", str(out), "--checkpoint", str(assets / "tiny.ckpt"), "--no-compile"]) == 0
    err = capfd.readouterr().err
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "Traceback" not in err, err
    frames = sf.info(out).frames
    assert 0 < frames < 5 * 44100                        # what the file holds, not what its header promises
    if real is not None:
        assert "promises 5.00 s" in warnings[0] and f"holds {real:.2f} s" in warnings[0]
    else:
        assert f"{frames / 44100:.2f} s" in warnings[0]


def test_truncated_input_to_separate(assets, tmp_path, capfd):
    from tools.separate import main
    assert main([str(assets / "trunc.wav"), "--out", str(tmp_path), "--checkpoint", str(assets / "tiny.ckpt"),
                 "-q"]) == 0
    err = capfd.readouterr().err
    assert "promises 5.00 s" in err and "Traceback" not in err
    assert sf.info(tmp_path / "trunc" / "vocals.wav").frames == sf.info(assets / "trunc.wav").frames


def test_all_stems_muted_warns(assets, tmp_path, capfd):
    from streaming.cli import main
    assert main(["--input", str(assets / "in.wav"), "--output", str(tmp_path / "o.wav"), "--checkpoint",
                 str(assets / "tiny.ckpt"), "--mute", "vocals", "--mute", "accompaniment", "--no-compile"]) == 0
    assert "every stem is silent" in capfd.readouterr().err
