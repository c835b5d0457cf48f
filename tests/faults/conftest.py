"""Fixtures of the fault suite: broken and hostile inputs, written once per session, and helpers
that check the exit contract of the CLIs (exit code, at most two stderr lines, no traceback, every
pre-existing output byte-identical, no stray temporary)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

import model

ROOT = Path(__file__).resolve().parents[2]
RATE = 44100


def _noise(n: int, channels: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal((n, channels))).astype(np.float32)


def _truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


@pytest.fixture(scope="session")
def assets(tmp_path_factory) -> Path:
    """One folder of inputs every case may use (never written by a case)."""
    a = tmp_path_factory.mktemp("fault-assets")
    sf.write(a / "in.wav", _noise(RATE // 2, 2), RATE, subtype="FLOAT")
    sf.write(a / "six.wav", _noise(RATE // 4, 6), RATE, subtype="FLOAT")
    sf.write(a / "trunc.wav", _noise(5 * RATE, 2), RATE, subtype="PCM_16")
    _truncate(a / "trunc.wav", 1 / 3)
    sf.write(a / "trunc.flac", _noise(5 * RATE, 2), RATE)
    _truncate(a / "trunc.flac", 1 / 3)
    nan = _noise(RATE // 2, 2)
    nan[1000:1010] = np.nan
    sf.write(a / "nan.wav", nan, RATE, subtype="FLOAT")
    (a / "junk.wav").write_bytes(os.urandom(3000))
    (a / "empty.wav").write_bytes(b"")
    for d in ("x", "y"):
        (a / d).mkdir()
        sf.write(a / d / "song.wav", _noise(RATE // 4, 2, seed=ord(d)), RATE, subtype="FLOAT")
    # checkpoints: a good tiny one, one whose config says sample_rate -5, one of junk bytes
    torch.manual_seed(0)
    model.save_checkpoint(model.build_separator("tiny").eval(), a / "tiny.ckpt")
    ckpt = torch.load(a / "tiny.ckpt", weights_only=True)
    ckpt["config"]["sample_rate"] = -5
    torch.save(ckpt, a / "rate.ckpt")
    ckpt["config"]["sample_rate"] = 44100
    ckpt["config"]["n_fft"] = "abc"
    torch.save(ckpt, a / "nfft.ckpt")
    (a / "junk.ckpt").write_bytes(b"PK\x03\x04" + os.urandom(500))
    # configs
    configs = {
        "block0": {"host": {"file_block": 0}},
        "blockneg": {"host": {"file_block": -4096}},
        "blockabc": {"host": {"file_block": "abc"}},
        "loud": {"mixer": {"limiter_ceiling_db": "loud"}},
        "threads": {"host": {"torch_threads": -3}},
        "section": {"bogus": {"a": 1}},
        "hostkey": {"host": {"blok_size": 256}},
        "limiter": {"mixer": {"limiter_threshold_db": -0.05, "limiter_ceiling_db": -0.1}},
        "quality": {"host": {"file_resample_quality": "best"}},
        "midiapi": {"midi": {"api": "coremidi"}},
        "batch": {"training": {"batch_size": "abc"}},
        "lr": {"training": {"optimizer": {"lr": -1}}},
        "preset": {"presets": {"tiny": {"n_fft": 100000}}},
        "separate": {"tools": {"separate": {"overlap": 1.5}}},
    }
    for name, body in configs.items():
        (a / f"{name}.yaml").write_text(yaml.safe_dump(body))
    (a / "notyaml.yaml").write_text("host: [unclosed\n")
    (a / "list.yaml").write_text("- 1\n- 2\n")
    (a / "binary.yaml").write_bytes(b"\xff\xfe\x00garbage")
    _bad_data_folder(a / "data")
    return a


def _bad_data_folder(root: Path) -> None:
    """Four tracks, each broken differently: lengths, rates, channels, a junk stem file."""
    def track(name: str, stems: dict[str, tuple[int, int, int]]) -> None:   # stem -> (frames, rate, channels)
        (root / name).mkdir(parents=True)
        for stem, (n, rate, ch) in stems.items():
            sf.write(root / name / f"{stem}.wav", _noise(n, ch), rate, subtype="FLOAT")
    track("lengths", {"vocals": (8000, RATE, 2), "drums": (4000, RATE, 2), "bass": (8000, RATE, 2), "other": (8000, RATE, 2)})
    track("rates", {"vocals": (8000, 22050, 2), "drums": (8000, RATE, 2), "bass": (8000, 48000, 2), "other": (8000, RATE, 2)})
    track("channels", {"vocals": (8000, RATE, 1), "drums": (8000, RATE, 2), "bass": (8000, RATE, 2), "other": (8000, RATE, 2)})
    track("junk", {"vocals": (8000, RATE, 2), "drums": (8000, RATE, 2), "bass": (8000, RATE, 2)})
    (root / "junk" / "other.wav").write_bytes(os.urandom(2000))


# -- the exit contract -----------------------------------------------------------------------------------
def stray_temporaries(*folders: Path) -> list[Path]:
    return [p for f in folders for p in Path(f).rglob("*") if ".partial" in p.name or p.name.endswith(".probe")]


def protect(workdir: Path, names) -> dict[Path, bytes]:
    """Pre-existing outputs: each gets distinct random bytes; returns what they must still hold."""
    kept = {}
    for name in names:
        p = workdir / name
        p.parent.mkdir(parents=True, exist_ok=True)
        data = b"precious " + os.urandom(64)
        p.write_bytes(data)
        kept[p] = data
    return kept


def assert_contract(rc: int, err: str, expect_rc: int, message: str, kept: dict[Path, bytes], *folders: Path) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == expect_rc, (rc, err)
    assert "Traceback" not in err, err
    assert 1 <= len(lines) <= 2, lines
    assert message.lower() in lines[-1].lower(), (message, lines)
    for path, data in kept.items():
        assert path.is_file() and path.read_bytes() == data, f"{path} was changed"
    assert not stray_temporaries(*folders), stray_temporaries(*folders)


# -- real processes --------------------------------------------------------------------------------------
def cli(module: str, *args: str, fsize: int | None = None, **kw) -> subprocess.Popen:
    """Start `python -m MODULE ARGS` as a user would (stderr piped); `fsize` limits the size of every file
    it writes (bash `ulimit -f`, i.e. RLIMIT_FSIZE: writing past it fails with EFBIG exactly where a full
    disk fails with ENOSPC; Python ignores SIGXFSZ)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", module, *args]
    if fsize is not None:
        cmd = ["bash", "-c", f'ulimit -f {max(1, fsize // 1024)} && exec "$0" "$@"', *cmd]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def wait_for(predicate, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended early: {proc.returncode}, {proc.stderr.read()}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
