import pytest
import torch

from model.stft import STFT


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n_fft,hop", [(1024, 256), (1024, 512), (256, 64)])
@pytest.mark.parametrize("length", [1, 77, 4097, 44100])
@pytest.mark.parametrize("channels", [1, 2])
def test_round_trip(causal, n_fft, hop, length, channels):
    stft = STFT(n_fft, hop, causal=causal)
    x = 0.5 * torch.randn(2, channels, length, generator=torch.Generator().manual_seed(length))
    spec = stft(x)
    assert spec.shape == (2, channels, stft.n_frames(length), n_fft // 2 + 1)
    y = stft.inverse(spec, length)
    assert y.shape == x.shape
    assert (y - x).abs().max() < 1e-6


@pytest.mark.parametrize("n_fft,hop", [(256, 64), (1024, 512)])
def test_causal_frame_m_ends_on_hop_boundary(n_fft, hop):
    """Frame m is the windowed FFT of samples [(m+1)*hop - n_fft, (m+1)*hop): nothing from the future."""
    stft = STFT(n_fft, hop, causal=True)
    x = torch.randn(20000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    spec = stft(x)
    padded = torch.cat([torch.zeros(n_fft, dtype=x.dtype), x])
    for m in (0, 1, 7, 30):
        seg = padded[(m + 1) * hop:(m + 1) * hop + n_fft]  # padded index = sample + n_fft
        ref = torch.fft.rfft(seg * stft.window.double())
        assert torch.allclose(spec[m], ref, atol=1e-9)


def test_envelope_matches_window_overlap():
    stft = STFT(1024, 256, causal=True)
    env = stft.envelope()
    w2 = stft.window.double() ** 2
    brute = torch.zeros(256, dtype=torch.float64)
    for r in range(256):
        brute[r] = sum(w2[r + j * 256] for j in range(4))
    assert torch.allclose(env, brute)


@pytest.mark.parametrize("n_fft,hop,synth", [(1024, 128, 256), (1024, 256, 512), (512, 64, 256)])
@pytest.mark.parametrize("length", [1, 77, 4097, 20000])
def test_asymmetric_round_trip(n_fft, hop, synth, length):
    """Long analysis / short synthesis window pair: identity reconstructs the input."""
    stft = STFT(n_fft, hop, causal=True, synthesis_length=synth)
    x = 0.5 * torch.randn(2, 2, length, generator=torch.Generator().manual_seed(length))
    y = stft.inverse(stft(x), length)
    assert y.shape == x.shape
    assert (y - x).abs().max() < 1e-6


def test_asymmetric_window_pair_design():
    """Analysis spans the whole frame, synthesis only its last M samples, and their product overlap-adds
    to one at every position: the pair is perfect-reconstruction by construction."""
    from model.stft import window_pair
    n_fft, hop, m = 1024, 128, 256
    analysis, synthesis = window_pair("hann", n_fft, hop, m)
    assert (synthesis[: n_fft - m] == 0).all() and (synthesis[n_fft - m + 1:] > 0).all()
    assert (analysis[1:] > 0).all() and analysis.max() <= 1.0 + 1e-6
    product = (analysis.double() * synthesis.double()).reshape(-1, hop).sum(0)
    assert torch.allclose(product, torch.ones(hop, dtype=torch.float64), atol=1e-6)
    assert STFT(n_fft, hop, causal=True, synthesis_length=m).envelope().sub(1).abs().max() < 1e-6
