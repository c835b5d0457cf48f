"""training.fetch_accompaniment without network: a stand-in `apt-get` hands over small .deb files built here with
dpkg-deb; the songs land in the cache with their licence files, a second run fetches nothing, and missing tools
are one line (exit 2)."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from training.fetch_accompaniment import DONE, ENV_DIR, PACKAGES, FetchError, fetch, fretsonfire_dir, song_folders

REPO = Path(__file__).resolve().parents[2]


def _fake_deb(out: Path, pkg: str) -> Path:
    """A .deb laid out like the real packages: songs under usr/share/games/fretsonfire/data/songs, docs."""
    tree = out / f"{pkg}-tree"
    song = tree / "usr/share/games/fretsonfire/data/songs" / f"{pkg[-4:]}_song"
    song.mkdir(parents=True)
    tone = (0.1 * np.sin(np.arange(4410) / 10)).astype(np.float32)
    for name in ("guitar.ogg", "song.ogg"):
        sf.write(song / name, np.stack([tone, tone], 1), 44100, format="OGG")
    (song / "readme.txt").write_text("credit the author\n")
    (tree / "lonely").mkdir()
    sf.write(tree / "lonely" / "song.ogg", np.stack([tone, tone], 1), 44100, format="OGG")  # no guitar.ogg: not a song
    doc = tree / "usr/share/doc" / pkg
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("CC BY-SA 3.0\n")
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN/control").write_text(f"Package: {pkg}\nVersion: 1\nArchitecture: all\nMaintainer: t <t@t>\n"
                                         "Description: test\n")
    deb = out / f"{pkg}_1_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(tree), str(deb)], check=True, capture_output=True)
    return deb


@pytest.fixture
def fake_apt(tmp_path, monkeypatch) -> Path:
    """PATH with an `apt-get` that copies prebuilt .debs into its working folder (and logs each call)."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb not installed: cannot build the stand-in packages")
    debs = tmp_path / "debs"
    debs.mkdir()
    for pkg in PACKAGES:
        _fake_deb(debs, pkg)
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    apt = bin_ / "apt-get"
    apt.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/apt.log\ncp {debs}/"$3"_*.deb .\n')
    apt.chmod(apt.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    return tmp_path


def test_fetch_unpacks_songs_with_their_licences_and_skips_what_is_there(fake_apt):
    dest = fake_apt / "cache"
    songs = fetch(dest, log=lambda _: None)
    assert [s.name for s in songs] == sorted(f"{p[-4:]}_song" for p in PACKAGES)
    for pkg in PACKAGES:
        assert (dest / pkg / DONE).is_file()
        assert (dest / pkg / "doc" / "copyright").read_text() == "CC BY-SA 3.0\n"
        assert (dest / pkg / "doc" / "readme.txt").is_file()
    assert song_folders(dest) == songs
    calls = (fake_apt / "apt.log").read_text().splitlines()
    assert len(calls) == 2 and all(c.startswith("download") for c in calls)
    fetch(dest, log=lambda _: None)  # again: nothing downloaded
    assert len((fake_apt / "apt.log").read_text().splitlines()) == 2


def test_missing_package_tools_are_one_line_and_exit_2(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-get, no dpkg-deb
    with pytest.raises(FetchError, match="apt-get") as e:
        fetch(tmp_path / "cache", log=lambda _: None)
    assert "\n" not in str(e.value)
    env = {**os.environ, "PATH": str(tmp_path), ENV_DIR: str(tmp_path / "cache")}
    r = subprocess.run([sys.executable, "-m", "training.fetch_accompaniment"], check=False, cwd=REPO,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "apt-get" in r.stderr, r.stderr


def test_cache_folder_from_the_environment_or_the_config(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_DIR, str(tmp_path / "x"))
    assert fretsonfire_dir() == tmp_path / "x"
    monkeypatch.delenv(ENV_DIR)
    assert fretsonfire_dir("~/ff") == Path("~/ff").expanduser()
    assert fretsonfire_dir().name == "fretsonfire"  # config.yaml: real_vocals.fretsonfire_dir
    assert song_folders(tmp_path / "nowhere") == []
