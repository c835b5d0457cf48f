"""Effect chains: specs from YAML (`chains:`) and `--fx`, checked against pedalboard's classes, built into
pedalboard objects and run block by block with their state kept (reset=False): tails and filter states
carry across blocks, so a chain streamed in blocks equals one pedalboard call on the whole signal.

A chain spec is a list of effects; an effect is `{effect: NAME, PARAM: VALUE, ...}` in YAML or
`NAME:PARAM=VALUE,PARAM=VALUE` on the command line (`--fx vocals=reverb:room_size=0.7,wet_level=0.3`).
Built-in effects are pedalboard's (table `EFFECTS`: name -> class and the range of each parameter),
`pitch_shift` is the low-latency shifter of `keyshift.py`, and `vst3` loads a user's VST3 plugin with
`pedalboard.load_plugin` (`path=...`; its float parameters by pedalboard's normalised names).

Latency: pedalboard's built-in effects here add none (tested); a run of them costs a hold-back of 2 samples
(pedalboard guesses the channel layout from the array's shape, so a 1-sample block would be misread). A
plugin that reports latency makes pedalboard withhold that many samples at the start of a stream;
`PedalboardStage` measures that with silence when the chain is built and prepends as many zeros, so the
stage outputs exactly as many samples as it is given, delayed by `latency_samples`. `pitch_shift` has its window as latency. The chain
host (`stem_fx.py`) delays the other stems to match.
Shapes: (C, n) channels-first, float32.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import UserError

from ..control.registry import Control, ControlRegistry


@dataclass(frozen=True)
class Param:
    minimum: float
    maximum: float
    unit: str = ""
    curve: str = "linear"       # MIDI mapping: linear | log


# name -> (pedalboard class name, {parameter: range}). The ranges are what a chain and a MIDI control may
# set; pedalboard's own checks are stricter for some (e.g. Reverb's 0..1) and absent for others.
EFFECTS: dict[str, tuple[str, dict[str, Param]]] = {
    "gain": ("Gain", {"gain_db": Param(-60.0, 24.0, "dB")}),
    "reverb": ("Reverb", {"room_size": Param(0.0, 1.0), "damping": Param(0.0, 1.0), "wet_level": Param(0.0, 1.0),
                          "dry_level": Param(0.0, 1.0), "width": Param(0.0, 1.0), "freeze_mode": Param(0.0, 1.0)}),
    "delay": ("Delay", {"delay_seconds": Param(0.0, 2.0, "s"), "feedback": Param(0.0, 1.0), "mix": Param(0.0, 1.0)}),
    "chorus": ("Chorus", {"rate_hz": Param(0.0, 20.0, "Hz"), "depth": Param(0.0, 1.0),
                          "centre_delay_ms": Param(1.0, 100.0, "ms", "log"), "feedback": Param(-0.95, 0.95),
                          "mix": Param(0.0, 1.0)}),
    "compressor": ("Compressor", {"threshold_db": Param(-60.0, 0.0, "dB"), "ratio": Param(1.0, 20.0, "", "log"),
                                  "attack_ms": Param(0.1, 500.0, "ms", "log"),
                                  "release_ms": Param(1.0, 5000.0, "ms", "log")}),
    "limiter": ("Limiter", {"threshold_db": Param(-40.0, 0.0, "dB"), "release_ms": Param(1.0, 2000.0, "ms", "log")}),
    "highpass": ("HighpassFilter", {"cutoff_frequency_hz": Param(20.0, 20000.0, "Hz", "log")}),
    "lowpass": ("LowpassFilter", {"cutoff_frequency_hz": Param(20.0, 20000.0, "Hz", "log")}),
    "peak": ("PeakFilter", {"cutoff_frequency_hz": Param(20.0, 20000.0, "Hz", "log"), "gain_db": Param(-24.0, 24.0, "dB"),
                            "q": Param(0.1, 18.0, "", "log")}),
    "low_shelf": ("LowShelfFilter", {"cutoff_frequency_hz": Param(20.0, 20000.0, "Hz", "log"),
                                     "gain_db": Param(-24.0, 24.0, "dB"), "q": Param(0.1, 18.0, "", "log")}),
    "high_shelf": ("HighShelfFilter", {"cutoff_frequency_hz": Param(20.0, 20000.0, "Hz", "log"),
                                       "gain_db": Param(-24.0, 24.0, "dB"), "q": Param(0.1, 18.0, "", "log")}),
    "noise_gate": ("NoiseGate", {"threshold_db": Param(-100.0, 0.0, "dB"), "ratio": Param(1.0, 20.0, "", "log"),
                                 "attack_ms": Param(0.1, 500.0, "ms", "log"), "release_ms": Param(1.0, 5000.0, "ms", "log")}),
    "phaser": ("Phaser", {"rate_hz": Param(0.0, 20.0, "Hz"), "depth": Param(0.0, 1.0),
                          "centre_frequency_hz": Param(20.0, 20000.0, "Hz", "log"), "feedback": Param(-0.95, 0.95),
                          "mix": Param(0.0, 1.0)}),
    "distortion": ("Distortion", {"drive_db": Param(0.0, 60.0, "dB")}),
    "pitch_shift": ("PitchShifter", {"semitones": Param(-24.0, 24.0, "st")}),
}
ALIASES = {"eq": "peak", "peak_eq": "peak", "hpf": "highpass", "lpf": "lowpass", "comp": "compressor"}
RESERVED = ("effect", "name", "path")      # keys of an effect spec that are not parameters
MAX_BLOCK = 8192                           # samples per pedalboard call (see PedalboardStage)


@dataclass(frozen=True)
class EffectSpec:
    """One effect of a chain, as written by the user (not yet checked against pedalboard)."""

    effect: str
    params: tuple = ()                   # ((name, value), ...) in the order given
    name: str | None = None              # control name inside the chain (default: the effect's name)
    path: str | None = None              # vst3 only

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"effect": self.effect}
        if self.name:
            d["name"] = self.name
        if self.path:
            d["path"] = self.path
        d.update(dict(self.params))
        return d


@dataclass(frozen=True)
class ChainsConfig:
    """`config.yaml` section `chains`: target (a stem name, `mix` or `mic`) -> list of effects."""

    chains: dict = field(default_factory=dict)      # target -> tuple[EffectSpec, ...]

    @classmethod
    def from_config(cls, config: dict) -> ChainsConfig:
        section = config.get("chains") or {}
        if not isinstance(section, dict):
            raise UserError("config section 'chains': expected a mapping of stem / mix / mic -> list of effects")
        chains = {}
        for target, items in section.items():
            if items is None:
                chains[str(target)] = ()
                continue
            if not isinstance(items, list):
                raise UserError(f"config chains.{target}: expected a list of effects like "
                                "[{effect: reverb, wet_level: 0.3}], got " + repr(items)[:80])
            chains[str(target)] = tuple(parse_effect_item(it, f"config chains.{target}[{i}]")
                                        for i, it in enumerate(items))
        return cls(chains)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(str(value).strip())
        except ValueError:
            raise UserError(f"{where}: expected a number, got {value!r}") from None
    value = float(value)
    if not math.isfinite(value):
        raise UserError(f"{where}: expected a finite number, got {value!r}")
    return value


def parse_effect_item(item: Any, where: str) -> EffectSpec:
    """A YAML mapping {effect: NAME, PARAM: VALUE, ...} -> EffectSpec (names checked later, on build)."""
    if not isinstance(item, dict) or not isinstance(item.get("effect"), str):
        raise UserError(f"{where}: expected a mapping with an 'effect' name, e.g. {{effect: reverb, wet_level: 0.3}}, "
                        f"got {item!r}"[:200])
    effect = item["effect"].strip().lower()
    params = tuple((str(k), _number(v, f"{where} {k}")) for k, v in item.items() if k not in RESERVED)
    name = item.get("name")
    if name is not None and (not isinstance(name, str) or not name.isidentifier()):
        raise UserError(f"{where}: expected 'name' to be an identifier like lead_verb, got {name!r}")
    path = item.get("path")
    return EffectSpec(effect, params, name, None if path is None else str(path))


def parse_fx(spec: str) -> tuple[str, EffectSpec]:
    """`--fx vocals=reverb:room_size=0.7,wet_level=0.3` -> ("vocals", EffectSpec). A VST3 plugin:
    `--fx vocals=vst3:path=/path/Plugin.vst3,mix=0.5`."""
    usage = "expected --fx TARGET=EFFECT[:PARAM=VALUE,...] (e.g. vocals=reverb:room_size=0.7)"
    target, sep, rest = spec.partition("=")
    if not sep or not target.strip() or not rest.strip():
        raise UserError(f"{usage}, got {spec!r}")
    effect, _, arg_text = rest.partition(":")
    item: dict[str, Any] = {"effect": effect.strip()}
    for part in filter(None, (p.strip() for p in arg_text.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise UserError(f"{usage}; {part!r} is not PARAM=VALUE")
        key = key.strip()
        item[key] = value.strip() if key in ("path", "name") else value
    return target.strip(), parse_effect_item(item, f"--fx {spec}")


# ----------------------------------------------------------------------------------------------------
# Building

def _effect_name(effect: str) -> str:
    effect = ALIASES.get(effect, effect)
    if effect != "vst3" and effect not in EFFECTS:
        raise UserError(f"unknown effect {effect!r}; expected one of: {', '.join([*EFFECTS, 'vst3'])}")
    return effect


def _check_value(where: str, pname: str, value: float, p: Param) -> float:
    if not p.minimum <= value <= p.maximum:
        raise UserError(f"{where}: {pname} = {value:g} is out of range; expected {p.minimum:g}..{p.maximum:g}"
                        + (f" {p.unit}" if p.unit else ""))
    return value


def load_vst3(path: str | None, where: str):
    """`pedalboard.load_plugin` with user-facing errors -> an effect plugin."""
    import pedalboard
    if not path:
        raise UserError(f"{where}: effect vst3 needs path=/path/to/Plugin.vst3")
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"{where}: VST3 plugin not found: {p}; expected the path of a .vst3 bundle")
    if p.suffix.lower() != ".vst3":
        raise UserError(f"{where}: {p} is not a VST3 plugin; expected a .vst3 bundle (Linux loads VST3 only)")
    try:
        plugin = pedalboard.load_plugin(str(p))
    except Exception as e:  # noqa: BLE001 - JUCE raises several types for unloadable files
        raise UserError(f"{where}: cannot load {p} as a VST3 plugin ({str(e).splitlines()[0][:160]}); "
                        "expected a working VST3 effect") from None
    if getattr(plugin, "is_instrument", False) and not getattr(plugin, "is_effect", True):
        raise UserError(f"{where}: {p} is an instrument; expected an audio effect")
    return plugin


def _vst3_params(plugin) -> dict[str, Param]:
    """The float parameters of a loaded plugin with their ranges (boolean / choice ones are left out)."""
    out = {}
    for pname, param in getattr(plugin, "parameters", {}).items():
        lo, hi = getattr(param, "min_value", None), getattr(param, "max_value", None)
        if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and not isinstance(lo, bool) and hi > lo:
            out[pname] = Param(float(lo), float(hi), str(getattr(param, "label", "") or ""))
    return out


@dataclass
class BuiltEffect:
    name: str                  # unique inside its chain: reverb, reverb2, lead_verb
    effect: str
    plugin: Any                # a pedalboard plugin or a keyshift.PitchShifter
    params: dict               # parameter -> Param (the settable ones)


def build_effect(spec: EffectSpec, sample_rate: int, channels: int, where: str) -> BuiltEffect:
    import pedalboard

    from .keyshift import KeyConfig, PitchShifter
    effect = _effect_name(spec.effect)
    values = dict(spec.params)
    if effect == "vst3":
        plugin = load_vst3(spec.path, where)
        ranges = _vst3_params(plugin)
        for pname, value in values.items():
            if pname not in ranges:
                raise UserError(f"{where}: the plugin has no float parameter {pname!r}; expected one of: "
                                f"{', '.join(ranges) or 'none'}")
            setattr(plugin, pname, _check_value(where, pname, value, ranges[pname]))
        return BuiltEffect(spec.name or "vst3", effect, plugin, ranges)
    if spec.path is not None:
        raise UserError(f"{where}: 'path' is only for effect vst3")
    cls_name, ranges = EFFECTS[effect]
    for pname, value in values.items():
        if pname not in ranges:
            raise UserError(f"{where}: effect {effect} has no parameter {pname!r}; expected one of: {', '.join(ranges)}")
        _check_value(where, pname, value, ranges[pname])
    if effect == "pitch_shift":
        cfg = KeyConfig()
        plugin = PitchShifter(sample_rate, channels, values.get("semitones", 0.0), cfg.n_fft, cfg.hop, cfg.glide_ms,
                              cfg.peak_floor_db)
    else:
        try:
            plugin = getattr(pedalboard, cls_name)(**values)
        except (ValueError, TypeError) as e:
            raise UserError(f"{where}: {effect}: {str(e).splitlines()[0]}") from None
    return BuiltEffect(spec.name or effect, effect, plugin, ranges)


class PedalboardStage:
    """Consecutive pedalboard plugins as one `pedalboard.Pedalboard`, streamed with reset=False. Outputs as
    many samples as it gets, delayed by `latency_samples`: `channels` samples of hold-back (pedalboard guesses
    the channel layout from the array shape, so it is never called with fewer samples than channels) plus
    what a latent plugin withholds at the start of a stream."""

    def __init__(self, plugins: list, sample_rate: int, channels: int):
        import pedalboard
        self.board = pedalboard.Pedalboard(plugins)
        self.sample_rate, self.channels = sample_rate, channels
        # pedalboard prepares its plugins for the largest block seen so far, and a larger block later
        # prepares them again, which clears reverb / delay tails mid-stream (measured: a 1001-sample call
        # after 1000-sample ones). Prepare once for MAX_BLOCK now; `process` never passes more.
        self.board.process(np.zeros((channels, MAX_BLOCK), np.float32), sample_rate, buffer_size=MAX_BLOCK,
                           reset=False)
        self.board.reset()
        self.withheld = self._withheld() if any(_is_external(p) for p in plugins) else 0
        self.latency_samples = self.channels + self.withheld
        self.underruns = 0
        self.reset()

    def _withheld(self, block: int = 512, seconds: float = 2.0) -> int:
        """Samples the board withholds at the start of a stream (its reported latency), measured on silence."""
        fed = got = stable = 0
        last = -1
        z = np.zeros((self.channels, block), np.float32)
        for _ in range(int(seconds * self.sample_rate / block)):
            got += self.board.process(z, self.sample_rate, buffer_size=block, reset=False).shape[-1]
            fed += block
            stable = stable + 1 if got and fed - got == last else 0
            last = fed - got
            if stable >= 4:
                break
        self.board.reset()
        return fed - got

    def process(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[-1]
        if n == 0:
            return x
        if self._queue.shape[-1]:
            x = np.concatenate([self._queue, x], axis=1)
        if x.shape[-1] > self.channels:
            n_parts = -(-x.shape[-1] // MAX_BLOCK)           # even pieces: none shorter than `channels`
            edges = np.linspace(0, x.shape[-1], n_parts + 1).astype(int)
            parts = [self.board.process(x[:, a:b], self.sample_rate, buffer_size=MAX_BLOCK, reset=False)
                     for a, b in itertools.pairwise(edges)]
            y = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
            self._queue = x[:, :0]
        else:
            y, self._queue = x[:, :0], np.array(x, np.float32)
        joined = np.concatenate([self._pending, y.astype(np.float32, copy=False)], axis=1)
        out = joined[:, :n]
        if out.shape[-1] < n:                      # the plugin withheld more than measured: pad (counted)
            out = np.concatenate([np.zeros((self.channels, n - out.shape[-1]), np.float32), out], axis=1)
            self.underruns += 1
        self._pending = joined[:, n:]
        return out

    def reset(self) -> None:
        self.board.reset()
        self._queue = np.zeros((self.channels, 0), np.float32)
        self._pending = np.zeros((self.channels, self.latency_samples), np.float32)


def _is_external(plugin) -> bool:
    import pedalboard
    return isinstance(plugin, getattr(pedalboard, "ExternalPlugin", ())) or type(plugin).__name__ in (
        "VST3Plugin", "AudioUnitPlugin")


class ShifterStage:
    def __init__(self, shifter):
        self.shifter = shifter
        self.latency_samples = shifter.latency_samples

    def process(self, x: np.ndarray) -> np.ndarray:
        return self.shifter.process(x)

    def reset(self) -> None:
        self.shifter.reset()


class EffectChain:
    """One target's chain: `process(x)` (C, n) -> (C, n), delayed by `latency_samples`."""

    def __init__(self, target: str, specs: tuple, sample_rate: int, channels: int = 2):
        from .keyshift import PitchShifter
        self.target, self.sample_rate, self.channels = target, int(sample_rate), int(channels)
        self.effects: list[BuiltEffect] = []
        seen: dict[str, int] = {}
        for i, spec in enumerate(specs):
            fx = build_effect(spec, self.sample_rate, self.channels, f"chain {target} effect {i + 1} ({spec.effect})")
            seen[fx.name] = seen.get(fx.name, 0) + 1
            if seen[fx.name] > 1:
                if spec.name:
                    raise UserError(f"chain {target}: two effects are named {spec.name!r}; expected unique names")
                fx.name = f"{fx.name}{seen[fx.name]}"
            self.effects.append(fx)
        self.stages: list = []
        run: list = []
        for fx in self.effects:
            if isinstance(fx.plugin, PitchShifter):
                if run:
                    self.stages.append(PedalboardStage(run, self.sample_rate, self.channels))
                    run = []
                self.stages.append(ShifterStage(fx.plugin))
            else:
                run.append(fx.plugin)
        if run:
            self.stages.append(PedalboardStage(run, self.sample_rate, self.channels))
        self.latency_samples = sum(s.latency_samples for s in self.stages)

    def __bool__(self) -> bool:
        return bool(self.stages)

    def process(self, x: np.ndarray) -> np.ndarray:
        for stage in self.stages:
            x = stage.process(x)
        return x

    def reset(self) -> None:
        for stage in self.stages:
            stage.reset()

    def register(self, registry: ControlRegistry) -> None:
        """`TARGET.EFFECT.PARAM` for every settable parameter of every effect."""
        from .keyshift import PitchShifter
        for fx in self.effects:
            for pname, p in fx.params.items():
                if isinstance(fx.plugin, PitchShifter):
                    value, setter = fx.plugin.target, fx.plugin.set_semitones
                else:
                    value = float(getattr(fx.plugin, pname))
                    setter = (lambda v, plugin=fx.plugin, pname=pname: setattr(plugin, pname, v))
                registry.add(Control(f"{self.target}.{fx.name}.{pname}", p.minimum, p.maximum, value, setter, p.unit,
                                     p.curve))

    def describe(self) -> list[dict]:
        return [{"name": fx.name, "effect": fx.effect} for fx in self.effects]
