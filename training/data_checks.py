"""Checks of `--data folder:PATH` training data, made once before training starts.

A stem folder trains only when every track's stem files are readable audio with equal sample rates,
channel counts (mono or stereo) and lengths. Otherwise the run would stop with a decoder traceback
hours in, or (different rates, lengths or channels) train silently on misaligned stems. Every problem
of every track is collected and reported once, in one `DataError` line.
"""
from __future__ import annotations

from pathlib import Path

from core.errors import UserError

AUDIO_SUFFIXES = (".wav", ".flac")
SHOWN = 20        # problems spelled out in the message; the rest are counted


class DataCheckError(UserError):
    """The training data has problems (listed in the message)."""


def _track_dirs(root: Path) -> list[Path]:
    splits = [root / "train", root / "valid"]
    bases = splits if all(s.is_dir() for s in splits) else [root]
    return [d for base in bases for d in sorted(p for p in base.iterdir() if p.is_dir() and _stem_files(p))]


def _stem_files(d: Path) -> list[Path]:
    return sorted(f for f in d.iterdir() if f.suffix.lower() in AUDIO_SUFFIXES and not f.name.startswith(".")
                  and f.is_file())


def track_problems(d: Path, root: Path) -> list[str]:
    """The problems of one track folder (empty when it is usable)."""
    import soundfile as sf
    name = str(d.relative_to(root)) if d != root else d.name
    problems, infos = [], {}
    for f in _stem_files(d):
        try:
            info = sf.info(str(f))
        except Exception as e:  # noqa: BLE001 - libsndfile raises several types for junk files
            problems.append(f"{name}/{f.name} is not readable audio ({str(e).splitlines()[0][:60]})")
            continue
        if info.frames <= 0:
            problems.append(f"{name}/{f.name} holds no audio")
        elif info.channels > 2:
            problems.append(f"{name}/{f.name} has {info.channels} channels (expected mono or stereo)")
        infos[f.name] = info
    if len({i.samplerate for i in infos.values()}) > 1:
        problems.append(f"{name}: stems at different sample rates ("
                        + ", ".join(f"{n} {i.samplerate} Hz" for n, i in infos.items()) + ")")
    elif len({i.frames for i in infos.values()}) > 1:
        problems.append(f"{name}: stems of different lengths ("
                        + ", ".join(f"{n} {i.frames / i.samplerate:.2f} s" for n, i in infos.items()) + ")")
    if len({i.channels for i in infos.values()}) > 1:
        problems.append(f"{name}: stems with different channel counts ("
                        + ", ".join(f"{n} {i.channels}" for n, i in infos.items()) + ")")
    return problems


def folder_problems(root: Path) -> list[str]:
    """Every problem of a `folder:` dataset (train/ + valid/ subfolders or <track>/ folders)."""
    if not root.is_dir():
        return []          # build_source reports a missing folder with its own message
    return [p for d in _track_dirs(root) for p in track_problems(d, root)]


def check_data_specs(specs: list[str]) -> None:
    """Raise one DataCheckError listing every problem of the `folder:` specs among `specs`."""
    for spec in specs:
        scheme, _, path = spec.partition(":")
        if scheme != "folder" or not path:
            continue
        root = Path(path).expanduser()
        problems = folder_problems(root)
        if problems:
            shown = "; ".join(problems[:SHOWN])
            more = f"; and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
            raise DataCheckError(f"--data {spec}: {len(problems)} problem{'s' if len(problems) > 1 else ''} "
                                 f"(expected readable mono/stereo stems of equal rate, channels and length per "
                                 f"track): {shown}{more}")
