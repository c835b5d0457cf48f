"""training.songs.realism: the pitch tracker and contour statistics on signals whose answers are known."""
from __future__ import annotations

import numpy as np

from training.songs import realism

SR = 16000


def _vibrato_tone(f0: float, rate: float, cents: float, seconds: float = 3.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    inst = f0 * 2 ** (cents / 1200 * np.sin(2 * np.pi * rate * t))
    phase = 2 * np.pi * np.cumsum(inst) / SR
    return sum(0.3 / k * np.sin(k * phase) for k in range(1, 6)).astype(np.float32)


def test_yin_follows_a_known_pitch():
    f0 = realism.yin(_vibrato_tone(220.0, 6.0, 0.0))
    assert len(f0) > 250
    voiced = f0[f0 > 0]
    assert len(voiced) > 0.95 * len(f0)
    assert np.median(np.abs(1200 * np.log2(voiced / 220.0))) < 5  # cents


def test_contour_stats_recover_vibrato_rate_and_extent():
    f0 = realism.yin(_vibrato_tone(330.0, 6.0, 40.0))  # +-40 cents: 80 cents peak to peak
    s = realism.contour_stats(f0, np.ones(len(f0), bool))
    assert s["vibrato_share"] > 0.8
    assert abs(s["vibrato_rate_hz"] - 6.0) < 0.7
    assert 60 < s["vibrato_extent_cents"] < 100
    flat = realism.contour_stats(realism.yin(_vibrato_tone(330.0, 6.0, 0.0)), np.ones(len(f0), bool))
    assert flat["vibrato_share"] < 0.1 and flat["micro_jitter_cents"] < 2
