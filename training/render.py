"""Render songs of the song engine to WAV files, to listen to them or to cache training data.

    python -m training.render --out DIR --n 3 [--seconds 20] [--seed 0] [--start 0] [--jobs 2]

writes DIR/<song_name>/{vocals,drums,bass,other,mixture}.wav (float32 WAV, so mixture == sum of stems
exactly), the `<track>/<stem>.wav` layout the training `folder:` dataset reads.
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
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--n", type=int, default=3, help="number of songs")
    p.add_argument("--seconds", type=float, default=20.0, help="excerpt length per song")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", type=int, default=0, help="index of the first song")
    p.add_argument("--sample-rate", type=int, default=44100)
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    if a.n < 1 or a.jobs < 1 or a.start < 0 or a.seed < 0 or not (0 < a.seconds <= 600):
        p.error(f"expected --n >= 1, --jobs >= 1, --start >= 0, --seed >= 0, 0 < --seconds <= 600; got --n {a.n} "
                f"--jobs {a.jobs} --start {a.start} --seed {a.seed} --seconds {a.seconds}")
    from model import UserError  # imported after argument checks: it loads torch (seconds)

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


if __name__ == "__main__":
    raise SystemExit(main())
