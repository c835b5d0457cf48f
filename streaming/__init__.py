"""Low-latency streaming separation: the per-hop engine (`StreamingSeparator`) and the live host.

`python -m streaming` runs the live host (see README)."""
import sys

if sys.argv[:1] == ["-m"]:   # being imported for `python -m ...`: a Ctrl-C while torch loads is one line
    from model.signals import quiet_startup
    quiet_startup()

from .engine.separator import StreamingSeparator

__all__ = ["StreamingSeparator"]
