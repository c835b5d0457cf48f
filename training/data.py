"""Training data: sources of stems, random augmented segments, fixed validation segments.

A *source* is a list of tracks, each a set of base stems (e.g. drums, bass, other, vocals) whose sum
is the mixture. `--data` specs name sources:

    musdb:/path/to/musdb18       MUSDB18 .stem.mp4 via musdb/stempeg (official train/valid split)
    musdb-hq:/path/to/musdb18hq  MUSDB18-HQ wav folders (is_wav=True), same split
    folder:/path                 <track>/<stem>.(wav|flac); train/ and valid/ subfolders if present,
                                 otherwise the last `valid_fraction` of the tracks (sorted) validate
    synthetic                    generated stems (training.synthetic): tests and smoke runs only
    songs                        realistic rendered songs (training.songs.SongSource), rendered on the fly
    real-vocals[:/path]          real vocals of ../shared/data over rendered / real accompaniment; validates on
                                 the eif validation songs (training.real_vocals)
    eif-valid[:/path]            validation only: the eif validation songs (real mixtures)

A training item is a pure function of (seed, key): the trainer asks for key = step * B * W + rank * B + i,
so data order and augmentation do not depend on workers, global RNG or where a run was resumed.
Shapes: mixture (C, N), targets (S, C, N) with C = 2, plus feature masks over frames (T,) and bins (F,).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from . import synthetic
from .cache import ShardCache, cache_root, source_hash
from .config import AugmentConfig, CacheConfig, DataConfig
from .device import cpu_cores
from .synthetic import STEMS as SYNTHETIC_STEMS
from .synthetic import synthetic_stem
from .tracks import DataError, Source, fit, to_stereo

AUDIO_SUFFIXES = (".wav", ".flac")
MUSDB_STEMS = ("drums", "bass", "other", "vocals")


def read_audio(path: Path, start: int, n: int, sample_rate: int) -> np.ndarray:
    """Samples [start, start + n) at `sample_rate` of an audio file (resampled if needed) -> (2, n) float32."""
    info = sf.info(str(path))
    if info.samplerate == sample_rate:
        x = sf.read(str(path), start=start, frames=n, dtype="float32", always_2d=True)[0].T
        return fit(to_stereo(x), n)
    import soxr

    ratio = info.samplerate / sample_rate
    a = math.floor(start * ratio)
    x = sf.read(str(path), start=a, frames=math.ceil(n * ratio) + 64, dtype="float32", always_2d=True)[0]
    y = soxr.resample(x, info.samplerate, sample_rate) if len(x) else x
    return fit(to_stereo(np.ascontiguousarray(y.T, dtype=np.float32)), n)


class FileTracks(Source):
    """Tracks given as {stem: audio file}; files may have another rate (resampled on reading)."""

    def __init__(self, name: str, tracks: list[tuple[str, dict[str, Path]]], sample_rate: int):
        self.name = name
        self.sample_rate = sample_rate
        self.tracks = tracks
        common = set.intersection(*(set(files) for _, files in tracks)) if tracks else set()
        order = {s: i for i, s in enumerate(MUSDB_STEMS)}
        self.stems = tuple(sorted(common - {"mixture"}, key=lambda s: (order.get(s, len(order)), s)))
        self._lengths: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.tracks)

    def track_name(self, i: int) -> str:
        return self.tracks[i][0]

    def track_length(self, i: int) -> int:
        if i not in self._lengths:
            infos = [sf.info(str(self.tracks[i][1][s])) for s in self.stems]
            self._lengths[i] = min(int(x.frames * self.sample_rate / x.samplerate) for x in infos)
        return self._lengths[i]

    def read(self, i: int, stems: list[str], start: int, n: int) -> np.ndarray:
        files = self.tracks[i][1]
        return np.stack([read_audio(files[s], start, n, self.sample_rate) for s in stems])


class MusdbStemTracks(Source):
    """MUSDB18 .stem.mp4 tracks decoded with stempeg (ffmpeg), only the requested excerpt."""

    def __init__(self, name: str, tracks: list, sample_rate: int):
        self.name = name
        self.tracks = tracks
        self.sample_rate = sample_rate
        self.stems = MUSDB_STEMS

    def __len__(self) -> int:
        return len(self.tracks)

    def track_name(self, i: int) -> str:
        return self.tracks[i].name

    def track_length(self, i: int) -> int:
        t = self.tracks[i]
        return int(t.duration * self.sample_rate)

    def read(self, i: int, stems: list[str], start: int, n: int) -> np.ndarray:
        import stempeg

        t = self.tracks[i]
        ids = [t.sources[s].stem_id for s in stems]
        audio, _ = stempeg.read_stems(t.path, start=start / self.sample_rate, duration=n / self.sample_rate,
                                      stem_id=ids, sample_rate=self.sample_rate, info=t.info, ffmpeg_format="f32le")
        audio = np.asarray(audio, dtype=np.float32).reshape(len(ids), -1, audio.shape[-1])
        return np.stack([fit(to_stereo(a.T), n) for a in audio])


class SyntheticTracks(Source):
    """Generated stems (training.synthetic). A track is a row of independent 1 s blocks, each a pure
    function of (seed, split, track, block, stem), so any excerpt is cheap and always the same."""

    def __init__(self, n_tracks: int, seed: int, split: str, sample_rate: int, seconds: float = 30.0):
        self.name = f"synthetic/{split}"
        self.n_tracks = n_tracks
        self.seed = seed
        self.split_id = 0 if split == "train" else 1
        self.sample_rate = sample_rate
        self.stems = SYNTHETIC_STEMS
        self.length = max(1, int(seconds * sample_rate))

    def __len__(self) -> int:
        return self.n_tracks

    def track_length(self, i: int) -> int:
        return self.length

    def read(self, i: int, stems: list[str], start: int, n: int) -> np.ndarray:
        block = self.sample_rate
        first, last = start // block, (start + n - 1) // block
        out = np.zeros((len(stems), 2, (last - first + 1) * block), np.float32)
        for j, s in enumerate(stems):
            for b in range(first, last + 1):
                seed = [self.seed, self.split_id, i, b, self.stems.index(s)]
                out[j, :, (b - first) * block:(b - first + 1) * block] = synthetic_stem(s, block, self.sample_rate, seed)
        end = min(start + n, self.length) - first * block
        return fit(out[..., start - first * block:max(end, start - first * block)], n)


class CachedTracks(Source):
    """Tracks of a generated source read from its shard cache (`training.cache`): random crops are a
    memory-mapped copy, so a step's data cost microseconds instead of a render."""

    def __init__(self, name: str, cache: ShardCache, n_tracks: int, sample_rate: int,
                 names: Callable[[int], str] | None = None):
        self.name = name
        self.cache = cache
        self.n_tracks = n_tracks
        self.sample_rate = sample_rate
        self.stems = cache.stems
        self._names = names

    def __len__(self) -> int:
        return self.n_tracks

    def track_name(self, i: int) -> str:
        return self._names(i) if self._names else super().track_name(i)

    def track_length(self, i: int) -> int:
        return self.cache.length

    def read(self, i: int, stems: list[str], start: int, n: int) -> np.ndarray:
        return self.cache.read(i, [self.stems.index(s) for s in stems], start, n)


class SongTracks(Source):
    """Realistic rendered songs from `training.songs.SongSource`, rendered on demand (a few cached per worker)."""

    def __init__(self, indices: list[int], seed: int, sample_rate: int, seconds: float, split: str, cache: int = 2):
        try:
            from .songs import SongSource
        except ImportError as e:
            raise DataError(f"--data songs needs training.songs.SongSource, which is not importable here ({e})") from None
        self.name = f"songs/{split}"
        self.source = SongSource(seed=seed, sample_rate=sample_rate, seconds=seconds, config=None)
        self.indices = indices
        self.sample_rate = sample_rate
        self.stems = MUSDB_STEMS
        self.length = int(seconds * sample_rate)
        self._cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._cache_size = cache

    def __len__(self) -> int:
        return len(self.indices)

    def track_name(self, i: int) -> str:
        return f"song {self.indices[i]}"

    def track_length(self, i: int) -> int:
        return self.length

    def _song(self, i: int) -> dict[str, np.ndarray]:
        idx = self.indices[i]
        if idx not in self._cache:
            self._cache[idx] = self.source.song(idx)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(idx)
        return self._cache[idx]

    def read(self, i: int, stems: list[str], start: int, n: int) -> np.ndarray:
        song = self._song(i)
        return np.stack([fit(to_stereo(np.asarray(song[s], dtype=np.float32))[:, start:start + n], n) for s in stems])

    def __getstate__(self) -> dict:  # workers start with an empty cache
        d = dict(self.__dict__)
        d["_cache"] = OrderedDict()
        return d


# ------------------------------------------------------------------------------------------------
# --data specs -> sources

def _folder_tracks(root: Path) -> list[tuple[str, dict[str, Path]]]:
    tracks = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        files = {f.stem: f for f in sorted(d.iterdir()) if f.suffix.lower() in AUDIO_SUFFIXES}
        if files:
            tracks.append((d.name, files))
    return tracks


def folder_sources(root: Path, split: str, valid_fraction: float, sample_rate: int) -> Source:
    if not root.is_dir():
        raise DataError(f"--data folder:{root}: expected a folder of <track>/<stem>.wav|flac, but it does not exist")
    if (root / "train").is_dir() and (root / "valid").is_dir():
        tracks = _folder_tracks(root / split)
    else:
        tracks = _folder_tracks(root)
        n_valid = min(len(tracks) - 1, max(1, round(valid_fraction * len(tracks)))) if len(tracks) > 1 else 0
        if n_valid == 0 and split == "valid" and tracks:
            warnings.warn(f"folder:{root} has a single track: validating on the training track", stacklevel=2)
        else:
            tracks = tracks[len(tracks) - n_valid:] if split == "valid" else tracks[:len(tracks) - n_valid]
    if not tracks:
        raise DataError(f"--data folder:{root}: no tracks for split {split!r} (expected <track>/<stem>.wav|flac files)")
    return FileTracks(f"folder:{root}/{split}", tracks, sample_rate)


def musdb_sources(root: Path, split: str, is_wav: bool, sample_rate: int) -> Source:
    scheme = "musdb-hq" if is_wav else "musdb"
    if not (root / "train").is_dir():
        raise DataError(f"--data {scheme}:{root}: expected a MUSDB18{'-HQ' if is_wav else ''} folder with train/ and test/, "
                        "but there is no train/ folder")
    import musdb

    try:
        db = musdb.DB(root=str(root), subsets="train", split=split, is_wav=is_wav, download=False)
    except Exception as e:  # noqa: BLE001 - musdb raises bare RuntimeError / OSError / yaml errors on a broken layout
        raise DataError(f"--data {scheme}:{root}: musdb could not read it ({type(e).__name__}: {e})") from None
    if len(db) == 0:
        raise DataError(f"--data {scheme}:{root}: no {split} tracks found "
                        f"(expected train/<track>/{'<stem>.wav' if is_wav else '.stem.mp4 files'})")
    if is_wav:
        tracks = [(t.name, {"mixture": Path(t.path), **{s: Path(t.sources[s].path) for s in MUSDB_STEMS}})
                  for t in db.tracks]
        return FileTracks(f"{scheme}:{root}/{split}", tracks, sample_rate)
    return MusdbStemTracks(f"{scheme}:{root}/{split}", list(db.tracks), sample_rate)


def build_source(spec: str, split: str, data_cfg: DataConfig, sample_rate: int, seed: int,
                 progress: bool = True) -> Source | None:
    """One `--data` spec and split ('train' | 'valid') -> Source (None: the spec only validates).

    Generated sources (synthetic, songs) come from the shard cache when `data_cfg.cache.enabled`;
    what is missing from it is rendered first (with a progress bar unless `progress` is False)."""
    scheme, _, path = spec.partition(":")
    if scheme == "synthetic":
        n = data_cfg.synthetic_tracks if split == "train" else data_cfg.synthetic_valid
        source = SyntheticTracks(n, seed, split, sample_rate, data_cfg.synthetic_seconds)
        return cached_synthetic(source, data_cfg.cache, progress) if data_cfg.cache.enabled else source
    if scheme == "songs":
        from_songs = _song_indices(split, data_cfg, seed, sample_rate)
        if data_cfg.cache.enabled:
            return cached_songs(from_songs, split, seed, sample_rate, data_cfg, progress)
        return SongTracks(from_songs, seed, sample_rate, data_cfg.songs_seconds, split)
    if scheme in ("real-vocals", "eif-valid"):  # real vocals of ../shared/data (training/real_vocals.py)
        from .real_vocals import build_real_source

        source = build_real_source(scheme, path, split, sample_rate, seed, data_cfg.songs_valid)
        if split == "train" and source is not None and data_cfg.cache.enabled and data_cfg.cache.real_vocals > 0:
            return cached_real_vocals(source, data_cfg.cache, progress)
        return source
    if scheme in ("musdb", "musdb-hq", "folder"):
        if not path:
            raise DataError(f"--data {spec!r}: expected {scheme}:/path/to/dataset")
        root = Path(path).expanduser()
        if not root.is_dir():
            raise DataError(f"--data {spec!r}: dataset folder {root} does not exist")
        if scheme == "folder":
            return folder_sources(root, split, data_cfg.valid_fraction, sample_rate)
        return musdb_sources(root, split, scheme == "musdb-hq", sample_rate)
    raise DataError(f"--data {spec!r}: expected musdb:PATH, musdb-hq:PATH, folder:PATH, synthetic, songs, "
                    "real-vocals[:PATH] or eif-valid[:PATH]")


def _song_indices(split: str, data_cfg: DataConfig, seed: int, sample_rate: int) -> list[int]:
    try:
        from .songs import SongSource
    except ImportError as e:
        raise DataError(f"--data songs needs training.songs.SongSource, which is not importable here ({e})") from None
    total = len(SongSource(seed=seed, sample_rate=sample_rate, seconds=data_cfg.songs_seconds, config=None))
    n_valid = min(data_cfg.songs_valid, max(total - 1, 0))
    return list(range(total - n_valid, total)) if split == "valid" else list(range(total - n_valid))


# ------------------------------------------------------------------------------------------------
# generated sources through the shard cache

def _render_synthetic(track: int, source: SyntheticTracks) -> np.ndarray:
    return source.read(track, list(source.stems), 0, source.length)


def cached_synthetic(source: SyntheticTracks, cfg: CacheConfig, progress: bool = True) -> CachedTracks:
    """The synthetic tracks of `source`, rendered once into the shard cache."""
    split = "train" if source.split_id == 0 else "valid"
    key = {"seed": source.seed, "sample_rate": source.sample_rate, "code": source_hash(Path(synthetic.__file__))}
    cache = ShardCache(cache_root(cfg.dir), "synthetic", split, key, source.stems, source.length,
                       cfg.tracks_per_shard, cfg.dtype)
    cache.ensure(len(source), functools.partial(_render_synthetic, source=source), jobs=_jobs(cfg),
                 progress=progress, what="synthetic tracks")
    return CachedTracks(source.name, cache, len(source), source.sample_rate)


_SONGS = None  # the SongSource of a render worker process


def _init_song_worker(seed: int, sample_rate: int, seconds: float) -> None:
    global _SONGS
    from .songs import SongSource

    _SONGS = SongSource(seed=seed, sample_rate=sample_rate, seconds=seconds, config=None)


def _render_song(track: int, first: int) -> np.ndarray:
    assert _SONGS is not None, "song render worker not initialised"
    song = _SONGS.song(first + track)
    return np.stack([to_stereo(np.asarray(song[s], dtype=np.float32)) for s in MUSDB_STEMS])


def cached_songs(indices: list[int], split: str, seed: int, sample_rate: int, data_cfg: DataConfig,
                 progress: bool = True) -> CachedTracks:
    """Rendered songs from the shard cache: `training.data.cache.songs` training songs (the first
    indices) or the held-out validation songs; rendered in `cache.jobs` processes when missing."""
    from . import songs as songs_pkg
    from .songs.settings import SongsConfig

    cfg = data_cfg.cache
    count = min(len(indices), cfg.songs) if split == "train" else len(indices)
    first = indices[0]
    assert indices[:count] == list(range(first, first + count)), "song indices of a split are contiguous"
    code = source_hash(*Path(songs_pkg.__file__).parent.glob("*.py"))
    settings = json.loads(json.dumps(dataclasses.asdict(SongsConfig.from_dict(None)), default=list))
    key = {"seed": seed, "sample_rate": sample_rate, "first": first, "code": code, "settings": settings}
    length = round(data_cfg.songs_seconds * sample_rate)
    cache = ShardCache(cache_root(cfg.dir), "songs", split, key, MUSDB_STEMS, length, cfg.tracks_per_shard, cfg.dtype)
    init = functools.partial(_init_song_worker, seed, sample_rate, data_cfg.songs_seconds)
    cache.ensure(count, functools.partial(_render_song, first=first), jobs=_jobs(cfg), init=init,
                 progress=progress, what="songs")
    return CachedTracks(f"songs/{split}", cache, count, sample_rate, names=lambda i: f"song {first + i}")


def _real_vocals_code() -> str:
    """Hash of the code a virtual real-vocals track depends on: its module, the song engine and any
    training module named for vocal effects or accompaniment."""
    here = Path(__file__).parent
    files = [here / "real_vocals.py", *(here / "songs").glob("*.py"), *here.glob("vocal*.py"), *here.glob("*accompaniment*.py")]
    return source_hash(*[f for f in files if f.is_file()])


def _render_real_vocals(track: int, source) -> np.ndarray:
    return source.read(track, list(source.stems), 0, source.length)


def cached_real_vocals(source, cfg: CacheConfig, progress: bool = True) -> CachedTracks:
    """The first `cache.real_vocals` virtual tracks of a `real-vocals` training source, rendered once into the
    shard cache (a track costs seconds of CPU to make, a crop of it microseconds to read). The key covers the
    code, the `real_vocals` settings, the seed, the rate and the data files (name, size, mtime)."""
    files = sorted(source.data_files())  # (stable name, path) of every file it reads, fetched caches included
    data = _digest([f"{name}:{p.stat().st_size}:{int(p.stat().st_mtime)}" for name, p in files])
    settings = json.loads(json.dumps(dataclasses.asdict(source.cfg), default=list))
    key = {"seed": source.seed, "sample_rate": source.sample_rate, "code": _real_vocals_code(),
           "settings": settings, "data": data}
    cache = ShardCache(cache_root(cfg.dir), "real-vocals", "train", key, tuple(source.stems), source.length,
                       cfg.tracks_per_shard, cfg.dtype)
    count = min(cfg.real_vocals, len(source))
    cache.ensure(count, functools.partial(_render_real_vocals, source=source), jobs=_jobs(cfg), progress=progress,
                 what="real-vocals tracks")
    return CachedTracks(f"real-vocals/train (cached {count})", cache, count, source.sample_rate,
                        names=lambda i: f"real-vocals #{i}")


def _digest(lines: list[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def _jobs(cfg: CacheConfig) -> int:
    return cfg.jobs if cfg.jobs > 0 else cpu_cores()


@dataclass(frozen=True)
class StemPlan:
    """How to make the model's target stems from a source's base stems (sums of base stems)."""

    targets: tuple[str, ...]
    recipe: tuple[tuple[int, ...], ...]  # per target: indices into the source's stems


def stem_plan(source: Source, targets: tuple[str, ...], merges: dict[str, list[str]]) -> StemPlan:
    recipe = []
    for t in targets:
        parts = [t] if t in source.stems else merges.get(t)
        if not parts or any(p not in source.stems for p in parts):
            have = ", ".join(source.stems) or "none"
            known = ", ".join(k + "=" + "+".join(v) for k, v in merges.items()) or "none"
            raise DataError(f"stem {t!r} is not in dataset {source.name} (it has: {have}; merges from config: {known})")
        recipe.append(tuple(source.stems.index(p) for p in parts))
    return StemPlan(targets, tuple(recipe))


# ------------------------------------------------------------------------------------------------
# datasets

def _targets(stems: np.ndarray, plan: StemPlan) -> np.ndarray:
    return np.stack([stems[list(idx)].sum(0) for idx in plan.recipe])


def _ones_masks(n_frames: int, n_freq: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.ones(n_frames), torch.ones(n_freq)


class _StemSegments(Dataset):
    """What training and validation segments share: the sources (none of them empty), each one's stem plan for
    `targets`, the segment length and the feature geometry (T frames, F bins) their masks have."""

    def __init__(self, role: str, sources: list[Source], targets: tuple[str, ...], merges: dict[str, list[str]],
                 segment: int, n_frames: int, n_freq: int):
        if not sources or any(len(s) == 0 for s in sources):
            raise DataError(f"the {role} set is empty (no tracks in " + ", ".join(s.name for s in sources) + ")")
        self.sources = sources
        self.plans = [stem_plan(s, targets, merges) for s in sources]
        self.segment = segment
        self.n_frames = n_frames
        self.n_freq = n_freq


class TrainSegments(_StemSegments):
    """Random augmented segments; item `key` is a pure function of (seed, key).

    Returns (mixture (2, N), targets (S, 2, N), time mask (T,), freq mask (F,)) float32 tensors and
    the tracks its stems came from (K,) int64 (numbered across sources, -1 pads): the masks multiply the
    network's input features (SpecAugment-style frequency / time masking); the tracks let a run count
    the distinct tracks it has seen (`n_tracks` in all)."""

    def __init__(self, sources: list[Source], targets: tuple[str, ...], merges: dict[str, list[str]],
                 segment: int, augment: AugmentConfig, seed: int, n_frames: int, n_freq: int):
        super().__init__("training", sources, targets, merges, segment, n_frames, n_freq)
        self.aug = augment
        self.seed = seed
        self.offsets = np.cumsum([0] + [len(s) for s in sources]).tolist()
        self.n_tracks = self.offsets[-1]
        self.max_stems = max(len(s.stems) for s in sources)

    def __len__(self) -> int:
        return 2 ** 62  # keys are unbounded; the trainer's batch sampler picks them

    def __getitem__(self, key: int):
        rng = np.random.default_rng([self.seed, int(key)])
        for _ in range(10):
            stems, plan, tracks = self._draw(rng)
            target = _targets(stems, plan)
            if self.aug.silent_min_rms <= 0 or np.sqrt((target ** 2).mean(axis=(1, 2))).max() >= self.aug.silent_min_rms:
                break
        mix = stems.sum(0)
        tmask, fmask = self._feature_masks(rng)
        ids = torch.full((self.max_stems,), -1, dtype=torch.int64)
        ids[:len(tracks)] = torch.tensor(tracks, dtype=torch.int64)
        return torch.from_numpy(mix), torch.from_numpy(target), tmask, fmask, ids

    def _draw(self, rng: np.random.Generator) -> tuple[np.ndarray, StemPlan, list[int]]:
        a = self.aug
        k = int(rng.integers(len(self.sources)))
        src, plan = self.sources[k], self.plans[k]
        stretch = rng.uniform(*a.stretch_range) if rng.random() < a.time_stretch else 1.0
        semis = rng.uniform(*a.semitones) if rng.random() < a.pitch_shift else 0.0
        need = self.segment if stretch == 1.0 and semis == 0.0 else math.ceil(self.segment * stretch) + 4096

        def place(track: int) -> tuple[int, int]:
            return track, int(rng.integers(0, max(1, src.track_length(track) - need)))

        home = place(int(rng.integers(len(src))))
        where = [place(int(rng.integers(len(src)))) if rng.random() < a.remix else home for _ in src.stems]
        stems = np.zeros((len(src.stems), 2, need), np.float32)
        for w in dict.fromkeys(where):  # one read per (track, start): aligned stems of a track come together
            idx = [i for i, x in enumerate(where) if x == w]
            stems[idx] = src.read(w[0], [src.stems[i] for i in idx], w[1], need)
        if need != self.segment:
            stems = _stretch(stems, src.sample_rate, stretch, semis, self.segment)
        if a.gain_db is not None:
            stems *= (10 ** (rng.uniform(*a.gain_db, size=len(stems)) / 20)).astype(np.float32)[:, None, None]
        swap = rng.random(len(stems)) < a.channel_swap
        stems[swap] = stems[swap, ::-1]
        return np.ascontiguousarray(stems), plan, [self.offsets[k] + t for t, _ in where]

    def _feature_masks(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.aug
        tmask, fmask = _ones_masks(self.n_frames, self.n_freq)
        for mask, p, frac in ((tmask, a.time_mask, a.time_mask_frames), (fmask, a.freq_mask, a.freq_mask_bins)):
            if rng.random() < p:
                width = int(rng.integers(1, max(2, int(frac * len(mask)) + 1)))
                start = int(rng.integers(0, max(1, len(mask) - width)))
                mask[start:start + width] = 0
        return tmask, fmask


def _stretch(stems: np.ndarray, sr: int, stretch: float, semitones: float, n: int) -> np.ndarray:
    """Time-stretch (factor > 1: faster) and pitch-shift each stem alike with Rubber Band (pedalboard)."""
    from pedalboard import time_stretch

    out = np.stack([time_stretch(s, sr, stretch_factor=stretch, pitch_shift_in_semitones=float(semitones))
                    for s in stems])
    return fit(out.astype(np.float32), n)


class ValidSegments(_StemSegments):
    """Fixed, unaugmented validation segments: `per_track` evenly spaced excerpts of every track."""

    def __init__(self, sources: list[Source], targets: tuple[str, ...], merges: dict[str, list[str]],
                 segment: int, per_track: int, n_frames: int, n_freq: int):
        super().__init__("validation", sources, targets, merges, segment, n_frames, n_freq)
        self.items: list[tuple[int, int, int]] = []
        for k, src in enumerate(sources):
            for i in range(len(src)):
                room = max(0, src.track_length(i) - segment)
                count = per_track if room > 0 else 1
                self.items += [(k, i, room * (j + 1) // (count + 1)) for j in range(count)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        k, i, start = self.items[index]
        src = self.sources[k]
        stems = src.read(i, list(src.stems), start, self.segment)
        tmask, fmask = _ones_masks(self.n_frames, self.n_freq)
        return torch.from_numpy(stems.sum(0)), torch.from_numpy(_targets(stems, self.plans[k])), tmask, fmask


def build_datasets(specs: list[str], targets: tuple[str, ...], merges: dict[str, list[str]], *,
                   sample_rate: int, segment: int, valid_segment: int, augment: AugmentConfig, data_cfg: DataConfig,
                   seed: int, per_track: int, frames: tuple[int, int], n_freq: int,
                   progress: bool = True) -> tuple[TrainSegments, ValidSegments]:
    """`--data` specs -> (training set, validation set). `frames`: network frames of a train / valid segment."""
    if not specs:
        raise DataError("no --data given; expected musdb:PATH, musdb-hq:PATH, folder:PATH, synthetic or songs")
    train = [x for x in (build_source(s, "train", data_cfg, sample_rate, seed, progress) for s in specs)
             if x is not None]
    valid = [build_source(s, "valid", data_cfg, sample_rate, seed, progress) for s in specs]
    if not train:
        raise DataError(f"--data {' '.join(specs)}: these only validate; expected a training source too")
    return (TrainSegments(train, targets, merges, segment, augment, seed, frames[0], n_freq),
            ValidSegments(valid, targets, merges, valid_segment, per_track, frames[1], n_freq))


class StepBatches(torch.utils.data.Sampler):
    """Batches of item keys for steps [start, stop): rank r of W takes keys step*B*W + r*B + [0, B).

    Like DistributedSampler, every process sees a disjoint shard; unlike it, a step's keys do not
    depend on epochs or on where a run resumed, so resuming continues the exact same stream."""

    def __init__(self, start: int, stop: int, batch_size: int, rank: int = 0, world: int = 1):
        self.start, self.stop, self.batch, self.rank, self.world = start, stop, batch_size, rank, world

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self):
        for step in range(self.start, self.stop):
            base = (step * self.world + self.rank) * self.batch
            yield list(range(base, base + self.batch))
