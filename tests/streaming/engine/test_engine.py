"""The exactness contract of the streaming engine: streaming == offline, for any chunking."""
import copy

import numpy as np
import pytest
import torch

import core
import model
from streaming import StreamingSeparator


def stream(engine, x, rng, sizes=(1, 2, 63, 255, 256, 257, 511, 700, 1500, 3000)):
    """Feed x (C, N) in random chunks drawn from `sizes` (plus an empty one), then flush."""
    outs, i = [engine.feed(x[:, :0])], 0
    while i < x.shape[1]:
        n = int(rng.choice(sizes))
        y = engine.feed(x[:, i:i + n])
        assert y.shape == (len(engine.stems), x.shape[0], min(n, x.shape[1] - i))
        outs.append(y)
        i += n
    outs.append(engine.flush())
    return np.concatenate(outs, -1)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("mode", ["cached", "naive"])
def test_streaming_equals_offline(tiny_separator, channels, mode):
    x = 0.3 * torch.randn(1, channels, 7001, generator=torch.Generator().manual_seed(channels))
    with torch.no_grad():
        ref = tiny_separator(x)[0].numpy()
    engine = StreamingSeparator(tiny_separator, device="cpu", channels=channels, mode=mode)
    rng = np.random.default_rng(123)
    for _ in range(2):  # a reset engine behaves exactly like a new one
        out = stream(engine, x[0].numpy(), rng)
        lat = engine.latency_samples
        assert out.shape == (2, channels, 7001 + lat)
        assert np.abs(out[..., lat:] - ref).max() < 1e-4
        assert np.abs(out[..., :lat]).max() == 0.0
        engine.reset()


@pytest.mark.parametrize("k", [2, 3, 4])
def test_k_hops_per_step_equal_offline_at_k_minus_1_hops_more_latency(tiny_separator, k):
    """K hops per network call: the K frames go through the network as one batch, and the output is still the
    offline causal output, exactly, (K - 1) hops later; K times fewer calls."""
    x = 0.3 * torch.randn(1, 2, 7001, generator=torch.Generator().manual_seed(k))
    with torch.no_grad():
        ref = tiny_separator(x)[0].numpy()
    engine = StreamingSeparator(tiny_separator, device="cpu", hops_per_step=k)
    assert engine.step_latency_samples == (k - 1) * 256
    assert engine.latency_samples == 512 + (k - 1) * 256
    rng = np.random.default_rng(k)
    for _ in range(2):
        out = stream(engine, x[0].numpy(), rng)
        lat = engine.latency_samples
        assert out.shape == (2, 2, 7001 + lat)
        assert np.abs(out[..., lat:] - ref).max() < 1e-4
        assert np.abs(out[..., :lat]).max() == 0.0
        hops = len(engine.step_times_ms)
        assert hops % k == 0 and engine.model_calls == hops // k
        engine.reset()


def test_k_hops_per_step_with_asymmetric_windows():
    sep = asymmetric_tiny()
    x = 0.3 * torch.randn(1, 2, 5001, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        ref = sep(x)[0].numpy()
    engine = StreamingSeparator(sep, device="cpu", hops_per_step=2)
    out = stream(engine, x[0].numpy(), np.random.default_rng(1), sizes=(1, 63, 64, 65, 300, 1000))
    assert engine.latency_samples == 128 + 64
    assert np.abs(out[..., 192:] - ref).max() < 1e-4


def test_hops_per_step_is_checked(tiny_separator):
    for bad in (0, 17, 2.0):
        with pytest.raises(core.UserError, match="hops per step"):
            StreamingSeparator(tiny_separator, device="cpu", hops_per_step=bad)
    with pytest.raises(core.UserError, match="naive"):
        StreamingSeparator(tiny_separator, device="cpu", mode="naive", hops_per_step=2)


def test_streaming_preset_equals_offline():
    sep = model.build_separator("streaming").eval()
    x = 0.3 * torch.randn(1, 2, 20000, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = sep(x)[0].numpy()
    engine = StreamingSeparator(sep, device="cpu")
    out = stream(engine, x[0].numpy(), np.random.default_rng(7), sizes=(1, 511, 512, 513, 2000, 4096))
    assert np.abs(out[..., engine.latency_samples:] - ref).max() < 1e-4


def asymmetric_tiny():
    """`tiny` with an asymmetric window pair: 512 analysis, 128 synthesis, hop 64 (latency 128 samples)."""
    import dataclasses
    return model.Separator(dataclasses.replace(model.model_config("tiny"), hop_length=64, synthesis_length=128)).eval()


@pytest.mark.parametrize("channels", [1, 2])
def test_asymmetric_windows_stream_equals_offline(channels):
    sep = asymmetric_tiny()
    assert sep.latency_samples == 128
    x = 0.3 * torch.randn(1, channels, 5001, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = sep(x)[0].numpy()
    engine = StreamingSeparator(sep, device="cpu", channels=channels)
    rng = np.random.default_rng(2)
    for _ in range(2):
        out = stream(engine, x[0].numpy(), rng, sizes=(1, 63, 64, 65, 300, 1000))
        assert out.shape == (2, channels, 5001 + 128)
        assert np.abs(out[..., 128:] - ref).max() < 1e-4
        assert np.abs(out[..., :128]).max() == 0.0
        engine.reset()


@pytest.mark.parametrize("which", ["symmetric", "asymmetric"])
def test_identity_masks_give_delayed_input(tiny_separator, which):
    if which == "asymmetric":
        tiny_separator = asymmetric_tiny()
    with torch.no_grad():
        tiny_separator.net.head.weight.zero_()
        tiny_separator.net.head.bias.fill_(30.0)  # sigmoid(30) == 1.0 in float32
    engine = StreamingSeparator(tiny_separator, device="cpu")
    x = (0.3 * torch.randn(2, 5000, generator=torch.Generator().manual_seed(9))).numpy()
    out = stream(engine, x, np.random.default_rng(1))
    lat = engine.latency_samples
    for s in range(2):
        assert np.abs(out[s, :, lat:] - x).max() < 1e-6
        assert np.abs(out[s, :, :lat]).max() == 0.0


def test_block_mode_runs_the_one_hop_step_per_hop(tiny_separator):
    x = (0.3 * torch.randn(2, 256 * 9, generator=torch.Generator().manual_seed(3))).numpy()
    one = StreamingSeparator(tiny_separator, device="cpu")
    y_block = one.feed(x)
    assert one.model_calls == 9  # 9 hops in one chunk: the static one-hop step, 9 times
    hop = StreamingSeparator(tiny_separator, device="cpu")
    y_hop = np.concatenate([hop.feed(x[:, i:i + 256]) for i in range(0, x.shape[1], 256)], -1)
    assert hop.model_calls == 9
    assert np.abs(y_block - y_hop).max() < 1e-6


def test_chunks_larger_than_the_block_limit(tiny_separator):
    x = 0.3 * torch.randn(1, 2, 256 * 40 + 17)
    with torch.no_grad():
        ref = tiny_separator(x)[0].numpy()
    engine = StreamingSeparator(tiny_separator, device="cpu", max_block_hops=8)
    out = np.concatenate([engine.feed(x[0].numpy()), engine.flush()], -1)
    assert np.abs(out[..., engine.latency_samples:] - ref).max() < 1e-4


def test_latency_and_attributes(tiny_separator):
    engine = StreamingSeparator(tiny_separator, device="cpu")
    assert engine.latency_samples == 512
    assert engine.latency_ms == pytest.approx(1000 * 512 / 44100)
    assert engine.stems == ("vocals", "accompaniment") and engine.hop_length == 256
    engine.feed(np.zeros((2, 256 * 5), np.float32))
    assert len(engine.step_times_ms) == 5 and np.all(engine.step_times_ms > 0)
    assert engine.rtf > 0


def test_nonfinite_input_is_zeroed_not_propagated(tiny_separator):
    engine = StreamingSeparator(tiny_separator, device="cpu")
    x = np.zeros((2, 1000), np.float32)
    x[0, 10] = np.nan
    x[1, 500] = np.inf
    out = np.concatenate([engine.feed(x), engine.feed(np.ones((2, 3000), np.float32) * 0.1)], -1)
    assert np.isfinite(out).all()
    assert engine.nonfinite_samples == 2


def test_rejects_offline_separator_and_bad_chunks(tiny_separator):
    with pytest.raises(core.UserError, match="causal"):
        StreamingSeparator(model.build_separator("paper"), device="cpu")
    engine = StreamingSeparator(tiny_separator, device="cpu")
    with pytest.raises(core.UserError, match=r"shape \(2, n\)"):
        engine.feed(np.zeros((3, 10), np.float32))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu(tiny_separator):
    x = (0.3 * torch.randn(2, 3000)).numpy()
    cpu = StreamingSeparator(tiny_separator, device="cpu")
    a = np.concatenate([cpu.feed(x), cpu.flush()], -1)
    gpu = StreamingSeparator(copy.deepcopy(tiny_separator), device="cuda")
    b = np.concatenate([gpu.feed(x), gpu.flush()], -1)
    assert np.abs(a - b).max() < 1e-4
