"""User-facing errors and the one CLI wrapper. The CLIs print `str(error)` as one line and exit with code 2."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


class UserError(Exception):
    """Base class for problems caused by what the user supplied (paths, configs, devices, files)."""


class ConfigError(UserError):
    """A configuration file, preset or option is invalid."""


class CheckpointError(UserError):
    """A checkpoint file is missing, corrupt, truncated or does not match what was expected."""


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


def run_cli(prog: str, run: Callable[[], int], interrupted: str = "") -> int:
    """Run a command's body with the project's exit contract, on one line of stderr, never a traceback:

    * a `UserError` -> `prog: error: ...`, exit 2;
    * an `OSError` (disk full, file too large, I/O error while writing or reading) -> exit 1;
    * SIGINT / SIGTERM / SIGHUP -> `prog: interrupted (SIGINT)`, exit 130 / 143 / 129. The signal is
      raised as `core.signals.Interrupted` so that unfinished outputs remove their temporaries; a run
      that treats it as its normal stop (a live recording) may catch it and return, and the exit code
      is still 128 + the signal number. The exception's `note` attribute (set by the code it passed
      through, e.g. which output was left unchanged) or `interrupted` is appended to that line.
    """
    from .signals import Interrupted, received, signal_name, stop_on_signals
    with stop_on_signals():
        try:
            code = run()
        except UserError as e:
            print(f"{prog}: error: {_one_line(e)}", file=sys.stderr)
            return 2
        except OSError as e:
            where = f": {e.filename}" if getattr(e, "filename", None) else ""
            print(f"{prog}: error: {_one_line(e.strerror or e)}{where}", file=sys.stderr)
            return 1
        except KeyboardInterrupt as e:
            signum = e.signum if isinstance(e, Interrupted) else (received() or 2)
            note = getattr(e, "note", "") or interrupted
            print(f"{prog}: interrupted ({signal_name(signum)}){note}", file=sys.stderr)
            return 128 + signum
        signum = received()
    if signum is not None:
        print(f"{prog}: stopped by {signal_name(signum)}", file=sys.stderr)
        return 128 + signum
    return code


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are the contract's: `prog: error: ...` on one line, exit code 2 (no usage)."""

    def error(self, message: str) -> None:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def run_main(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], int], argv: list[str] | None) -> int:
    """A command's `main(argv)`: `parser` checks the flags (argparse's usage line and exit 2), then `run(args)`
    goes through `run_cli`, under the parser's `prog`."""
    args = parser.parse_args(argv)
    return run_cli(parser.prog, lambda: run(args))
