"""Render generated training data: song WAV folders to listen to, or the training cache's shards.

    python -m training.render --out DIR --n 3 [--seconds 20] [--seed 0] [--start 0] [--jobs 2]
    python -m training.render --data songs [--data synthetic] [--n 2000] [--jobs 8] [--config config.yaml]

The first writes DIR/<song_name>/{vocals,drums,bass,other,mixture}.wav (float32 WAV, so mixture == sum
of stems exactly), the `<track>/<stem>.wav` layout the training `folder:` dataset reads. The second
renders what `python -m training --data songs|synthetic` would read from the shard cache
(`training.data.cache`: location, size, dtype) ahead of a run, e.g. on the CPU side of a GPU machine;
`--n` sets the number of training songs (`training.data.cache.songs`), and only missing shards are
rendered.
"""
from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

_SOURCE = None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        print(f"render: {message}", file=sys.stderr)
        raise SystemExit(2)


def _worker_init(seed: int, sample_rate: int, seconds: float) -> None:
    global _SOURCE
    from training.songs import SongSource

    _SOURCE = SongSource(seed=seed, sample_rate=sample_rate, seconds=seconds)


def _render_one(index: int, out: str) -> str:
    import soundfile as sf

    assert _SOURCE is not None
    song, start, rng = _SOURCE.plan(index)
    stems = _SOURCE.render(song, start, rng)
    folder = Path(out) / song.name
    folder.mkdir(parents=True, exist_ok=True)
    stems["mixture"] = np.sum([stems[k] for k in ("vocals", "drums", "bass", "other")], axis=0, dtype=np.float32)
    for name, audio in stems.items():
        tmp = folder / f".{name}.tmp.wav"
        sf.write(tmp, audio.T, _SOURCE.sample_rate, subtype="FLOAT")
        tmp.replace(folder / f"{name}.wav")  # atomic: a cache never holds half a file
    return song.name


def main(argv: list[str] | None = None) -> int:
    p = _Parser(prog="python -m training.render", description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None, help="output folder of WAV songs (created)")
    p.add_argument("--data", action="append", default=[], choices=["songs", "synthetic"],
                   help="fill the training cache for this generated source instead (repeatable)")
    p.add_argument("--config", default=None, help="config.yaml for --data (default: the project's)")
    p.add_argument("--n", type=int, default=None, help="number of songs (default 3; with --data: training.data.cache.songs)")
    p.add_argument("--seconds", type=float, default=20.0, help="excerpt length per song (--out)")
    p.add_argument("--seed", type=int, default=None, help="default 0; with --data: training.seed")
    p.add_argument("--start", type=int, default=0, help="index of the first song (--out)")
    p.add_argument("--sample-rate", type=int, default=44100, help="(--out)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default 1; with --data: one per core)")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    if (a.out is None) == (not a.data):
        p.error("expected either --out DIR (WAV songs) or --data songs|synthetic (the training cache)")
    n, jobs, seed = (3 if a.n is None else a.n), (1 if a.jobs is None else a.jobs), (0 if a.seed is None else a.seed)
    if n < 1 or jobs < 1 or a.start < 0 or seed < 0 or not (0 < a.seconds <= 600):
        p.error(f"expected --n >= 1, --jobs >= 1, --start >= 0, --seed >= 0, 0 < --seconds <= 600; got --n {n} "
                f"--jobs {jobs} --start {a.start} --seed {seed} --seconds {a.seconds}")
    if a.data:
        return render_cache(a)
    a.n, a.jobs, a.seed = n, jobs, seed
    from core.errors import UserError

    try:
        from tqdm import tqdm

        out = Path(a.out)
        if out.exists() and not out.is_dir():
            raise UserError(f"--out: expected a folder, found a file: {out}")
        out.mkdir(parents=True, exist_ok=True)
        _worker_init(a.seed, a.sample_rate, a.seconds)  # validates the config and arguments up front
        indices = range(a.start, a.start + a.n)
        bar = tqdm(total=a.n, unit="song", disable=a.no_progress)
        if a.jobs == 1:
            for i in indices:
                bar.set_postfix_str(_render_one(i, str(out)))
                bar.update()
        else:
            with ProcessPoolExecutor(a.jobs, initializer=_worker_init,
                                     initargs=(a.seed, a.sample_rate, a.seconds)) as pool:
                for name in pool.map(_render_one, indices, [str(out)] * a.n):
                    bar.set_postfix_str(name)
                    bar.update()
        bar.close()
    except (UserError, IndexError, OSError) as e:
        print(f"render: {e}", file=sys.stderr)
        return 2
    return 0


def render_cache(a: argparse.Namespace) -> int:
    """Fill the training shard cache for `--data` sources, both splits, as `python -m training` reads them."""
    import dataclasses

    import core
    from training.config import train_config
    from training.data import build_source

    try:
        config = core.load_config(a.config)
        cfg = train_config(config)
        cache = dataclasses.replace(cfg.data.cache, enabled=True,
                                    songs=cfg.data.cache.songs if a.n is None else a.n,
                                    jobs=cfg.data.cache.jobs if a.jobs is None else a.jobs)
        data_cfg = dataclasses.replace(cfg.data, cache=cache)
        seed = cfg.seed if a.seed is None else a.seed
        rate = int(config["audio"]["sample_rate"])
        for spec in a.data:
            train, valid = (build_source(spec, split, data_cfg, rate, seed, progress=not a.no_progress)
                            for split in ("train", "valid"))
            size = (train.cache.size_bytes(len(train)) + valid.cache.size_bytes(len(valid))) / 1e9
            print(f"{spec}: {len(train)} training + {len(valid)} validation tracks of "
                  f"{train.track_length(0) / rate:g} s, {size:.2f} GB in {train.cache.folder.parent}")
    except (core.UserError, OSError) as e:
        print(f"render: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from core.signals import exit_fast
    exit_fast(main())
