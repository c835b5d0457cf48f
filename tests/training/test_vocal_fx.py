"""The vocal bus (training.vocal_fx): each effect changes the vocal at probability 1 and leaves it untouched at 0,
plans are pure functions of the seed, one effect's probability does not move another's settings, config errors
are one-line ConfigErrors. Generated audio only (a vibrato tone with a syllable envelope), no data needed."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import core
from training.real_vocals import RealVocalsConfig
from training.vocal_fx import ORDER, VocalFxConfig, apply_vocal_bus, plan_vocal_bus

SR = 44100


def _fx(**probabilities: float) -> VocalFxConfig:
    """The project's vocal bus with the given probabilities, every other effect at 0."""
    cfg = RealVocalsConfig.from_dict(None).vocal_fx
    return dataclasses.replace(cfg, **{k: dataclasses.replace(getattr(cfg, k), probability=probabilities.get(k, 0.0))
                                       for k in ORDER})


@pytest.fixture(scope="module")
def voice() -> np.ndarray:
    """(2, N) 3 s: a sung-like tone (vibrato, harmonics) in syllables, slightly different per channel."""
    t = np.arange(3 * SR) / SR
    f0 = 220 * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    tone = sum(np.sin(k * phase) / k for k in range(1, 8))
    syllables = np.clip(np.sin(2 * np.pi * 2.0 * t), 0, None) ** 0.5
    x = 0.05 * tone * syllables
    return np.stack([x, 0.9 * x]).astype(np.float32)


@pytest.mark.parametrize("effect", ORDER)
def test_each_effect_changes_the_vocal_at_probability_1(voice, effect):
    plan = plan_vocal_bus(_fx(**{effect: 1.0}), (0, 7, 1))
    assert [name for name, _ in plan] == [effect]
    y = apply_vocal_bus(voice, SR, plan)
    assert y.shape == voice.shape and y.dtype == np.float32 and np.isfinite(y).all()
    change_db = 10 * np.log10(np.sum((y - voice) ** 2) / np.sum(voice ** 2))
    assert -60 < change_db < 0, f"{effect}: change {change_db:.1f} dB relative to the vocal"  # audible, not a wreck


@pytest.mark.parametrize("effect", ORDER)
def test_each_effect_leaves_the_vocal_untouched_at_probability_0(voice, effect):
    others = {k: 1.0 for k in ORDER if k != effect}
    for seed in range(20):
        assert effect not in [name for name, _ in plan_vocal_bus(_fx(**others), (0, seed, 1))]
    plan = plan_vocal_bus(_fx(), (0, 3, 1))
    assert plan == []
    np.testing.assert_array_equal(apply_vocal_bus(voice, SR, plan), voice)


def test_plans_are_pure_functions_of_the_seed_and_effects_independent(voice):
    cfg = RealVocalsConfig.from_dict(None).vocal_fx
    a, b = plan_vocal_bus(cfg, (5, 11, 1)), plan_vocal_bus(cfg, (5, 11, 1))
    assert a == b
    np.testing.assert_array_equal(apply_vocal_bus(voice, SR, a), apply_vocal_bus(voice, SR, b))
    assert any(plan_vocal_bus(cfg, (5, i, 1)) != a for i in range(12, 20))
    # turning reverb off leaves the EQ's drawn settings as they were
    with_reverb = dict(plan_vocal_bus(_fx(eq=1.0, reverb=1.0), (1, 2, 3)))
    without = dict(plan_vocal_bus(_fx(eq=1.0), (1, 2, 3)))
    assert with_reverb["eq"] == without["eq"] and "reverb" not in without


def test_silence_stays_silent():
    x = np.zeros((2, SR), np.float32)
    y = apply_vocal_bus(x, SR, plan_vocal_bus(_fx(**{k: 1.0 for k in ORDER}), (0, 0, 0)))
    assert np.isfinite(y).all() and not y.any()


def _section(**over) -> dict:
    d = core.load_config()["real_vocals"]
    for path, value in over.items():
        section = d
        *parents, leaf = path.split(".")
        for p in parents:
            section = section[p]
        section[leaf] = value
    return d


@pytest.mark.parametrize(("path", "value", "match"), [
    ("vocal_fx.reverb.probability", 1.5, r"vocal_fx\.reverb\.probability"),
    ("vocal_fx.eq.low_shelf_hz", [400.0, 80.0], r"vocal_fx\.eq\.low_shelf_hz: expected \[low, high\]"),
    ("vocal_fx.compressor.ratio", [0.5, 2.0], r"vocal_fx\.compressor\.ratio"),
    ("vocal_fx.saturation.mix", "much", r"vocal_fx\.saturation\.mix"),
    ("vocal_fx.pan.wobble", 1.0, r"wobble"),
    ("accompaniment", {"songs": 1.0, "karaoke": 1.0}, r"real_vocals\.accompaniment"),
])
def test_config_errors_are_one_line(path, value, match):
    with pytest.raises(core.ConfigError, match=match) as e:
        RealVocalsConfig.from_dict(_section(**{path: value}))
    assert "\n" not in str(e.value)


def test_a_missing_effect_section_is_a_config_error():
    d = _section()
    del d["vocal_fx"]["level"]
    with pytest.raises(core.ConfigError, match="level"):
        RealVocalsConfig.from_dict(d)
