"""What happens to the stems between separation and the stem sum: key change, per-stem effect chains,
and the delays that keep every stem aligned; then the mix chain after the sum.

Stem i is delayed by d_i = (key shift latency if the key applies to it) + (its chain's latency); every stem
is delayed further by max(d) - d_i, so all stems leave `process_stems` aligned, `stem_latency` samples
late. The mix chain adds `mix_latency`. Routed stems (direct outs) and the routed dry input are delayed
to line up with the mix: everything that reaches an output is `latency_samples` behind the separated
stems. Runs on the worker thread at the model rate. Shapes: (S, C, n) stems, (C, n) mix.
"""
from __future__ import annotations

import numpy as np

from core.errors import UserError

from ..control.registry import Control, ControlRegistry
from .delay import DelayLine
from .effects import ChainsConfig, EffectChain, EffectSpec, parse_fx
from .keyshift import KeyChange, KeyConfig

KNOWN_STEMS = ("vocals", "accompaniment", "drums", "bass", "other")


def chain_specs(cfg: ChainsConfig, fx_args: list[str], stems: tuple[str, ...],
                known_stems: tuple[str, ...] = KNOWN_STEMS) -> dict[str, tuple[EffectSpec, ...]]:
    """config `chains:` + `--fx` -> target -> effect specs. A target given with --fx replaces its config
    chain. Config chains for stems this model lacks (but that other models have) are skipped."""
    targets = (*stems, "mix", "mic")
    out: dict[str, tuple[EffectSpec, ...]] = {}
    for target, specs in cfg.chains.items():
        if target in targets:
            out[target] = tuple(specs)
        elif target not in known_stems:
            raise UserError(f"config chains: unknown target {target!r}; expected a stem "
                            f"({', '.join(sorted(set(stems) | set(known_stems)))}), mix or mic")
    cli: dict[str, list[EffectSpec]] = {}
    for arg in fx_args:
        target, spec = parse_fx(arg)
        if target not in targets:
            raise UserError(f"--fx {arg}: unknown target {target!r}; expected one of: {', '.join(targets)}")
        cli.setdefault(target, []).append(spec)
    out.update({t: tuple(v) for t, v in cli.items()})
    return {t: v for t, v in out.items() if v}


class StemEffects:
    """`process_stems` (S, C, n) -> (S, C, n) and `process_mix` (C, n) -> (C, n), both length-preserving."""

    def __init__(self, stems: tuple[str, ...], sample_rate: int, specs: dict[str, tuple[EffectSpec, ...]],
                 key: KeyChange | None, channels: int = 2):
        self.stems = tuple(stems)
        self.sample_rate = int(sample_rate)
        self.chains = {s: EffectChain(s, specs[s], sample_rate, channels) for s in self.stems if specs.get(s)}
        self.mix_chain = EffectChain("mix", specs["mix"], sample_rate, channels) if specs.get("mix") else None
        self.key = key if key is not None and key.stages else None
        own = [(self.key.latency_samples if self.key and i in self.key.stages else 0)
               + (self.chains[s].latency_samples if s in self.chains else 0) for i, s in enumerate(self.stems)]
        self.stem_latency = max(own, default=0)
        self.mix_latency = self.mix_chain.latency_samples if self.mix_chain else 0
        self.latency_samples = self.stem_latency + self.mix_latency
        self._align = [DelayLine(channels, self.stem_latency - d) if self.stem_latency - d else None for d in own]
        self._direct = [DelayLine(channels, self.mix_latency) for _ in self.stems] if self.mix_latency else None
        self.latency_by_stem = dict(zip(self.stems, own))

    @property
    def active(self) -> bool:
        return bool(self.chains or self.mix_chain or self.key)

    def process_stems(self, stems: np.ndarray) -> np.ndarray:
        assert stems.ndim == 3 and stems.shape[0] == len(self.stems), f"expected ({len(self.stems)}, C, n), got {stems.shape}"
        if stems.shape[-1] == 0 or not (self.chains or self.key):
            return stems
        out = np.empty(stems.shape, np.float32)
        for i, s in enumerate(self.stems):
            x = stems[i]
            if self.key is not None:
                x = self.key.process(i, x)
            chain = self.chains.get(s)
            if chain is not None:
                x = chain.process(x)
            if self._align[i] is not None:
                x = self._align[i].process(x)
            out[i] = x
        return out

    def process_mix(self, mix: np.ndarray) -> np.ndarray:
        return mix if self.mix_chain is None or mix.shape[-1] == 0 else self.mix_chain.process(mix)

    def align_direct(self, direct: np.ndarray) -> np.ndarray:
        """Routed stems (S, C, n) -> delayed by the mix chain's latency, so they line up with the mix."""
        if self._direct is None or direct.shape[-1] == 0:
            return direct
        return np.stack([d.process(direct[i]) for i, d in enumerate(self._direct)])

    def register(self, registry: ControlRegistry) -> None:
        for chain in (*self.chains.values(), *([self.mix_chain] if self.mix_chain else [])):
            chain.register(registry)

    def describe(self) -> dict:
        return {"chains": {t: c.describe() for t, c in self.chains.items()}
                | ({"mix": self.mix_chain.describe()} if self.mix_chain else {}),
                "latency_samples": self.latency_samples, "latency_by_stem": self.latency_by_stem}


def build_key(stems: tuple[str, ...], sample_rate: int, cfg: KeyConfig, semitones: float | None,
              key_bound: bool) -> KeyChange | None:
    """The key change, or None when the chain must stay bit-identical (key 0 and nothing can change it)."""
    start = cfg.semitones if semitones is None else float(semitones)
    live = cfg.live == "on" or (cfg.live == "auto" and key_bound)
    if start == 0 and not live:
        return None
    key = KeyChange(stems, sample_rate, cfg, start, live)
    return key if key.stages else None


def register_key(registry: ControlRegistry, key: KeyChange | None, cfg: KeyConfig) -> None:
    """The `key` control (semitones, whole steps from a MIDI fader; fractions from the CLI or a UI)."""
    if key is None:
        return
    registry.add(Control("key", -cfg.range, cfg.range, key.semitones, key.set, "st", "linear", midi_step=1.0))
