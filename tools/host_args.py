"""The `-- HOST ARGS` convention of the tools that run the live host (roundtrip, soak, ui_bench)."""
from __future__ import annotations

import sys


def split_host_args(argv: list[str] | None) -> tuple[list[str], list[str]]:
    """argv (None: sys.argv[1:]) -> (the tool's own arguments, those after `--`, which go to python -m streaming)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--" not in argv:
        return argv, []
    i = argv.index("--")
    return argv[:i], argv[i + 1:]
