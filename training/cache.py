"""On-disk shard cache of generated training tracks (rendered songs, synthetic stems).

Generating a track costs far more than training on a crop of it, so generated sources are rendered
once into shards and training reads random crops from them (memory-mapped, a copy of the crop only):

    <root>/<kind>-<split>-<key hash>/manifest.json       what the shards hold (the key, stems, length)
    <root>/<kind>-<split>-<key hash>/shard-00000.npy     (tracks, stems, 2, samples) float16 | float32

Shard i holds tracks [i * tracks_per_shard, ...). A shard file appears only complete (written under a
temporary name, then renamed); a cache that needs more tracks renders only what is missing. The key
covers everything the audio depends on: the generator's source code, its settings, seed, sample
rate, length and storage dtype, so a changed generator never reads stale audio. Several processes
(torchrun ranks) share one cache: a file lock lets one render while the others wait.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import UserError

CACHE_ENV = "TFSWA_CACHE_DIR"   # overrides training.data.cache.dir (tests point it at a temporary folder)
DTYPES = {"float16": np.float16, "float32": np.float32}


class CacheError(UserError):
    """The cache folder cannot be used (not writable, foreign files, disk full)."""


def cache_root(configured: str) -> Path:
    """The cache folder: $TFSWA_CACHE_DIR if set, else the configured one (~ and $VARS expanded)."""
    return Path(os.path.expandvars(os.environ.get(CACHE_ENV) or configured)).expanduser()


def source_hash(*paths: Path) -> str:
    """Hash of source files (a generator's code is part of what its audio depends on)."""
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


class ShardCache:
    """Fixed-length multitrack excerpts of one generated source and split, in shard files."""

    def __init__(self, root: Path, kind: str, split: str, key: dict[str, Any], stems: tuple[str, ...],
                 length: int, tracks_per_shard: int, dtype: str):
        if dtype not in DTYPES:
            raise CacheError(f"training.data.cache.dtype: expected float16 or float32, got {dtype!r}")
        self.stems, self.length, self.per_shard, self.dtype = tuple(stems), int(length), int(tracks_per_shard), dtype
        full_key = {"kind": kind, "split": split, "stems": list(stems), "length": self.length,
                    "tracks_per_shard": self.per_shard, "dtype": dtype, **key}
        digest = hashlib.sha256(json.dumps(full_key, sort_keys=True).encode()).hexdigest()[:12]
        self.key = full_key
        self.folder = root / f"{kind}-{split}-{digest}"
        self._shards: dict[int, tuple[int, int]] = {}  # shard -> (file descriptor, data offset)

    # layout ----------------------------------------------------------------------------------------
    def shard_path(self, i: int) -> Path:
        return self.folder / f"shard-{i:05d}.npy"

    def _shard_count(self, n_tracks: int) -> int:
        return -(-n_tracks // self.per_shard)

    def _rows(self, i: int, n_tracks: int) -> int:
        """Tracks shard i must hold for a cache of n_tracks."""
        return min(self.per_shard, n_tracks - i * self.per_shard)

    def _held(self, i: int) -> int:
        path = self.shard_path(i)
        if not path.exists():
            return 0
        try:
            return int(np.load(path, mmap_mode="r").shape[0])
        except (ValueError, OSError):  # a damaged shard counts as missing and is rendered again
            return 0

    def missing(self, n_tracks: int) -> list[int]:
        """Shards that are absent or hold fewer tracks than a cache of n_tracks needs."""
        return [i for i in range(self._shard_count(n_tracks)) if self._held(i) < self._rows(i, n_tracks)]

    def size_bytes(self, n_tracks: int) -> int:
        return n_tracks * len(self.stems) * 2 * self.length * np.dtype(DTYPES[self.dtype]).itemsize

    # filling -----------------------------------------------------------------------------------------
    def ensure(self, n_tracks: int, render: Callable[[int], np.ndarray], *, jobs: int = 1,
               init: Callable[[], None] | None = None, progress: bool = True, what: str = "tracks") -> None:
        """Render the missing shards for a cache of n_tracks.

        `render(track)` -> (stems, 2, length) float32 runs in `jobs` worker processes (after `init`, e.g.
        loading soundfonts); a tqdm bar counts tracks. Holds the folder's lock while it works."""
        if not self.missing(n_tracks):
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            lock = open(self.folder / ".lock", "w")  # noqa: SIM115 - held for the whole render
        except OSError as e:
            raise CacheError(f"training data cache {self.folder}: cannot create it ({e.strerror}); "
                             f"set training.data.cache.dir or ${CACHE_ENV} to a writable folder") from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be rendering the same cache
            todo = self.missing(n_tracks)
            if not todo:
                return
            self._write_manifest()
            tracks = sum(self._rows(i, n_tracks) for i in todo)
            from tqdm import tqdm

            gb = self.size_bytes(n_tracks) / 1e9
            bar = tqdm(total=tracks, unit="track", disable=not progress, file=sys.stderr, dynamic_ncols=True,
                       desc=f"rendering {what} into {self.folder} ({gb:.2f} GB)")
            pool = ProcessPoolExecutor(jobs, initializer=init) if jobs > 1 else None
            if pool is None and init is not None:
                init()
            try:
                for i in todo:
                    self._render_shard(i, self._rows(i, n_tracks), render, pool, bar)
            finally:
                bar.close()
                if pool is not None:
                    pool.shutdown(cancel_futures=True)
        self._shards.clear()

    def _render_shard(self, i: int, rows: int, render, pool, bar) -> None:
        shape = (rows, len(self.stems), 2, self.length)
        tmp = self.folder / f".shard-{i:05d}.{os.getpid()}.tmp.npy"
        try:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=DTYPES[self.dtype], shape=shape)
            first = i * self.per_shard
            results = pool.map(render, range(first, first + rows)) if pool else map(render, range(first, first + rows))
            for row, audio in enumerate(results):
                assert audio.shape == shape[1:], (audio.shape, shape)
                out[row] = audio
                bar.update()
            out.flush()
            del out
            os.replace(tmp, self.shard_path(i))  # a shard is never seen half written
        except OSError as e:
            raise CacheError(f"training data cache {self.folder}: cannot write shard {i} ({e.strerror})") from None
        finally:
            tmp.unlink(missing_ok=True)

    def _write_manifest(self) -> None:
        path = self.folder / "manifest.json"
        if not path.exists():
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.key, indent=1, sort_keys=True) + "\n")
            os.replace(tmp, path)

    # reading -----------------------------------------------------------------------------------------
    def read(self, track: int, stems: list[int], start: int, n: int) -> np.ndarray:
        """Samples [start, start + n) of the given stems of a track -> (len(stems), 2, n) float32 (zero past the end).

        Positioned reads of just the crop (no memory map: the pages a long run touches stay in the
        kernel's page cache instead of adding up in the resident memory of every worker)."""
        i, row = divmod(track, self.per_shard)
        fd, base = self._open(i)
        dtype = np.dtype(DTYPES[self.dtype])
        out = np.zeros((len(stems), 2, n), np.float32)
        stop = min(start + n, self.length)
        if stop <= start:
            return out
        count = stop - start
        for j, stem in enumerate(stems):
            for ch in range(2):
                offset = base + (((row * len(self.stems) + stem) * 2 + ch) * self.length + start) * dtype.itemsize
                data = os.pread(fd, count * dtype.itemsize, offset)
                out[j, ch, :count] = np.frombuffer(data, dtype=dtype)
        return out

    def _open(self, i: int) -> tuple[int, int]:
        hit = self._shards.get(i)
        if hit is None:
            fd = os.open(self.shard_path(i), os.O_RDONLY)
            with open(self.shard_path(i), "rb") as f:  # .npy header: version, then the array's layout
                major, _ = np.lib.format.read_magic(f)
                read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read_header(f)
                assert shape[1:] == (len(self.stems), 2, self.length) and not fortran and dtype == DTYPES[self.dtype], \
                    (self.shard_path(i), shape, dtype)
                hit = self._shards[i] = (fd, f.tell())
        return hit

    def __getstate__(self) -> dict:  # DataLoader workers open the shards themselves
        d = dict(self.__dict__)
        d["_shards"] = {}
        return d

    def __del__(self) -> None:
        for fd, _ in getattr(self, "_shards", {}).values():
            try:
                os.close(fd)
            except OSError:
                pass
