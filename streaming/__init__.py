"""Low-latency streaming separation: the per-hop engine (`StreamingSeparator`) and the live host.

`python -m streaming` runs the live host (see README)."""
from .engine import StreamingSeparator

__all__ = ["StreamingSeparator"]
