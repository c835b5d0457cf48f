"""How the CLIs stop on SIGINT (Ctrl-C), SIGTERM and SIGHUP: one line, exit 128 + signal number.

Two phases:

* start-up (`quiet_startup`): from the moment a CLI package is imported with `python -m` until
  `run_cli` takes over, a stop signal prints one line and exits at once. Nothing has been written
  yet, and the imports (torch alone takes seconds) would otherwise end in a traceback.
* the run (`stop_on_signals`, used by `core.errors.run_cli`): the first stop signal raises
  `Interrupted` (a `KeyboardInterrupt`) in the main thread, so `with`/`finally` blocks remove the
  temporaries of unfinished outputs (`core.files`) and the previous outputs stay as they were. A
  live run that treats the signal as its normal stop catches it, finishes its recording and returns;
  `run_cli` still exits with 128 + signal number. A second stop signal exits at once.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived; `exit_code` is 128 + its number (130 SIGINT, 143 SIGTERM, 129 SIGHUP)."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal_name(signum))
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class _State:
    received: int | None = None      # the first stop signal of the current run


def received() -> int | None:
    """The stop signal that ended (or is ending) the current run, if any."""
    return _State.received


def _prog() -> str:
    argv = getattr(sys, "orig_argv", sys.argv)
    if "-m" in argv[:-1]:
        return f"python -m {argv[argv.index('-m') + 1]}"
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] not in ("", "-m", "-c") else "python"


def _exit_now(signum: int, why: str) -> None:
    os.write(2, f"{_prog()}: {why} ({signal_name(signum)})\n".encode())
    os._exit(128 + signum)


def _on_startup_signal(signum, frame) -> None:
    _exit_now(signum, "interrupted while starting; nothing was written")


def _on_run_signal(signum, frame) -> None:
    if _State.received is not None:
        _exit_now(signum, "second stop signal: exiting at once")
    _State.received = signum
    raise Interrupted(signum)


def quiet_startup() -> None:
    """Called by a CLI package's `__init__` when it is being imported for `python -m` (sys.argv[0] is
    "-m" exactly then): a stop signal during the imports prints one line and exits."""
    if threading.current_thread() is threading.main_thread():
        for s in STOP_SIGNALS:
            signal.signal(s, _on_startup_signal)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block the first stop signal raises `Interrupted` in the main thread; the previous
    handlers come back afterwards. Outside the main thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _State.received = None
    previous = {s: signal.signal(s, _on_run_signal) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


def exit_fast(code: int) -> None:
    """Exit a CLI with `code` without the interpreter's final garbage collection. After torch, the
    compiled step and numba are loaded, that pass walks millions of objects: 2-3 s on an idle 2-core
    machine and tens of seconds on a loaded one, during which a stopped live host looks hung (a
    supervisor's SIGTERM then SIGKILL after a grace period). Freezing the heap moves every object out
    of the collector's generations; modules are still torn down and atexit handlers still run."""
    import gc
    gc.freeze()
    sys.exit(code)
