"""Offline tools: separation of files, BSS Eval evaluation, benchmarks, export."""
import sys

if sys.argv[:1] == ["-m"]:   # being imported for `python -m ...`: a Ctrl-C while torch loads is one line
    from core.signals import quiet_startup
    quiet_startup()

from core.config import declare_section

COMMAND = "tools"                  # the `python -m tools.*` programs: the config sections they read
declare_section("tools", "tools.settings:ToolsConfig", (COMMAND,))
