import dataclasses

import pytest
import torch

import core
import model
from model.blocks import TemporalAttention, TFSWABlock
from model.config import model_config


def small_offline_config():
    """The paper architecture (offline, time+frequency downsampling) at toy width, for fast tests."""
    return dataclasses.replace(model_config("paper"), n_fft=256, hop_length=64, widths=(8, 16, 16), depths=(1, 2, 1),
                               bottleneck_width=16, bottleneck_depth=1, decoder_depths=(1, 2, 1), head_dim=8,
                               swin_window=(4, 4), mlp_ratio=2.0, name="paper-toy")


@pytest.mark.parametrize("length", [1, 63, 64, 1001, 4410])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("which", ["tiny", "offline"])
def test_shapes_for_odd_sizes(which, channels, length):
    sep = (model.build_separator("tiny") if which == "tiny" else model.Separator(small_offline_config())).eval()
    x = 0.1 * torch.randn(2, channels, length)
    with torch.no_grad():
        y = sep(x)
    assert y.shape == (2, len(sep.stems), channels, length)
    assert torch.isfinite(y).all()


def test_four_stem_set():
    sep = model.build_separator("tiny", stems="four").eval()
    assert sep.stems == ("vocals", "drums", "bass", "other")
    with torch.no_grad():
        assert sep(torch.randn(1, 2, 2000)).shape == (1, 4, 2, 2000)


def test_paper_input_and_masks_shape():
    """The network maps (B, 2, 256, 512) magnitudes to same-size bounded masks, per stem."""
    sep = model.Separator(dataclasses.replace(small_offline_config(), n_fft=1024))
    feats = torch.rand(1, 2, 256, 512)
    with torch.no_grad():
        masks = sep.net(feats)
    assert masks.shape == (1, 2, 2, 256, 512)
    assert masks.min() >= 0 and masks.max() <= 1


def test_paper_parameter_count():
    sep = model.build_separator("paper")
    assert sep.num_parameters() == 15_416_890  # README states this count


@pytest.mark.parametrize("t", [1200, 2531, 3000])
def test_causality(tiny_separator, t):
    """Changing the input from sample t on changes no mask frame before the first frame that sees t
    and no output sample before t - latency_samples."""
    sep = tiny_separator
    with torch.no_grad():
        sep.net.head.weight.mul_(100)  # random init barely moves the masks; make changes visible
    g = torch.Generator().manual_seed(t)
    x = 0.3 * torch.randn(1, 2, 6000, generator=g)
    x2 = x.clone()
    x2[..., t:] = 0.3 * torch.randn(1, 2, 6000 - t, generator=g)
    with torch.no_grad():
        (_, m1), (_, m2) = sep.masks(x), sep.masks(x2)
        y1, y2 = sep(x), sep(x2)
    first = t // sep.hop_length  # frame m covers [(m+1)*hop - n_fft, (m+1)*hop)
    assert (m1[..., :first, :] - m2[..., :first, :]).abs().max() <= 1e-6
    assert (m1[..., first, :] - m2[..., first, :]).abs().max() > 1e-4   # the frame that sees t does change
    cut = t - sep.latency_samples
    assert (y1[..., :cut] - y2[..., :cut]).abs().max() <= 1e-6
    assert (y1[..., t:] - y2[..., t:]).abs().max() > 1e-3


def test_receptive_field(tiny_separator):
    """A frame's mask depends on exactly receptive_field_frames frames (itself and the past).

    Every TSA is biased to attend to its farthest lag, and the projections that carry its output are
    amplified, so the influence of the oldest frame in the field survives the whole chain at float64
    precision (random init shrinks it below rounding); one frame further back has no path at all."""
    net = tiny_separator.net.double()
    with torch.no_grad():
        net.head.weight.mul_(100)
        for m in net.modules():
            if isinstance(m, TemporalAttention):
                m.rel_bias.fill_(-30.0)
                m.rel_bias[:, -1] = 30.0
                m.attn.out_proj.weight.mul_(30)
            if isinstance(m, TFSWABlock):
                m.fuse.weight.mul_(30)
    rf = net.receptive_field_frames
    feats = torch.rand(1, 2, rf + 20, tiny_separator.config.n_freq, dtype=torch.float64)
    last = feats.shape[2] - 1
    with torch.no_grad():
        base = net(feats)[..., last, :]
        outside = feats.clone()
        outside[:, :, last - rf] += 100.0
        inside = feats.clone()
        inside[:, :, last - rf + 1] += 100.0
        assert (net(outside)[..., last, :] - base).abs().max() == 0
        assert (net(inside)[..., last, :] - base).abs().max() > 1e-9


@pytest.mark.parametrize("which", ["tiny", "offline"])
def test_every_parameter_gets_finite_nonzero_gradient(which):
    sep = model.build_separator("tiny") if which == "tiny" else model.Separator(small_offline_config())
    sep.train()
    x = 0.3 * torch.randn(2, 2, 3000)
    y = sep(x)
    (y * torch.randn_like(y)).sum().backward()
    for name, p in sep.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_identity_masks_return_the_mixture(tiny_separator):
    sep = tiny_separator
    with torch.no_grad():
        sep.net.head.weight.zero_()
        sep.net.head.bias.fill_(30.0)  # sigmoid(30) == 1 in float32
        x = 0.3 * torch.randn(1, 2, 5000)
        y = sep(x)
    for s in range(len(sep.stems)):
        assert (y[:, s] - x).abs().max() < 1e-6


def test_attributes(tiny_separator):
    s = tiny_separator
    assert (s.sample_rate, s.n_fft, s.hop_length, s.causal) == (44100, 512, 256, True)
    assert s.stems == ("vocals", "accompaniment")
    assert s.latency_samples == 512
    with pytest.raises(AttributeError):
        _ = model.Separator(small_offline_config()).latency_samples


def test_bad_config_errors(tmp_path):
    with pytest.raises(core.ConfigError, match="unknown preset 'nope'"):
        model.build_separator("nope")
    with pytest.raises(core.ConfigError, match="hop_length"):
        model.ModelConfig.from_dict({**model_config("tiny").to_dict(), "hop_length": 1000})
    with pytest.raises(core.ConfigError, match="unknown key"):
        model.ModelConfig.from_dict({**model_config("tiny").to_dict(), "bogus": 1})
    bad = tmp_path / "bad.yaml"
    bad.write_text("presets: [unclosed")
    with pytest.raises(core.ConfigError, match="not valid YAML"):
        core.load_config(bad)
    with pytest.raises(core.ConfigError, match="not found"):
        core.load_config(tmp_path / "missing.yaml")
