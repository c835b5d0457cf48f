import pytest
import torch

import core
import model


def test_save_load_identical_output(tmp_path, tiny_separator):
    path = tmp_path / "a.ckpt"
    model.save_checkpoint(tiny_separator, path, steps=12, data="synthetic")
    loaded = model.load_checkpoint(path)
    x = 0.3 * torch.randn(1, 2, 3000)
    with torch.no_grad():
        assert torch.equal(tiny_separator(x), loaded(x))
    assert loaded.metadata == {"steps": 12, "data": "synthetic"}
    assert loaded.stems == tiny_separator.stems and loaded.config == tiny_separator.config
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temp file


def test_four_stem_round_trip(tmp_path):
    sep = model.build_separator("tiny", stems="four")
    model.save_checkpoint(sep, tmp_path / "b.ckpt")
    assert model.load_checkpoint(tmp_path / "b.ckpt").stems == ("vocals", "drums", "bass", "other")


@pytest.fixture
def saved(tmp_path, tiny_separator):
    path = tmp_path / "good.ckpt"
    model.save_checkpoint(tiny_separator, path)
    return path


def test_missing_file(tmp_path):
    with pytest.raises(core.CheckpointError, match="not found"):
        model.load_checkpoint(tmp_path / "nope.ckpt")


@pytest.mark.parametrize("keep", [0, 100, 5000, -10])
def test_truncated_or_garbage(tmp_path, saved, keep):
    data = saved.read_bytes()
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"garbage" if keep == 0 else data[:keep])
    with pytest.raises(core.CheckpointError, match="corrupt or truncated|not a tfswa"):
        model.load_checkpoint(bad)


def _rewrite(path, tmp_path, edit):
    ckpt = torch.load(path, weights_only=True)
    edit(ckpt)
    out = tmp_path / "edited.ckpt"
    torch.save(ckpt, out)
    return out


@pytest.mark.parametrize("edit,message", [
    (lambda c: c.pop("format"), "not a tfswa-separator checkpoint"),
    (lambda c: c.update(format_version=99), "format version 99"),
    (lambda c: c.update({"class": "Demucs"}), "holds class 'Demucs'"),
    (lambda c: c.pop("state_dict"), "lacks its 'state_dict'"),
    (lambda c: c["config"].update(widths=[16]), "wrong shape"),
    (lambda c: c["config"].update(stems=["vocals", "drums", "bass", "other"]), "wrong shape"),
    (lambda c: c["state_dict"].pop("net.head.bias"), "missing 1 tensors"),
    (lambda c: c["state_dict"].update(extra=torch.zeros(1)), "1 unexpected tensors"),
    (lambda c: c["config"].update(n_fft=7), "config does not match"),
    (lambda c: c["state_dict"]["net.head.bias"].fill_(float("nan")), "NaN"),
])
def test_mismatched_checkpoints(tmp_path, saved, edit, message):
    with pytest.raises(core.CheckpointError, match=message):
        model.load_checkpoint(_rewrite(saved, tmp_path, edit))
