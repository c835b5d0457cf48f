"""CPU resources of the streaming engine: how many intra-op threads the per-hop step gets, and
real-time scheduling of the live worker thread.

Threads: one hop is a few hundred small kernels of a few microseconds each; splitting them across
cores costs more in wake-ups and spin-waits than it saves, and extra OpenMP threads spin against the
audio threads. Measured (`python -m tools.bench --threads N`): on 2 cores, 2 threads were no faster
than 1; on a 16-core host, 16 threads made the eager step 7x slower than 2. So `auto` is 1 thread,
and no setting is allowed to exceed the cores this process may run on.
"""
from __future__ import annotations

import os
import threading

import torch

from core.errors import UserError


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def pick_threads(requested: int | str | None) -> int:
    """`streaming.threads` -> intra-op threads: 0 / None / auto -> 1; otherwise the number, capped at the cores."""
    if requested in (None, 0, "auto"):
        return 1
    try:
        n = int(requested)
    except (TypeError, ValueError):
        raise UserError(f"streaming.threads: expected a thread count >= 0 or auto, got {requested!r}") from None
    if n < 0:
        raise UserError(f"streaming.threads: expected a thread count >= 0 or auto, got {requested!r}")
    return min(n, available_cores())


def set_threads(requested: int | str | None) -> int:
    """Apply `pick_threads` to torch's intra-op pool (process-wide) and return the count."""
    n = pick_threads(requested)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def promote_current_thread(priority: int) -> str:
    """Put the calling thread under SCHED_FIFO at `priority` (1..99; 0: leave it alone). Returns "" on
    success, else why not (the caller reports it once). Linux only; needs CAP_SYS_NICE or an rtprio
    limit (`ulimit -r`, /etc/security/limits.d/audio.conf) that allows the priority."""
    if priority <= 0:
        return "real-time priority off (host.realtime_priority: 0)"
    if not hasattr(os, "sched_setscheduler"):
        return "real-time scheduling is not available on this OS"
    try:
        os.sched_setscheduler(threading.get_native_id(), os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError:
        return (f"no permission for SCHED_FIFO priority {priority} (give the user an rtprio limit, e.g. membership "
                "of the 'audio' group with /etc/security/limits.d/audio.conf)")
    except OSError as e:
        return f"SCHED_FIFO priority {priority} refused ({e.strerror})"
    return ""
