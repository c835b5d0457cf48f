"""A real JACK server (dummy backend, 48 kHz, 256-frame periods; real-time when the process may) per test
module, and a helper that runs the real CLI (`python -m streaming`) against it in a subprocess."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.jack_dummy import JackDummyServer

ROOT = Path(__file__).resolve().parents[2]


def _dummy_server(prefix: str, realtime: bool | None = None) -> JackDummyServer:
    if shutil.which("jackd") is None or shutil.which("jack_lsp") is None:
        pytest.skip("jackd (Debian package jackd2) is not installed; `apt-get install jackd2` to run the live-host tests")
    return JackDummyServer(48000, 256, prefix=prefix, realtime=realtime)


@pytest.fixture(scope="module")
def jack_server():
    """Yields the environment (JACK_DEFAULT_SERVER set) of a fresh dummy JACK server; torn down after. It runs
    real-time when this process may (as a user's JACK does): a server without real-time priority misses its
    own deadlines on a loaded 2-core VM, which no host can help."""
    with _dummy_server("tfswa-test") as server:
        yield server.env


@pytest.fixture(scope="module")
def jack_server_midi():
    """A dummy JACK server without real-time priority, for the tests that send JACK MIDI (python-rtmidi's
    JACK clients) and check what the host did with it, not the audio's timing. With a real-time server, the
    host and the test on one core beside a busy one, the whole graph stalled for 20-300 s (no cycles for any
    client) in 3 to 5 of each 6 runs of the MIDI test, in 0 of 6 without real-time priority."""
    with _dummy_server("tfswa-midi", realtime=False) as server:
        yield server.env


@pytest.fixture(scope="module")
def tiny():
    """The tiny preset with seeded random weights, for one test module."""
    import torch

    import model
    torch.manual_seed(0)
    return model.build_separator("tiny").eval()


def run_host(args: list[str], env: dict | None = None, timeout: float = 120.0, **kw) -> subprocess.CompletedProcess:
    """Run `python -m streaming ARGS` the way a user does; returns the completed process."""
    return subprocess.run([sys.executable, "-m", "streaming", *args], check=False, cwd=ROOT, env=env or dict(os.environ),
                          capture_output=True, text=True, timeout=timeout, **kw)
