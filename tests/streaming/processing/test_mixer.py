"""Stem mixer: gains, mute / solo, ramps without clicks, soft limiter, and stem-name errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.errors import UserError
from streaming.processing.stem_mixer import MixerConfig, StemMixer, parse_gain, soft_limit

STEMS = ("vocals", "drums", "bass", "other")


def stems_audio(n: int = 512, seed: int = 0) -> np.ndarray:
    return (0.03 * np.random.default_rng(seed).standard_normal((len(STEMS), 2, n))).astype(np.float32)


def test_unity_is_sum_and_mute_removes_stem():
    x = stems_audio()
    m = StemMixer(STEMS)
    np.testing.assert_allclose(m.mix(x), x.sum(0), atol=1e-6)
    m.set_mute("vocals", True)
    m.mix(x)                                         # the ramp block
    np.testing.assert_allclose(m.mix(x), x[1:].sum(0), atol=1e-6)
    assert m.stem_gains_db()["vocals"] is None and m.stem_gains_db()["drums"] == 0.0


def test_solo_and_gain_and_master():
    x = stems_audio()
    m = StemMixer(STEMS)
    m.set_solo("drums", True)
    m.set_gain_db("drums", -6.0)
    m.set_master_db(-6.0)
    m.mix(x)
    np.testing.assert_allclose(m.mix(x), x[1] * 10 ** (-12 / 20), atol=1e-6)
    gains = m.stem_gains_db()
    assert gains == {"vocals": None, "drums": -12.0, "bass": None, "other": None}


def test_gain_change_ramps_over_one_block():
    x = np.ones((len(STEMS), 2, 100), np.float32) * 0.1
    m = StemMixer(STEMS)
    m.mix(x)
    m.set_mute("vocals", True)
    y = m.mix(x)[0]
    # linear from 0.4 towards 0.3: no step larger than the per-sample ramp increment
    assert np.max(np.abs(np.diff(y))) <= 0.1 / 100 + 1e-6
    assert abs(y[-1] - 0.3) < 1e-6 and y[0] > 0.39


@pytest.mark.parametrize("gain_db", [0.0, 12.0])
def test_limiter_never_clips(gain_db):
    x = np.full((len(STEMS), 2, 256), 0.9, np.float32)
    m = StemMixer(STEMS, MixerConfig())
    m.set_master_db(gain_db)
    y = m.mix(x)
    y = m.mix(x)
    assert np.abs(y).max() <= 10 ** (-0.1 / 20) + 1e-6
    assert m.limited_samples > 0


def test_soft_limit_is_identity_below_threshold_and_monotonic():
    x = np.linspace(-3, 3, 10001).astype(np.float32)
    y = soft_limit(x.copy(), 0.7, 0.99)
    below = np.abs(x) <= 0.7
    np.testing.assert_array_equal(y[below], x[below])
    assert np.all(np.diff(y) >= 0) and np.abs(y).max() < 0.99


def test_unknown_stem_lists_valid_ones():
    m = StemMixer(STEMS)
    with pytest.raises(UserError, match="vocals, drums, bass, other"):
        m.set_mute("guitar", True)


@pytest.mark.parametrize("spec,expected", [("vocals=-12", ("vocals", -12.0)), ("bass=+3.5", ("bass", 3.5)),
                                           ("drums=-inf", ("drums", -math.inf))])
def test_parse_gain(spec, expected):
    assert parse_gain(spec) == expected


@pytest.mark.parametrize("spec", ["vocals", "=3", "vocals=loud", "vocals=nan"])
def test_parse_gain_rejects(spec):
    with pytest.raises(UserError):
        parse_gain(spec)
