"""Worker-side meters: levels of known signals, ballistics (fall, hold, RMS window), post-fader gains, the
limiter's gain reduction, and the reader's fall when updates stop."""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.errors import UserError
from streaming.processing.meters import SILENCE_DB, MeterConfig, Meters
from streaming.processing.stem_mixer import MixerConfig, StemMixer

RATE = 44100
BLOCK = 512


def _sine(amp: float, n: int, f: float = 5 * RATE / BLOCK) -> np.ndarray:    # whole periods per block
    t = np.arange(n) / RATE
    return (amp * np.sin(2 * np.pi * f * t)).astype(np.float32)


def _feed(meters: Meters, stems: np.ndarray, gains, seconds: float) -> None:
    """Blocks of `stems` (S, C, BLOCK) for `seconds`; the mix is their plain sum."""
    for _ in range(round(seconds * RATE / BLOCK)):
        meters.update(stems, stems.sum(0), np.asarray(gains, np.float64))


def test_levels_of_a_sine_and_post_fader_gains():
    m = Meters(("vocals", "accompaniment"), RATE)
    x = _sine(0.5, BLOCK)
    stems = np.stack([np.stack([x, x]), np.zeros((2, BLOCK), np.float32)])
    _feed(m, stems, [10 ** (-6 / 20), 1.0], 2.0)            # vocals fader at -6 dB, accompaniment silent
    r = m.read(m.stamp)
    assert r.peak_db[0] == pytest.approx(20 * math.log10(0.5) - 6, abs=0.05)
    assert r.rms_db[0] == pytest.approx(20 * math.log10(0.5 / math.sqrt(2)) - 6, abs=0.05)
    assert r.hold_db[0] >= r.peak_db[0]
    assert r.peak_db[1] == SILENCE_DB and r.rms_db[1] == SILENCE_DB
    assert r.peak_db[2] == pytest.approx(20 * math.log10(0.5), abs=0.05)          # the master: the plain mix
    _feed(m, stems, [0.0, 1.0], 0.05)                         # muted: the peak falls, never jumps
    assert m.read(m.stamp).peak_db[0] < r.peak_db[0]


def test_peak_falls_hold_stays_then_drops_and_rms_decays_on_silence():
    cfg = MeterConfig(peak_fall_db_per_s=20.0, peak_hold_s=1.0, rms_window_s=0.3)
    m = Meters(("vocals",), RATE, cfg)
    x = _sine(0.5, BLOCK)
    _feed(m, np.stack([np.stack([x, x])]), [1.0], 0.5)
    start = m.read(m.stamp)
    silence = np.zeros((1, 2, BLOCK), np.float32)
    _feed(m, silence, [1.0], 0.5)
    r = m.read(m.stamp)
    assert r.peak_db[0] == pytest.approx(start.peak_db[0] - 10.0, abs=0.3)          # 20 dB/s for 0.5 s
    assert r.hold_db[0] == pytest.approx(start.peak_db[0], abs=0.01)                # still held
    assert r.rms_db[0] == pytest.approx(start.rms_db[0] - 10 * math.log10(math.e) * 0.5 / 0.3, abs=0.3)
    _feed(m, silence, [1.0], 0.7)                                                   # the hold has expired
    r = m.read(m.stamp)
    assert r.hold_db[0] == pytest.approx(r.peak_db[0], abs=0.5)
    _feed(m, silence, [1.0], 3.0)
    assert m.read(m.stamp).peak_db[0] == SILENCE_DB or m.read(m.stamp).peak_db[0] < -60


def test_reader_lets_meters_fall_when_updates_stop():
    m = Meters(("vocals",), RATE)
    x = _sine(0.5, BLOCK)
    _feed(m, np.stack([np.stack([x, x])]), [1.0], 0.5)
    now = m.read(m.stamp)
    later = m.read(m.stamp + 2.0)                 # two seconds without a block (end of file, stopped stream)
    assert later.peak_db[0] == pytest.approx(now.peak_db[0] - 40.0, abs=1e-6)
    assert later.rms_db[0] < now.rms_db[0] - 25
    assert later.hold_db[0] == pytest.approx(later.peak_db[0])
    assert m.read(m.stamp + 10.0).peak_db[0] == SILENCE_DB


def test_limiter_reduction_is_published():
    mixer = StemMixer(("vocals", "accompaniment"), MixerConfig())
    loud = np.stack([np.stack([_sine(0.9, BLOCK)] * 2)] * 2)     # sum 1.8: far over the -3 dBFS knee
    mix = mixer.mix(loud)
    top = float(np.abs(loud.sum(0)).max())
    assert mixer.reduction_db == pytest.approx(20 * math.log10(top / np.abs(mix).max()), abs=1e-3)
    assert mixer.reduction_db > 3
    m = Meters(mixer.stems, RATE)
    m.update(loud, mix, mixer.fader_gains(), mixer.reduction_db)
    assert m.read(m.stamp).limiter_db == pytest.approx(mixer.reduction_db)
    quiet = loud * 0.1
    mixer.mix(quiet)
    assert mixer.reduction_db == 0.0


def test_fader_gains_follow_mute_and_solo():
    mixer = StemMixer(("vocals", "drums", "bass"))
    mixer.set_gain_db("vocals", -6.0)
    mixer.set_mute("drums", True)
    np.testing.assert_allclose(mixer.fader_gains(), [10 ** (-6 / 20), 0.0, 1.0])
    mixer.set_solo("bass", True)
    np.testing.assert_allclose(mixer.fader_gains(), [0.0, 0.0, 1.0])
    mixer.set_gain_db("bass", -math.inf)
    np.testing.assert_allclose(mixer.fader_gains(), [0.0, 0.0, 0.0])


def test_meter_config_errors():
    with pytest.raises(UserError, match="unknown key"):
        MeterConfig.from_config({"meters": {"fall": 1}})
    with pytest.raises(UserError, match=r"meters.rms_window_s: expected a number in \(0, 10\], got 0"):
        MeterConfig.from_config({"meters": {"rms_window_s": 0}})
    assert MeterConfig.from_config({}) == MeterConfig()
