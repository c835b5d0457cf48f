"""`config.yaml` section `host`: the live host's device, head start, rings, resampling and file-run settings."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.schema import build, setting


@dataclass(frozen=True)
class HostConfig:
    """`config.yaml` section `host`."""

    blocksize: int = setting(256, ge=0, le=16384)        # frames per audio callback (0: whatever the device gives)
    latency: str | float = setting("low", choices=("low", "high"), gt=0, le=10)  # PortAudio latency: low | high | s
    late_policy: str = setting("dry", choices=("dry", "silence"))  # a block the worker has not finished
    adaptive_headstart: bool = True      # a late block grows the head start by one block (up to the max below)
    adaptive_headstart_max_ms: float = setting(25.0, ge=0, le=2000)   # the head start (buffers) it may grow to
    # output head start in device blocks (beyond the resamplers' lag); auto = from the measured worker
    # time per block (streaming/host/headstart.py)
    prefill_blocks: int | Literal["auto"] = setting("auto", ge=1, le=4096)
    prefill_margin_ms: float = setting(1.0, ge=0, le=1000)   # auto: safety margin on top of the measured quantile
    prefill_quantile: float = setting(99.0, ge=50, le=100)   # auto: percentile of the measured worker time per block
    prefill_probe_s: float = setting(1.5, gt=0, le=60)       # auto: seconds of audio timed at start-up
    ring_seconds: float = setting(2.0, gt=0, le=60)      # capacity of the input and output rings
    status_interval_s: float = setting(0.5, gt=0, le=3600)  # status line period (at most twice a second)
    resample_quality: str = "LD32"       # live resampler: LD<n> low-delay polyphase or a soxr quality (resample.py)
    file_resample_quality: str = "HQ"    # resampler for file runs (delay does not matter there)
    file_block: int = setting(4096, ge=1, le=1 << 20)    # frames per block in file runs
    samplerate: int | None = setting(None, ge=8000, le=384000)  # device rate; None: the device's default
    gil_switch_interval_ms: float = setting(0.5, gt=0, le=100)  # Python thread switch interval while live
    realtime_priority: int = setting(5, ge=0, le=99)     # SCHED_FIFO priority of the worker (below JACK's 10); 0: off

    def __post_init__(self) -> None:
        from ..processing.resample import check_quality
        check_quality(self.resample_quality, "config host.resample_quality")
        check_quality(self.file_resample_quality, "config host.file_resample_quality")

    @classmethod
    def from_config(cls, config: dict) -> HostConfig:
        return build(cls, config.get("host"), "config host")
