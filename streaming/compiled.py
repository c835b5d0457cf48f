"""Compiled execution of the per-hop streaming step: policy, on-disk caches, CUDA graphs.

`torch.compile` (inductor) turns the static per-hop step (one frame, ring-buffer state updated in
place, mask tables indexed by a position tensor) into one graph of fused kernels: C++/OpenMP on the
CPU, Triton on CUDA, where the whole hop (FFT, network, inverse FFT) is also captured once in a CUDA
graph and replayed. Compilation happens before a stream opens; its artifacts are cached on disk in a
user cache folder, so a second start loads them instead of compiling again.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import torch

from model.errors import UserError

COMPILE_SETTINGS = ("auto", "on", "off")


def cache_dir() -> Path:
    """Where compiled artifacts live: $TFSWA_CACHE_DIR, else $XDG_CACHE_HOME/tfswa-live, else ~/.cache/tfswa-live."""
    env = os.environ.get("TFSWA_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tfswa-live"


def use_cache_dir() -> Path:
    """Point inductor's caches (compiled kernels, FX graphs, autotuning) at our cache folder."""
    path = cache_dir() / "inductor"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR", ""))   # unwritable: inductor's default
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(path))
    return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])


def parse_setting(value) -> str:
    """config `streaming.compile` / --compile / --no-compile -> auto | on | off."""
    if value is True:
        return "on"
    if value is False or value is None:
        return "off" if value is False else "auto"
    value = str(value).strip().lower()
    if value not in COMPILE_SETTINGS:
        raise UserError(f"streaming.compile: expected one of {', '.join(COMPILE_SETTINGS)}, got {value!r}")
    return value


def can_compile(device: torch.device) -> tuple[bool, str]:
    """Whether inductor can build code for `device` here, and why not."""
    if device.type == "cuda":
        try:
            import triton  # noqa: F401 - inductor's CUDA backend
        except ImportError:
            return False, "Triton is not installed"
        return True, ""
    if device.type != "cpu":
        return False, f"no compiled path for device {device.type}"
    cxx = os.environ.get("CXX") or "c++"
    if shutil.which(cxx) is None and shutil.which("g++") is None:
        return False, "no C++ compiler found (install g++)"
    return True, ""


def wanted(setting: str, device: torch.device) -> bool:
    """Resolve auto | on | off for `device`; `on` where compiling is impossible is a UserError."""
    ok, why = can_compile(device)
    if setting == "on" and not ok:
        raise UserError(f"--compile: cannot compile for {device.type} ({why}); expected a C++ compiler (CPU) "
                        "or CUDA with Triton, or --no-compile")
    return setting == "on" or (setting == "auto" and ok)


def compile_module(module: torch.nn.Module) -> torch.nn.Module:
    """torch.compile with a static graph: full graph (no Python fallbacks in between), static shapes."""
    use_cache_dir()
    return torch.compile(module, fullgraph=True, dynamic=False)


def recompiles() -> int:
    """Frames dynamo has compiled so far in this process (grows on every (re)compilation)."""
    from torch._dynamo.utils import counters
    return int(sum(counters["frames"].values()) and counters["frames"]["ok"])


class CudaGraphHop:
    """Capture `fn(static_in) -> out` once in a CUDA graph and replay it: `__call__(x)` copies x into the
    static input, replays every kernel of the hop with one launch, and returns the static output (valid
    until the next call). `fn` must keep all its state in tensors it updates in place."""

    def __init__(self, fn, example: torch.Tensor, warmup: int = 3):
        self.static_in = example.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):       # first calls allocate, pick kernels and build FFT plans
            for _ in range(warmup):
                fn(self.static_in)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_out = fn(self.static_in)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.static_in.copy_(x, non_blocking=True)
        self.graph.replay()
        return self.static_out


def warn(message: str) -> None:
    print(f"streaming: warning: {message}", file=sys.stderr, flush=True)
