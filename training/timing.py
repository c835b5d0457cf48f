"""Where a training step's time goes: wall time per phase, and the device's measured matmul peak.

`PhaseTimer` is off by default (the training loop pays nothing); the benchmark turns it on, and it
then waits for the device at every phase boundary so that asynchronous CUDA work is charged to
the phase that queued it.
"""
from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator

import torch

PHASES = ("data", "forward", "losses", "backward", "optimizer", "validation")


class PhaseTimer:
    """Accumulates seconds per phase name while `enabled`."""

    def __init__(self, device: torch.device | None = None, enabled: bool = False):
        self.enabled = enabled
        self.seconds: dict[str, float] = defaultdict(float)
        self._sync = torch.cuda.synchronize if device is not None and device.type == "cuda" else (lambda: None)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        self._sync()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.seconds[name] += time.perf_counter() - t0

    def reset(self) -> None:
        self.seconds.clear()


def matmul_peak_gflops(device: torch.device, dtype: torch.dtype = torch.float32, size: int | None = None,
                       seconds: float = 0.5) -> float:
    """Measured GFLOP/s of a large square matmul on `device` (the practical peak the model is compared with).

    `size` defaults to 2048 on CPU and 8192 on CUDA; runs for about `seconds` after one warm-up call."""
    n = size or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.matmul(a, b)
    sync()
    calls, t0 = 0, time.perf_counter()
    while True:
        torch.matmul(a, b)
        calls += 1
        sync()
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and calls >= 3:
            return 2 * n ** 3 * calls / elapsed / 1e9
