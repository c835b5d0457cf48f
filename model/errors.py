"""User-facing errors. The CLIs print `str(error)` as one line and exit with code 2."""
from __future__ import annotations

import sys
from collections.abc import Callable


class UserError(Exception):
    """Base class for problems caused by what the user supplied (paths, configs, devices, files)."""


class ConfigError(UserError):
    """A configuration file, preset or option is invalid."""


class CheckpointError(UserError):
    """A checkpoint file is missing, corrupt, truncated or does not match what was expected."""


def run_cli(prog: str, run: Callable[[], int]) -> int:
    """Run a command's body: a `UserError` becomes one line on stderr and exit code 2, Ctrl-C exit 130."""
    try:
        return run()
    except UserError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
