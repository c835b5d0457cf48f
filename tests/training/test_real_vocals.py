"""Real vocals of ../shared/data: the leakage guard, virtual tracks (deterministic, exact sums, limited),
the eif validation excerpts, the `--data` specs. Tests that need the shared data skip, saying why, without it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import model
from training.config import DataConfig
from training.data import DataError, build_source
from training.real_vocals import (
    RealValidTracks,
    RealVocalLibrary,
    RealVocalsConfig,
    RealVocalTracks,
    find_data_root,
    refuse_measurement_data,
    valid_excerpt_starts,
)

SR = 44100


def _cfg(**over) -> RealVocalsConfig:
    d = model.load_config()["real_vocals"]
    d.update(over)
    return RealVocalsConfig.from_dict(d)


@pytest.fixture(scope="module")
def root() -> Path:
    try:
        return find_data_root()
    except DataError as e:
        pytest.skip(f"no shared data folder: {e}")


# -- the leakage guard (no data needed: refusal comes before any file is opened) -----------------------
@pytest.mark.parametrize("song", ["Caesium", "Francium", "caesium"])
def test_library_refuses_the_validation_songs(tmp_path, song):
    with pytest.raises(DataError, match="validation"):
        RealVocalLibrary(tmp_path, _cfg(), songs=("Hydrogen", song), solo_clips=())


@pytest.mark.parametrize("clip", ["dev/ismir2018_tutorial_x/vocals.flac", "dev/ismir2018_tutorial_x/mixture.flac",
                                  "eif/Francium/vocals.ogg", "eif/Caesium/../Caesium/accompaniment.ogg"])
def test_library_refuses_measurement_files_as_clips(tmp_path, clip):
    with pytest.raises(DataError, match="refusing"):
        RealVocalLibrary(tmp_path, _cfg(), songs=(), solo_clips=(clip,))


def test_library_refuses_the_stempeg_demo_clip(tmp_path):
    stempeg = pytest.importorskip("stempeg")
    demo = Path(stempeg.example_stem_path())
    with pytest.raises(DataError, match="refusing"):
        refuse_measurement_data(demo, tmp_path, _cfg())
    with pytest.raises(DataError, match="refusing"):
        RealVocalLibrary(tmp_path, _cfg(), songs=(), solo_clips=(str(demo),))


def test_config_rejects_a_song_in_both_splits():
    with pytest.raises(model.ConfigError, match="both"):
        _cfg(train_songs=["Hydrogen", "Caesium"])


def test_missing_data_folder_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("TFSWA_SHARED_DATA", raising=False)
    with pytest.raises(DataError, match="no shared data folder"):
        find_data_root(tmp_path / "nowhere")
    with pytest.raises(DataError, match="real-vocals"):
        build_source(f"real-vocals:{tmp_path}", "train", DataConfig(), SR, 0)


def test_valid_excerpt_selection_picks_the_sung_windows(tmp_path):
    # 30 s: singing (a tone) only in 4-10 s and 20-27 s; two 5 s excerpts must land inside those spans.
    t = np.arange(30 * SR) / SR
    x = 0.2 * np.sin(2 * np.pi * 220 * t) * (((t >= 4) & (t < 10)) | ((t >= 20) & (t < 27)))
    sf.write(tmp_path / "v.flac", np.stack([x, x], 1), SR)
    starts = valid_excerpt_starts(tmp_path / "v.flac", 5.0, 2, -30.0)
    assert len(starts) == 2
    assert 4.0 <= starts[0] <= 5.0 and 20.0 <= starts[1] <= 22.0, starts


# -- with the shared data ----------------------------------------------------------------------------
def _songs_cfg() -> dict:
    c = model.load_config()["songs"]
    c["soundfonts"] = {k: v for k, v in c["soundfonts"].items() if k.endswith(".sf2")}
    return c


@pytest.mark.parametrize("kind", ["own", "real", "songs"])
def test_tracks_are_deterministic_exact_sums_and_limited(root, kind):
    cfg = _cfg(track_seconds=2.0, accompaniment={"songs": 0.0, "real": 0.0, "own": 0.0, kind: 1.0},
               pitch_shift_probability=1.0, stretch_probability=1.0, solo_share=0.0)
    a = RealVocalTracks(root, seed=3, sample_rate=SR, cfg=cfg, songs_config=_songs_cfg())
    b = RealVocalTracks(root, seed=3, sample_rate=SR, cfg=cfg, songs_config=_songs_cfg())
    x = a.read(5, ["vocals", "accompaniment"], 0, 2 * SR)
    a.read(6, ["vocals"], 0, SR)  # another track in between: no state leaks
    np.testing.assert_array_equal(b.read(5, ["vocals", "accompaniment"], 0, 2 * SR), x)
    assert x.shape == (2, 2, 2 * SR) and x.dtype == np.float32 and np.isfinite(x).all()
    mix = x.sum(0)
    assert np.abs(mix).max() <= cfg.limiter_ceiling[1] + 1e-4
    rms = np.sqrt((x ** 2).mean(axis=(1, 2)))
    assert rms[0] > 1e-3 and rms[1] > 1e-3, rms  # a sung excerpt over a sounding accompaniment
    assert not np.array_equal(a.read(7, ["vocals"], 0, SR), x[:1, :, :SR])


def test_solo_clip_gets_a_stereo_vocal_chain(root):
    cfg = _cfg(track_seconds=2.0, solo_share=1.0, accompaniment={"songs": 0.0, "real": 1.0, "own": 0.0})
    x = RealVocalTracks(root, seed=0, sample_rate=SR, cfg=cfg).read(0, ["vocals"], 0, 2 * SR)[0]
    assert np.sqrt((x ** 2).mean()) > 1e-3
    assert not np.allclose(x[0], x[1])  # reverb / pan: not a dual-mono copy


def test_data_specs_train_and_validate_on_the_right_songs(root):
    tr = build_source("real-vocals", "train", DataConfig(), SR, 0)
    assert isinstance(tr, RealVocalTracks) and tr.stems == ("vocals", "accompaniment")
    used = {c.vocals.parent.name for c in tr.library.songs}
    assert used == {"Hydrogen", "Lithium", "Sodium", "Potassium", "Rubidium"}
    assert build_source("eif-valid", "train", DataConfig(), SR, 0) is None
    va = build_source(f"eif-valid:{root}", "valid", DataConfig(), SR, 0)
    assert isinstance(va, RealValidTracks) and len(va) == 16
    assert {va.track_name(i).split("@")[0] for i in range(len(va))} == {"Caesium", "Francium"}
    seg = va.read(0, ["vocals", "accompaniment"], 0, 3 * SR)
    assert np.sqrt((seg[0] ** 2).mean()) > 1e-3  # the excerpts are where vocals sound
    tail = va.read(0, ["vocals"], va.length - SR, 2 * SR)
    assert not tail[0, :, SR:].any()  # nothing past the excerpt's end


def test_only_validating_specs_are_refused_for_training(root):
    from training.config import AugmentConfig
    from training.data import build_datasets

    with pytest.raises(DataError, match="only validate"):
        build_datasets(["eif-valid"], ("vocals", "accompaniment"), {}, sample_rate=SR, segment=SR,
                       valid_segment=SR, augment=AugmentConfig(), data_cfg=DataConfig(), seed=0, per_track=1,
                       frames=(10, 10), n_freq=10)
