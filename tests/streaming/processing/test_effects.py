"""Effect chains through pedalboard itself: specs, ranges, exact gain, tails across blocks, latency alignment."""
from __future__ import annotations

import numpy as np
import pedalboard
import pytest

from core.errors import UserError
from streaming.control.registry import ControlRegistry
from streaming.processing.effects import EFFECTS, ChainsConfig, EffectChain, parse_effect_item, parse_fx
from streaming.processing.keyshift import KeyChange, KeyConfig
from streaming.processing.stem_fx import StemEffects, chain_specs

SR = 44100
STEMS = ("vocals", "accompaniment")


def noise(n: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal((2, n))).astype(np.float32)


def stream(chain, x: np.ndarray, seed: int = 1) -> np.ndarray:
    """Feed x (C, N) in seeded random chunks (1 sample up to > 1 hop) -> concatenated output."""
    rng = np.random.default_rng(seed)
    out, pos = [], 0
    while pos < x.shape[1]:
        k = int(rng.choice([1, 7, 256, 441, 1000, 4096]))
        out.append(chain.process(x[:, pos:pos + k]))
        pos += k
    return np.concatenate(out, axis=1)


@pytest.mark.parametrize("effect", [e for e in EFFECTS if e != "pitch_shift"])
def test_table_matches_pedalboard(effect):
    cls_name, params = EFFECTS[effect]
    cls = getattr(pedalboard, cls_name)
    default = cls()
    for pname, p in params.items():
        assert hasattr(default, pname), f"{cls_name} has no parameter {pname}"
        for value in (p.minimum, p.maximum):
            plugin = cls(**{pname: value})                      # pedalboard accepts the whole range
            assert abs(getattr(plugin, pname) - value) < 1e-6 * max(1.0, abs(value))
    # Built-ins add no latency: streamed output is as long as its input from the first block.
    board = pedalboard.Pedalboard([default])
    assert board.process(noise(256), SR, reset=False).shape == (2, 256)


@pytest.mark.parametrize("spec,match", [
    ("vocals=flanger", "unknown effect 'flanger'"),
    ("vocals=reverb:size=0.5", "no parameter 'size'; expected one of: room_size"),
    ("vocals=reverb:room_size=1.5", "room_size = 1.5 is out of range; expected 0..1"),
    ("vocals=delay:feedback=x", "expected a number"),
    ("vocals=reverb:room_size", "not PARAM=VALUE"),
    ("reverb", "expected --fx TARGET=EFFECT"),
    ("vocals=vst3:path=/nonexistent/Thing.vst3", "VST3 plugin not found"),
    ("vocals=gain:gain_db=nan", "finite number"),
])
def test_bad_effect_specs(spec, match):
    with pytest.raises(UserError, match=match):
        target, effect = parse_fx(spec)
        EffectChain(target, (effect,), SR)


def test_vst3_path_that_is_not_a_plugin(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a plugin")
    with pytest.raises(UserError, match="not a VST3 plugin"):
        EffectChain("vocals", (parse_fx(f"vocals=vst3:path={text}")[1],), SR)
    fake = tmp_path / "Fake.vst3"
    fake.mkdir()
    with pytest.raises(UserError, match="cannot load .* as a VST3 plugin"):
        EffectChain("vocals", (parse_fx(f"vocals=vst3:path={fake}")[1],), SR)


def test_chain_targets_checked():
    cfg = ChainsConfig.from_config({"chains": {"drums": [{"effect": "gain", "gain_db": -3}],
                                               "vocals": [{"effect": "reverb"}]}})
    specs = chain_specs(cfg, ["vocals=gain:gain_db=-1"], STEMS)
    assert [s.effect for s in specs["vocals"]] == ["gain"]        # --fx replaces the config chain
    assert "drums" not in specs                                   # a stem of other models: skipped
    with pytest.raises(UserError, match="unknown target 'vocal'"):
        chain_specs(ChainsConfig.from_config({"chains": {"vocal": [{"effect": "gain"}]}}), [], STEMS)
    with pytest.raises(UserError, match="unknown target 'guitar'"):
        chain_specs(ChainsConfig(), ["guitar=gain:gain_db=1"], STEMS)
    with pytest.raises(UserError, match="'effect' name"):
        parse_effect_item({"room_size": 0.3}, "config chains.vocals[0]")


@pytest.mark.parametrize("db", [-6.0, 4.5])
def test_gain_changes_level_by_exactly_its_db(db):
    x = noise(SR // 2)
    chain = EffectChain("vocals", (parse_fx(f"vocals=gain:gain_db={db}")[1],), SR)
    assert chain.latency_samples == 2
    y = stream(chain, x)
    rms = [np.sqrt(np.mean(a.astype(np.float64) ** 2)) for a in (y[:, 2:], x[:, :-2])]
    level = 20 * np.log10(rms[0] / rms[1])
    assert abs(level - db) < 1e-4
    np.testing.assert_allclose(y[:, 2:], x[:, :-2] * 10 ** (db / 20), rtol=1e-5, atol=1e-7)   # 2-sample hold-back


def test_reverb_tail_carries_across_blocks():
    x = np.zeros((2, SR), np.float32)
    x[:, :2000] = noise(2000)[:, :2000] * 5                        # a burst, then silence: the tail matters
    spec = parse_fx("vocals=reverb:room_size=0.8,wet_level=0.5,dry_level=0.5")[1]
    streamed = stream(EffectChain("vocals", (spec,), SR), x)
    whole = pedalboard.Reverb(room_size=0.8, wet_level=0.5, dry_level=0.5)(x, SR)
    assert np.abs(whole[:, SR // 2:]).max() > 1e-3                # the tail is long and loud
    np.testing.assert_allclose(streamed[:, 2:], whole[:, :-2], atol=1e-5)


def test_three_effect_chain_equals_one_offline_call():
    specs = tuple(parse_fx(s)[1] for s in ("a=compressor:threshold_db=-24,ratio=4", "a=peak:cutoff_frequency_hz=900,gain_db=6",
                                           "a=delay:delay_seconds=0.12,feedback=0.4,mix=0.3"))
    x = noise(SR // 2, 3)
    streamed = stream(EffectChain("accompaniment", specs, SR), x)
    whole = pedalboard.Pedalboard([pedalboard.Compressor(threshold_db=-24, ratio=4),
                                   pedalboard.PeakFilter(cutoff_frequency_hz=900, gain_db=6),
                                   pedalboard.Delay(delay_seconds=0.12, feedback=0.4, mix=0.3)])(x, SR)
    np.testing.assert_allclose(streamed[:, 2:], whole[:, :-2], atol=2e-5)


def test_controls_named_and_settable():
    specs = tuple(parse_fx(s)[1] for s in ("v=reverb:wet_level=0.2", "v=reverb", "v=delay"))
    chain = EffectChain("vocals", specs, SR)
    reg = ControlRegistry()
    chain.register(reg)
    assert {"vocals.reverb.wet_level", "vocals.reverb2.room_size", "vocals.delay.feedback"} <= set(reg.names())
    assert reg.value("vocals.reverb.wet_level") == pytest.approx(0.2)
    reg.request("vocals.reverb.wet_level", 0.7)
    reg.request("vocals.delay.feedback", 5.0)                     # clamped to the range
    assert reg.apply_pending() == 2
    assert chain.effects[0].plugin.wet_level == pytest.approx(0.7)
    assert chain.effects[2].plugin.feedback == pytest.approx(1.0)
    assert reg["vocals.reverb.wet_level"].from_midi(127) == pytest.approx(1.0)


def test_stems_stay_aligned_with_a_latent_chain():
    """A pitch shift on one stem delays it by its window; the other stem is delayed as much, bit-exactly."""
    cfg = KeyConfig()
    specs = {"accompaniment": (parse_fx("accompaniment=pitch_shift:semitones=3")[1],)}
    fx = StemEffects(STEMS, SR, specs, None)
    assert fx.latency_samples == cfg.n_fft and fx.latency_by_stem == {"vocals": 0, "accompaniment": cfg.n_fft}
    x = np.stack([noise(SR // 4, 5), noise(SR // 4, 6)])
    out = np.concatenate([fx.process_stems(x[:, :, i:i + 300]) for i in range(0, x.shape[-1], 300)], axis=-1)
    np.testing.assert_array_equal(out[0, :, cfg.n_fft:], x[0, :, :-cfg.n_fft])
    assert np.abs(out[0, :, :cfg.n_fft]).max() == 0.0


def test_key_change_leaves_vocals_alone():
    key = KeyChange(STEMS, SR, KeyConfig(), 2.0, live=False)
    assert list(key.stages) == [1]
    x = noise(1000)
    assert key.process(0, x) is x
