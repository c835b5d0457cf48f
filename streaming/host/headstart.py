"""How far ahead of the device the live host's output ring starts: the head start, from measured step times.

In a duplex stream the callback hands input block k to the worker and must play an output block at once,
so the output ring starts with silence: the worker's output of block k is played `blocks` device blocks
later, and the ring also has to cover what the resamplers withhold (`resample.chain_lag_frames`). Round
trip inside the host = head start + the model's (and chains') latency.

The head start is not a fixed number of blocks: before the stream opens, the host runs its real
processing chain (resample -> engine -> mixer -> resample, already warmed up / compiled) on silence in
device-sized blocks and times every block; `blocks` is the fewest whole blocks whose duration covers the
chosen quantile (p99) of that time plus the worker's polling interval and a safety margin. A compiled
model that finishes a block well within a period gets one block; a slow one, or a small block, more.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HeadStart:
    """The output ring's prefill: `resampler_frames` + `blocks` x `block_frames`, and why."""

    block_frames: int
    blocks: int
    resampler_frames: int
    rate: int
    block_ms_p50: float = 0.0       # measured worker time per device block
    block_ms_p99: float = 0.0       # (the quantile used, see HostConfig.prefill_quantile)
    quantile: float = 99.0
    poll_ms: float = 0.0
    margin_ms: float = 0.0
    measured_blocks: int = 0

    @property
    def frames(self) -> int:
        return self.resampler_frames + self.blocks * self.block_frames

    @property
    def buffer_ms(self) -> float:
        """The part the host's buffers add (the resamplers' lag is reported on its own)."""
        return 1000.0 * self.blocks * self.block_frames / self.rate

    def describe(self) -> dict:
        return {"headstart_blocks": self.blocks, "headstart_frames": self.frames,
                "worker_block_ms_p50": round(self.block_ms_p50, 4), "worker_block_ms_p99": round(self.block_ms_p99, 4),
                "headstart_margin_ms": self.margin_ms, "headstart_quantile": self.quantile,
                "headstart_probe_blocks": self.measured_blocks}


def time_blocks(process, block: int, channels: int, rate: int, seconds: float,
                max_wall_s: float = 3.0) -> tuple[np.ndarray, int]:
    """Per-block wall time (ms) of `y = process(zeros((block, channels)))` over `seconds` of audio (at most
    `max_wall_s` of wall time), and the frames still withheld at the end (fed - returned). Silence leaves
    every stateful stage as if the stream had started earlier; the withheld frames (the resamplers') come
    out first once the stream runs, so the caller primes the output ring with that much less."""
    x = np.zeros((block, channels), np.float32)
    n = max(32, int(seconds * rate / block))
    times = np.zeros(n, np.float64)
    stop = time.perf_counter() + max_wall_s
    fed = got = 0
    for i in range(n):
        t0 = time.perf_counter()
        y = process(x)
        times[i] = 1000.0 * (time.perf_counter() - t0)
        fed += block
        got += y.shape[0]
        if t0 > stop:
            return times[:i + 1], fed - got
    return times, fed - got


def plan(times_ms: np.ndarray, block: int, rate: int, resampler_frames: int, margin_ms: float, poll_ms: float,
         quantile: float = 99.0, fixed_blocks: int | None = None) -> HeadStart:
    """The head start for measured per-block times: the fewest blocks (>= 1) with
    blocks x block duration >= quantile(times) + poll + margin; `fixed_blocks` overrides the count."""
    block_ms = 1000.0 * block / rate
    p50 = float(np.percentile(times_ms, 50)) if len(times_ms) else 0.0
    pq = float(np.percentile(times_ms, quantile)) if len(times_ms) else 0.0
    if fixed_blocks is not None:
        blocks = max(1, int(fixed_blocks))
    else:
        blocks = max(1, math.ceil((pq + poll_ms + margin_ms) / block_ms - 1e-9))
    return HeadStart(block_frames=block, blocks=blocks, resampler_frames=int(resampler_frames), rate=rate,
                     block_ms_p50=p50, block_ms_p99=pq, quantile=quantile, poll_ms=poll_ms, margin_ms=margin_ms,
                     measured_blocks=len(times_ms))
