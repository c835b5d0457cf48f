"""The shard cache of generated tracks: rendered once, read as crops, grown by what is missing, keyed by content."""
from __future__ import annotations

import json

import numpy as np
import pytest

from training.cache import CacheError, ShardCache, cache_root
from training.config import CacheConfig, DataConfig
from training.data import CachedTracks, SyntheticTracks, build_source

SR = 44100


def _source(n: int = 5) -> SyntheticTracks:
    return SyntheticTracks(n, seed=0, split="train", sample_rate=SR, seconds=0.5)


def _render(track: int) -> np.ndarray:
    src = _source(100)
    return src.read(track, list(src.stems), 0, src.length)


def _cache(root, **kw) -> ShardCache:
    args = {"key": {"seed": 0}, "stems": ("vocals", "drums", "bass", "other"), "length": round(0.5 * SR),
            "tracks_per_shard": 2, "dtype": "float32", **kw}
    return ShardCache(root, "synthetic", "train", args.pop("key"), **args)


def test_cached_synthetic_equals_the_generator(tmp_path, monkeypatch):
    monkeypatch.setenv("TFSWA_CACHE_DIR", str(tmp_path))
    cfg = DataConfig(synthetic_tracks=3, synthetic_valid=1, synthetic_seconds=0.5,
                     cache=CacheConfig(tracks_per_shard=2, dtype="float16", jobs=1))
    cached = build_source("synthetic", "train", cfg, SR, 0, progress=False)
    assert isinstance(cached, CachedTracks) and len(cached) == 3 and cached.track_length(0) == round(0.5 * SR)
    live = SyntheticTracks(3, 0, "train", SR, 0.5)
    for track in range(3):
        a = cached.read(track, ["other", "vocals"], 1000, 5000)
        b = live.read(track, ["other", "vocals"], 1000, 5000)
        assert a.dtype == np.float32 and a.shape == (2, 2, 5000)
        np.testing.assert_allclose(a, b, atol=1e-3, rtol=1e-3)   # float16 storage
    # past the end of a track: zeros, as the live source gives
    assert np.array_equal(cached.read(0, ["bass"], cached.track_length(0) - 10, 20)[..., 10:], np.zeros((1, 2, 10)))
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert [f.split("-")[:2] for f in folders] == [["synthetic", "train"]]
    assert len(list((tmp_path / folders[0]).glob("shard-*.npy"))) == 2  # 3 tracks, 2 per shard


def test_growing_renders_only_what_is_missing(tmp_path):
    calls = []

    def render(track):
        calls.append(track)
        return _render(track)

    cache = _cache(tmp_path)
    cache.ensure(3, render, progress=False)
    assert calls == [0, 1, 2] and cache.missing(3) == []
    first = cache.shard_path(0).stat().st_mtime_ns
    calls.clear()
    cache.ensure(5, render, progress=False)       # shard 1 held 1 track and now needs 2; shard 2 is new
    assert calls == [2, 3, 4] and cache.shard_path(0).stat().st_mtime_ns == first
    calls.clear()
    _cache(tmp_path).ensure(5, render, progress=False)  # another process: nothing to do
    assert calls == []
    np.testing.assert_array_equal(cache.read(3, [1, 0], 0, 100), _render(3)[[1, 0], :, :100])
    manifest = json.loads((cache.folder / "manifest.json").read_text())
    assert manifest["kind"] == "synthetic" and manifest["tracks_per_shard"] == 2
    assert not list(cache.folder.glob("*.tmp*"))


def test_a_damaged_shard_is_rendered_again(tmp_path):
    cache = _cache(tmp_path)
    cache.ensure(2, _render, progress=False)
    cache.shard_path(0).write_bytes(b"garbage")
    assert cache.missing(2) == [0]
    cache.ensure(2, _render, progress=False)
    np.testing.assert_array_equal(cache.read(1, [0], 0, 50), _render(1)[[0], :, :50])


def test_the_key_separates_caches(tmp_path):
    a, b, c = _cache(tmp_path), _cache(tmp_path, key={"seed": 1}), _cache(tmp_path, dtype="float16")
    assert len({a.folder, b.folder, c.folder}) == 3
    with pytest.raises(CacheError, match="float16 or float32"):
        _cache(tmp_path, dtype="int8")


def test_cache_root_env_and_unwritable_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("TFSWA_CACHE_DIR", raising=False)
    assert cache_root("~/x") == cache_root("$HOME/x")
    monkeypatch.setenv("TFSWA_CACHE_DIR", str(tmp_path / "c"))
    assert cache_root("~/x") == tmp_path / "c"
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CacheError, match="cannot create"):
        _cache(blocker).ensure(1, _render, progress=False)


def test_render_cli_fills_the_cache_a_run_reads(tmp_path, monkeypatch, make_config, capsys):
    from training.render import main

    monkeypatch.setenv("TFSWA_CACHE_DIR", str(tmp_path / "cache"))
    config = make_config(**{"data.synthetic_seconds": 0.5})
    assert main(["--data", "synthetic", "--config", str(config), "--no-progress", "--jobs", "1"]) == 0
    assert "synthetic: 4 training + 1 validation tracks" in capsys.readouterr().out
    shards = sorted((tmp_path / "cache").glob("synthetic-*/shard-*.npy"))
    stamps = [p.stat().st_mtime_ns for p in shards]
    cfg = DataConfig(synthetic_tracks=4, synthetic_valid=1, synthetic_seconds=0.5)
    src = build_source("synthetic", "train", cfg, SR, 0, progress=False)
    assert len(src) == 4 and [p.stat().st_mtime_ns for p in shards] == stamps   # read, not rendered again
    with pytest.raises(SystemExit):
        main(["--n", "2"])  # neither --out nor --data
