"""A real JACK server (dummy backend, 48 kHz, 256-frame periods) per test module, and a helper that
runs the real CLI (`python -m streaming`) against it in a subprocess."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _jack_ready(env: dict, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(["jack_lsp"], check=False, env=env, capture_output=True, text=True)
        if r.returncode == 0 and "system:playback_1" in r.stdout:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def jack_server():
    """Yields the environment (JACK_DEFAULT_SERVER set) of a fresh dummy JACK server; torn down after."""
    if shutil.which("jackd") is None or shutil.which("jack_lsp") is None:
        pytest.skip("jackd (Debian package jackd2) is not installed; `apt-get install jackd2` to run the live-host tests")
    name = f"tfswa-test-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_AUDIO_RESERVATION="1")
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"{name}.log", "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(["jackd", "--no-realtime", "-n", name, "-d", "dummy", "-r", "48000", "-p", "256"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        if not _jack_ready(env):
            pytest.fail(f"JACK dummy server {name} did not come up (log: {log.name})")
        yield env
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def run_host(args: list[str], env: dict | None = None, timeout: float = 120.0, **kw) -> subprocess.CompletedProcess:
    """Run `python -m streaming ARGS` the way a user does; returns the completed process."""
    return subprocess.run([sys.executable, "-m", "streaming", *args], check=False, cwd=ROOT, env=env or dict(os.environ),
                          capture_output=True, text=True, timeout=timeout, **kw)
