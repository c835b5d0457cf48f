"""A private JACK server on the dummy backend (`jackd -d dummy`), for the tests, `tools.roundtrip` and
`tools.ui_bench`: no sound card needed, the same server code a user runs.

Real-time by default when this process may use SCHED_FIFO (root, CAP_SYS_NICE or an rtprio limit), as a
user's JACK runs: the server's cycle thread and each client's process thread then run at its priorities
(10 and 9 here) above everything else, our worker (FIFO 5) included. A server without real-time priority
competes with every other process for its wake-ups, and on a shared 2-core VM misses its own deadline
now and then (a server xrun while our output ring holds data); with it, those disappear.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Self

from core.errors import UserError


def may_use_realtime(priority: int = 10) -> bool:
    """Whether a thread of this process may take SCHED_FIFO at `priority` (tried on a throwaway thread)."""
    if not hasattr(os, "sched_setscheduler"):
        return False
    ok = []

    def probe() -> None:
        try:
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_FIFO, os.sched_param(priority))
            ok.append(True)
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join()
    return bool(ok)


class JackDummyServer:
    """`jackd -d dummy` under a unique name, as a context manager; `env` points clients at it.
    `realtime`: True / False, or None (default): real-time when `may_use_realtime()`. `capture`: physical
    capture ports (system:capture_1..N; the dummy driver records silence on them)."""

    def __init__(self, rate: int = 48000, blocksize: int = 256, name: str | None = None,
                 realtime: bool | None = None, prefix: str = "tfswa-jack", capture: int = 2):
        if shutil.which("jackd") is None or shutil.which("jack_lsp") is None:
            raise UserError("expected jackd and jack_lsp (Debian package jackd2) to start a dummy JACK server")
        self.name = name or f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.realtime = may_use_realtime() if realtime is None else bool(realtime)
        self.env = dict(os.environ, JACK_DEFAULT_SERVER=self.name, JACK_NO_AUDIO_RESERVATION="1")
        self.log = Path(tempfile.gettempdir()) / f"{self.name}.log"
        self.cmd = ["jackd", "--realtime" if self.realtime else "--no-realtime", "-n", self.name, "-d", "dummy",
                    "-r", str(rate), "-p", str(blocksize), "-C", str(int(capture))]
        self.proc: subprocess.Popen | None = None

    def ready(self) -> bool:
        r = subprocess.run(["jack_lsp"], check=False, env=self.env, capture_output=True, text=True)
        return r.returncode == 0 and "system:playback_1" in r.stdout

    def __enter__(self) -> Self:
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15.0
        while not self.ready():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.__exit__()
                raise UserError(f"the JACK dummy server did not come up: {' '.join(self.cmd)} (log {self.log})")
            time.sleep(0.1)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server (what its clients see as a server that went away); harmless when stopped."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
