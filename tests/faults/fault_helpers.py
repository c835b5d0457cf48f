"""Helpers of the fault suite: the exit contract of the CLIs (exit code, at most two stderr lines, no
traceback, every pre-existing output byte-identical, no stray temporary) and real CLI processes."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RATE = 44100


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


def wait_for(predicate, timeout: float = 900.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended early: {proc.returncode}, {proc.stderr.read()}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
