"""A run's settings: config.yaml, `--config` and the flags that change a section, built and checked once.

The first step of a run (settings -> plan -> build -> host, see `streaming/plan.py`). Every section
`python -m streaming` reads is built here, once, as the dataclass its module declares; the flags that
override a host setting (`--blocksize`, `--latency`, `--late`, `--samplerate`) and `--latency-mode` are
applied here, and `host_flags` remembers which of them the command line gave, so that a run which cannot
honour one refuses it (`plan.plan`).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

from core.errors import UserError
from core.schema import replace

from .control.midi import MidiConfig
from .engine.separator import EngineConfig
from .host.config import HostConfig
from .host.latency_modes import LatencyMode
from .processing.effects import ChainsConfig
from .processing.keyshift import KeyConfig
from .processing.meters import MeterConfig
from .processing.mic import MicConfig
from .processing.routing import RoutingConfig
from .processing.stem_mixer import MixerConfig
from .ui.mixer_view import UiConfig

HOST_FLAGS = {"blocksize": "--blocksize", "latency": "--latency", "late_policy": "--late", "samplerate": "--samplerate"}


@dataclass(frozen=True)
class Settings:
    """Every config section a run reads, checked, with the command line's host overrides applied."""

    config: dict                     # the merged configuration (model presets: model.resolve_separator reads it)
    host: HostConfig
    engine: EngineConfig
    mixer: MixerConfig
    midi: MidiConfig
    chains: ChainsConfig
    key: KeyConfig
    mic: MicConfig
    routing: RoutingConfig
    meters: MeterConfig
    ui: UiConfig
    mode: LatencyMode | None = None  # --latency-mode, when given
    host_flags: frozenset[str] = field(default_factory=frozenset)  # HostConfig fields the command line set

    def flag(self, name: str) -> str:
        """The command-line flag of a host setting (for messages)."""
        return HOST_FLAGS[name]

    def model_choice(self, checkpoint: str | None, preset: str | None) -> tuple[str | None, str | None]:
        """(checkpoint, preset) to load: what the flags name, else the latency mode's choice, else the default."""
        if checkpoint or preset or self.mode is None:
            return checkpoint, preset
        return self.mode.model_choice()


SECTION_TYPES = {"host": HostConfig, "streaming": EngineConfig, "mixer": MixerConfig, "midi": MidiConfig,
                 "chains": ChainsConfig, "key": KeyConfig, "mic": MicConfig, "routing": RoutingConfig,
                 "meters": MeterConfig, "ui": UiConfig}


def load_settings(config_path: str | None = None, blocksize: int | None = None, latency: str | None = None,
                  late: str | None = None, samplerate: int | None = None, latency_mode: str | None = None,
                  hops_per_step: int | None = None) -> Settings:
    """config.yaml + the `--config` file + the host flags (None: not given) -> Settings. A bad value is a
    UserError naming the section and key, or the flag. `hops_per_step` (--hops-per-step) wins over the
    latency mode's, which wins over streaming.hops_per_step."""
    from core.config import resolve_sections

    from . import COMMAND
    config, checked = resolve_sections(config_path, command=COMMAND)
    built = {name: checked[name] if name in checked else cls.from_config(config)
             for name, cls in SECTION_TYPES.items()}
    host = built["host"]
    given = {k: v for k, v in (("blocksize", blocksize), ("latency", latency), ("late_policy", late),
                               ("samplerate", samplerate)) if v is not None}
    if given:
        host = replace(host, HOST_FLAGS, **given)
    mode = None
    if latency_mode:
        modes = checked.get("latency_modes") or {}
        if latency_mode not in modes:
            raise UserError(f"--latency-mode {latency_mode}: expected one of {', '.join(modes) or '(none configured)'}")
        mode = modes[latency_mode]
        host = mode.host_config(host, blocksize_given=blocksize is not None)
    engine = built["streaming"]
    if hops_per_step is not None:
        engine = replace(engine, {"hops_per_step": "--hops-per-step"}, hops_per_step=hops_per_step)
    elif mode is not None and mode.hops_per_step is not None:
        engine = replace(engine, {}, hops_per_step=mode.hops_per_step)
    return Settings(config=config, host=host, engine=engine, mixer=built["mixer"], midi=built["midi"],
                    chains=built["chains"], key=built["key"], mic=built["mic"], routing=built["routing"],
                    meters=built["meters"], ui=built["ui"], mode=mode, host_flags=frozenset(given))


def settings_from_args(args) -> Settings:
    """The parsed `python -m streaming` arguments -> Settings."""
    return load_settings(args.config, args.blocksize, args.latency, args.late, args.samplerate, args.latency_mode,
                         args.hops_per_step)


def load_separator(settings: Settings, checkpoint: str | None, preset: str | None):
    """The causal separator a run uses -> (model.Separator, a description of where it came from)."""
    import model
    checkpoint, preset = settings.model_choice(checkpoint, preset)
    sep, where = model.resolve_separator(checkpoint, preset, settings.config, warn=lambda m: print(m, file=sys.stderr))
    if preset:
        print(f"streaming: using the {where} (no checkpoint)", file=sys.stderr)
    if not sep.causal:
        raise UserError(f"{where}: expected a causal (streaming) model, got an offline one")
    return sep, where
