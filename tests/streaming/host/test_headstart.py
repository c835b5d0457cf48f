"""The output head start: whole device blocks covering the measured worker time per block."""
from __future__ import annotations

import numpy as np

from streaming.host import headstart


def test_plan_covers_the_quantile_plus_poll_and_margin():
    rate, block = 48000, 256                      # 5.33 ms blocks
    fast = np.full(1000, 1.0)                     # a compiled model: 1 ms per block
    p = headstart.plan(fast, block, rate, resampler_frames=69, margin_ms=1.0, poll_ms=1.3)
    assert p.blocks == 1 and p.frames == 69 + 256 and abs(p.buffer_ms - 5.333) < 0.01
    slow = np.concatenate([np.full(980, 2.0), np.full(20, 9.0)])   # p99 9 ms
    p = headstart.plan(slow, block, rate, 69, margin_ms=1.0, poll_ms=1.3)
    assert p.blocks == 3 and p.block_ms_p99 == 9.0            # 9 + 1.3 + 1 = 11.3 ms -> 3 blocks of 5.33
    assert headstart.plan(slow, block, rate, 69, 1.0, 1.3, quantile=50.0).blocks == 1
    assert headstart.plan(slow, block, rate, 0, 1.0, 1.3, fixed_blocks=4).frames == 4 * 256


def test_time_blocks_times_every_block_of_the_given_audio():
    seen = []

    def process(x):
        seen.append(x.shape)
        return x[:100]                            # a stage that withholds 28 frames per block
    t, withheld = headstart.time_blocks(process, 128, 2, 48000, seconds=0.5)
    assert len(t) == len(seen) == int(0.5 * 48000 / 128) and set(seen) == {(128, 2)}
    assert (t >= 0).all() and withheld == 28 * len(seen)
