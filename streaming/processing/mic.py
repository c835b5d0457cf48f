"""The singer's microphone: one more input channel, its own effect chain, mixed into the output without
the separation delay.

The mic is not separated. The worker runs its chain (`chains.mic`; default a gentle compressor and a
reverb) at the device rate as soon as the input block arrives, before the separation of that block, and
hands it to the audio callback through its own ring with a short head start (`mic.prefill_blocks`), so
the singer hears themself after about (1 + prefill_blocks) blocks plus the device latency, not after the
remix's model + resampler + buffer latency. The callback adds it to the channels the mic is routed to
(by default those of the mix). Controls: `mic.level_db` (fader law) and every chain parameter
(`mic.reverb.wet_level`, ...). Shapes: (n,) mono in, (n, 2) out, frames-major like the device.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.errors import UserError
from core.schema import build, setting

from ..control.registry import Control, ControlRegistry
from .effects import EffectChain, EffectSpec
from .stem_mixer import db_to_gain


@dataclass(frozen=True)
class MicConfig:
    """`config.yaml` section `mic`."""

    channel: int | None = setting(None, ge=1, le=1024)  # 1-based input channel of the mic (`--mic` overrides)
    level_db: float = setting(0.0, ge=-60, le=24)    # mic level into the output
    prefill_blocks: int = setting(2, ge=1, le=64)    # head start of the mic ring (blocks): the worker's worst delay

    @classmethod
    def from_config(cls, config: dict) -> MicConfig:
        return build(cls, config.get("mic"), "config mic")


class MicPath:
    """`process(x)` (n,) mono mic -> (n, 2): chain, then the level (ramped over the block)."""

    def __init__(self, specs: tuple[EffectSpec, ...], sample_rate: int, level_db: float = 0.0):
        self.chain = EffectChain("mic", specs, sample_rate, channels=2)
        self.latency_samples = self.chain.latency_samples
        if math.isnan(level_db):
            raise UserError("mic level: expected a number in dB, got nan")
        self.level_db = float(level_db)
        self._gain = db_to_gain(self.level_db)

    def set_level_db(self, db: float) -> None:
        self.level_db = float(db)

    def process(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        stereo = np.ascontiguousarray(np.broadcast_to(np.asarray(x, np.float32)[None, :], (2, n)))
        y = self.chain.process(stereo) if self.chain else stereo
        target = db_to_gain(self.level_db)
        if target == self._gain or n == 0:
            y = y * np.float32(target)
        else:
            y = y * np.linspace(self._gain, target, n + 1, dtype=np.float32)[1:]
            self._gain = target
        return np.ascontiguousarray(y.T, np.float32)

    def register(self, registry: ControlRegistry, max_db: float = 12.0, fader_max_db: float = 0.0) -> None:
        registry.add(Control("mic.level_db", -math.inf, max_db, self.level_db, self.set_level_db, "dB", "fader",
                             fader_max_db=fader_max_db))
        self.chain.register(registry)
