"""Which device a training process runs on, and how it is set up (threads, CUDA flags).

`choose_device` is a pure function of the request, the process's place in a torchrun job and what
CUDA reports, so its string handling is tested without a GPU.
"""
from __future__ import annotations

import ctypes
import os
import sys

import torch

from core.errors import UserError


class DeviceError(UserError):
    """A `--device` request this machine cannot honour."""


def choose_device(want: str | None, *, local_rank: int = 0, world: int = 1,
                  cuda_count: int | None = None) -> torch.device:
    """`--device` value -> torch.device with an index for CUDA.

    None: `cuda` when CUDA is present, else `cpu`. `cuda`: cuda:LOCAL_RANK under torchrun, cuda:0
    otherwise. `cuda:N`: that GPU (one process only; under torchrun every process takes its
    LOCAL_RANK). `cuda_count`: GPUs visible (default: ask torch)."""
    count = torch.cuda.device_count() if cuda_count is None else cuda_count
    name = (want or ("cuda" if count > 0 else "cpu")).strip().lower()
    if name == "cpu":
        return torch.device("cpu")
    kind, _, index = name.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise DeviceError(f"--device {want!r}: expected cpu, cuda or cuda:N")
    if count == 0:
        raise DeviceError(f"--device {want}: expected a CUDA GPU, but torch sees none (use --device cpu)")
    if index and world > 1:
        raise DeviceError(f"--device {want}: under torchrun every process takes cuda:LOCAL_RANK; pass --device cuda")
    i = int(index) if index else (local_rank if world > 1 else 0)
    if i >= count:
        raise DeviceError(f"--device {want}: expected a GPU index below {count} (this process would use cuda:{i})")
    return torch.device("cuda", i)


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask; cgroup-limited containers report fewer)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of handing it back to the kernel.

    A training step allocates and frees the same large activation buffers every step. By default
    glibc maps every block above its (adaptive) threshold afresh and trims the heap top when it
    is freed, so the kernel zeroes those pages again on every step: system time as large as user
    time in our measurements. Fixed thresholds (blocks up to 32 MiB from the heap, no trimming
    below 1 GiB of free heap) remove that. Returns False where this is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20) and libc.mallopt(m_trim_threshold, 1 << 30)
                    and libc.mallopt(m_top_pad, 64 << 20))
    except (OSError, AttributeError):  # musl or another libc: leave it alone
        return False


def prepare_device(device: torch.device, cpu_threads: int) -> None:
    """Select the GPU (by index) and allow TF32 matmuls on it; set the torch thread count on CPU
    (`cpu_threads` 0: torch's default); keep freed host memory for reuse (`keep_freed_memory`)."""
    keep_freed_memory()
    if device.type == "cuda":
        torch.cuda.set_device(device.index)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    elif cpu_threads > 0:
        torch.set_num_threads(cpu_threads)
