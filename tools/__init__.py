"""Offline tools: separation of files, BSS Eval evaluation, benchmarks, export."""
import sys

if sys.argv[:1] == ["-m"]:   # being imported for `python -m ...`: a Ctrl-C while torch loads is one line
    from model.signals import quiet_startup
    quiet_startup()
