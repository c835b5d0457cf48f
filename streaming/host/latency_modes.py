"""`--latency-mode lowest | balanced | safe`: one switch for the model, the device block and the safety margin.

Each mode (config.yaml section `latency_modes`) names what it sets; flags given explicitly (--checkpoint,
--preset, --blocksize) win over the mode. The host prints the resulting total at start (model + resampler
+ buffers + device, see LiveHost.plan_headstart).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from core.errors import UserError

from ..engine.separator import check_hops

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "model" / "weights"


@dataclass(frozen=True)
class LatencyMode:
    """One entry of `latency_modes`."""

    name: str
    preset: str | None = None            # model preset (random weights unless `checkpoint` exists); None: the default
    checkpoint: str | None = None        # checkpoint used when the file exists (relative to model/weights/)
    blocksize: int = 256                 # device frames per callback
    prefill_margin_ms: float = 1.0       # safety margin of the output head start (streaming/host/headstart.py)
    prefill_quantile: float = 99.0       # percentile of the measured worker time the head start covers
    resample_quality: str | None = None  # None: host.resample_quality
    hops_per_step: int | str | None = None   # K, or "auto" (the start-up probe picks); None: streaming.hops_per_step
    description: str = ""

    def checkpoint_path(self) -> Path | None:
        if not self.checkpoint:
            return None
        path = Path(self.checkpoint)
        return path if path.is_absolute() else WEIGHTS_DIR / path

    def host_config(self, host_cfg, blocksize_given: bool):
        """host_cfg (host.config.HostConfig) with this mode's block size, margin, quantile and resampler."""
        changes = {"prefill_margin_ms": self.prefill_margin_ms, "prefill_quantile": self.prefill_quantile,
                   "prefill_blocks": "auto"}
        if not blocksize_given:
            changes["blocksize"] = self.blocksize
        if self.resample_quality:
            changes["resample_quality"] = self.resample_quality
        return dataclasses.replace(host_cfg, **changes)

    def model_choice(self) -> tuple[str | None, str | None]:
        """(checkpoint, preset) to run when the user named neither: the mode's checkpoint when it exists,
        else its preset (random weights), else (None, None) = the project's default model."""
        path = self.checkpoint_path()
        if path is not None and path.is_file():
            return str(path), None
        return None, self.preset


def load_modes(config: dict) -> dict[str, LatencyMode]:
    section = config.get("latency_modes") or {}
    known = set(LatencyMode.__dataclass_fields__) - {"name"}
    modes = {}
    for name, values in section.items():
        values = dict(values or {})
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"config latency_modes.{name}: unknown keys {unknown}; expected some of {sorted(known)}")
        mode = LatencyMode(name=name, **values)
        if int(mode.blocksize) < 16:
            raise UserError(f"config latency_modes.{name}.blocksize: expected >= 16 frames, got {mode.blocksize}")
        if mode.hops_per_step is not None:
            check_hops(mode.hops_per_step, f"config latency_modes.{name}.hops_per_step")
        modes[name] = mode
    return modes


def get_mode(config: dict, name: str) -> LatencyMode:
    modes = load_modes(config)
    if name not in modes:
        raise UserError(f"--latency-mode {name}: expected one of {', '.join(modes) or '(none configured)'}")
    return modes[name]
