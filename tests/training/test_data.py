"""Data pipeline: determinism, stems, folder / MUSDB18-HQ layouts, splits and clear errors."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import core
from training.config import AugmentConfig, CacheConfig, DataConfig
from training.data import DataError, StepBatches, TrainSegments, ValidSegments, build_source

SR = 44100
MERGES = {"accompaniment": ["drums", "bass", "other"]}
VOCALS_ACC = ("vocals", "accompaniment")


PLAIN = AugmentConfig()


def _train_set(sources, augment=PLAIN, targets=VOCALS_ACC, segment=4410, seed=0):
    return TrainSegments(sources, targets, MERGES, segment, augment, seed, n_frames=80, n_freq=128)


def _synthetic(split="train", n=3):
    return build_source("synthetic", split, DataConfig(synthetic_tracks=n, synthetic_valid=1, synthetic_seconds=3.0), SR, 0)


def test_items_are_a_pure_function_of_seed_and_key():
    aug = AugmentConfig(remix=0.5, gain_db=(-6, 3), channel_swap=0.5, freq_mask=0.5, time_mask=0.5)
    a, b = _train_set([_synthetic()], aug), _train_set([_synthetic()], aug)
    for key in (0, 7, 12345):
        for x, y in zip(a[key], b[key]):
            assert torch.equal(x, y)
    assert not torch.equal(a[0][0], a[1][0])
    assert not torch.equal(a[0][0], _train_set([_synthetic()], aug, seed=1)[0][0])


def test_shapes_and_mixture_is_sum_of_targets():
    mix, target, tmask, fmask, _ = _train_set([_synthetic()])[3]
    assert mix.shape == (2, 4410) and target.shape == (2, 2, 4410) and mix.dtype == torch.float32
    assert tmask.shape == (80,) and fmask.shape == (128,)
    assert torch.allclose(mix, target.sum(0), atol=1e-6)  # vocals + accompaniment cover every base stem
    assert target.abs().max() > 0


def test_single_target_keeps_the_full_mixture():
    mix, target, _, _, _ = _train_set([_synthetic()], targets=("vocals",))[3]
    assert target.shape == (1, 2, 4410)
    assert (mix - target[0]).abs().max() > 1e-3  # the mixture still holds drums, bass and other


def test_feature_masks_zero_a_band_when_enabled():
    aug = AugmentConfig(freq_mask=1.0, time_mask=1.0, freq_mask_bins=0.2, time_mask_frames=0.2)
    _, _, tmask, fmask, _ = _train_set([_synthetic()], aug)[0]
    assert 0 < (tmask == 0).sum() <= 16 and 0 < (fmask == 0).sum() <= 25
    _, _, tmask, fmask, _ = _train_set([_synthetic()], AugmentConfig())[0]
    assert tmask.min() == 1 and fmask.min() == 1


def test_time_stretch_and_pitch_shift_keep_the_segment_length():
    aug = AugmentConfig(remix=0.0, gain_db=None, channel_swap=0.0, time_stretch=1.0, pitch_shift=1.0)
    plain = AugmentConfig(remix=0.0, gain_db=None, channel_swap=0.0)
    mix = _train_set([_synthetic()], aug)[5][0]
    assert mix.shape == (2, 4410) and torch.isfinite(mix).all() and mix.abs().max() > 0
    assert not torch.allclose(mix, _train_set([_synthetic()], plain)[5][0], atol=1e-3)


def test_step_batches_shard_like_one_process_with_the_global_batch():
    one = list(StepBatches(3, 6, batch_size=4))
    two = [list(StepBatches(3, 6, batch_size=2, rank=r, world=2)) for r in (0, 1)]
    for step in range(3):
        assert sorted(two[0][step] + two[1][step]) == one[step]
    assert list(StepBatches(4, 6, 4)) == one[1:]  # resuming at step 4 continues the same stream


def _write_track(folder: Path, stems, n: int, rate: int, seed: int) -> None:
    folder.mkdir(parents=True)
    g = np.random.default_rng(seed)
    parts = {s: 0.1 * g.standard_normal((n, 2)).astype(np.float32) for s in stems}
    for s, x in parts.items():
        sf.write(folder / f"{s}.wav", x, rate)
    sf.write(folder / "mixture.wav", sum(parts.values()), rate)


def test_folder_source_resamples_and_splits(tmp_path):
    for i in range(4):
        _write_track(tmp_path / f"track{i}", ["vocals", "drums", "bass", "other"], 22050, 22050, i)
    cfg = DataConfig(valid_fraction=0.25)
    train, valid = (build_source(f"folder:{tmp_path}", s, cfg, SR, 0) for s in ("train", "valid"))
    assert len(train) == 3 and len(valid) == 1 and valid.track_name(0) == "track3"
    assert set(train.stems) == {"vocals", "drums", "bass", "other"}
    assert train.track_length(0) == SR  # one second at the model rate
    x = train.read(0, ["vocals"], 1000, 5000)
    assert x.shape == (1, 2, 5000) and np.abs(x).max() > 0
    items = ValidSegments([valid], VOCALS_ACC, MERGES, 4410, 2, 80, 128)
    assert len(items) == 2 and items[1][0].shape == (2, 4410)


def test_musdb_hq_layout_and_official_split(tmp_path):
    # 'Actions - One Minute Smile' is in musdb's official validation list; the others train.
    names = ["Actions - One Minute Smile", "A Classic Education - NightOwl", "Another - Track"]
    for i, name in enumerate(names):
        _write_track(tmp_path / "train" / name, ["vocals", "drums", "bass", "other"], 8000, SR, i)
    (tmp_path / "test").mkdir()
    cfg = DataConfig()
    train = build_source(f"musdb-hq:{tmp_path}", "train", cfg, SR, 0)
    valid = build_source(f"musdb-hq:{tmp_path}", "valid", cfg, SR, 0)
    assert sorted(train.track_name(i) for i in range(len(train))) == sorted(names[1:])
    assert [valid.track_name(i) for i in range(len(valid))] == names[:1]
    assert train.stems == ("drums", "bass", "other", "vocals")
    mix, target, _, _, _ = _train_set([train], AugmentConfig(remix=0.0, gain_db=None, channel_swap=0.0))[0]
    ref = sf.read(str(tmp_path / "train" / names[1] / "mixture.wav"), dtype="float32")[0].T
    assert torch.allclose(mix, target.sum(0), atol=1e-6)
    # the stems' sum is the mixture file, at some offset
    found = any(np.allclose(mix.numpy(), ref[:, o:o + 4410], atol=1e-4) for o in range(8000 - 4410))
    ref2 = sf.read(str(tmp_path / "train" / names[2] / "mixture.wav"), dtype="float32")[0].T
    found = found or any(np.allclose(mix.numpy(), ref2[:, o:o + 4410], atol=1e-4) for o in range(8000 - 4410))
    assert found


@pytest.mark.parametrize("spec,match", [
    ("folder:/nonexistent/x", "does not exist"),
    ("musdb:/nonexistent/x", "does not exist"),
    ("nonsense:/x", "expected musdb:PATH"),
    ("folder:", "expected folder:/path"),
])
def test_bad_specs_are_data_errors(spec, match):
    with pytest.raises(DataError, match=match):
        build_source(spec, "train", DataConfig(), SR, 0)


def test_empty_folder_and_missing_stem_are_data_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no tracks"):
        build_source(f"folder:{tmp_path / 'empty'}", "train", DataConfig(), SR, 0)
    _write_track(tmp_path / "two" / "a", ["vocals", "drums"], 4000, SR, 0)
    _write_track(tmp_path / "two" / "b", ["vocals", "drums"], 4000, SR, 1)
    src = build_source(f"folder:{tmp_path / 'two'}", "train", DataConfig(), SR, 0)
    with pytest.raises(DataError, match="'accompaniment' is not in dataset"):
        _train_set([src])
    assert isinstance(DataError("x"), core.UserError)


def test_songs_adapter_when_the_renderer_exists():
    pytest.importorskip("training.songs", reason="training.songs (song renderer) not present")
    songs = pytest.importorskip("training.songs")
    if not hasattr(songs, "SongSource"):
        pytest.skip("training.songs has no SongSource yet")
    live_cfg = DataConfig(songs_seconds=2.0, songs_valid=1, cache=CacheConfig(enabled=False))
    live = build_source("songs", "train", live_cfg, SR, 0)
    x = live.read(0, ["vocals", "drums"], 1000, 4410)
    assert x.shape == (2, 2, 4410) and np.isfinite(x).all()
    assert np.array_equal(x, build_source("songs", "train", live_cfg, SR, 0).read(0, ["vocals", "drums"], 1000, 4410))
    # through the shard cache (2 songs, float32 storage): the same audio, and a second build only reads it
    cached_cfg = dataclasses.replace(live_cfg, cache=CacheConfig(songs=2, dtype="float32", jobs=1))
    cached = build_source("songs", "train", cached_cfg, SR, 0, progress=False)
    assert len(cached) == 2 and cached.track_name(1) == "song 1"
    np.testing.assert_array_equal(cached.read(0, ["vocals", "drums"], 1000, 4410), x)
    assert not cached.cache.missing(2)


def test_augment_off_is_plain():
    off = dataclasses.replace(AugmentConfig()).off()
    assert off.remix == 0 and off.gain_db is None and off.channel_swap == 0
