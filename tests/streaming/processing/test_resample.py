"""The live resamplers: the low-delay polyphase converter (LD<n>) against the analytic signal, its lag,
time alignment with soxr, and the bypass at equal rates."""
from __future__ import annotations

import numpy as np
import pytest
import soxr

from core.errors import UserError
from streaming.processing.resample import PolyphaseResampler, StreamResampler, chain_lag_frames, check_quality


def tones(rate: int, n: int) -> np.ndarray:
    t = np.arange(n) / rate
    x = 0.3 * np.sin(2 * np.pi * 997.0 * t) + 0.2 * np.sin(2 * np.pi * 12003.0 * t)
    return np.stack([x, -x], 1).astype(np.float32)


def stream(rs, x: np.ndarray, rng) -> np.ndarray:
    out, i = [], 0
    while i < len(x):
        b = int(rng.integers(1, 600))
        out.append(rs.process(x[i:i + b]))
        i += b
    out.append(rs.flush())
    return np.concatenate(out)


@pytest.mark.parametrize(("rate_in", "rate_out"), [(48000, 44100), (44100, 48000), (96000, 44100), (32000, 44100)])
def test_low_delay_resampler_is_time_aligned_and_accurate(rate_in, rate_out):
    n = rate_in // 2
    x = tones(rate_in, n)
    y = stream(StreamResampler(rate_in, rate_out, 2, "LD32"), x, np.random.default_rng(0))
    assert y.shape == (-(-n * rate_out // rate_in), 2)          # every output sample, in any chunking
    t = np.arange(len(y)) / rate_out
    ref = 0.3 * np.sin(2 * np.pi * 997.0 * t) + 0.2 * np.sin(2 * np.pi * 12003.0 * t)
    edge = 200                                                  # the signal starts and stops abruptly
    assert np.abs(y[edge:-edge, 0] - ref[edge:-edge]).max() < 2e-5
    assert np.abs(y[:, 1] + y[:, 0]).max() < 1e-6
    # Same alignment as soxr's (the file path keeps using it).
    hq = soxr.resample(x, rate_in, rate_out, "HQ")
    assert np.abs(y[edge:-edge] - hq[edge:-edge]).max() < 2e-5


def test_low_delay_lag_is_the_filter_half_length_at_any_block_size():
    # The pair's lag: ~32 samples at 44.1 kHz per direction, whatever the block; soxr LQ's bursts cost 505 frames.
    for block in (64, 128, 256):
        lag = chain_lag_frames(48000, 44100, "LD32", block)
        assert 64 <= lag <= 72, lag
    assert chain_lag_frames(48000, 44100, "LQ", 128) > 400
    rs = PolyphaseResampler(48000, 44100, 2, 32)
    for _ in range(10):
        rs.process(np.zeros((128, 2), np.float32))
        assert rs.withheld() <= 35 * 44100 / 48000 + 1


def test_equal_rates_bypass_the_resampler():
    x = tones(44100, 1000)
    rs = StreamResampler(44100, 44100, 2, "LD32")
    assert not rs.active and rs.process(x) is x
    assert chain_lag_frames(44100, 44100, "LD32", 128) == 0


def test_quality_names():
    assert check_quality("ld32") == "LD32" and check_quality("lq") == "LQ"
    for bad in ("LD", "LD2", "XQ", "LD32x"):
        with pytest.raises(UserError, match="expected one of"):
            check_quality(bad)
