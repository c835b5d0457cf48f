"""What the terminal mixer shows and what its keys do, without the terminal: strips, their controls, the
engine line, and the requests a key press sends. `mixer_app.py` draws it with textual.

Every change goes through the host's `ControlRegistry` queue (the one MIDI uses); every value shown is read
back from the registry, so a fader MIDI moved moves on screen, and a fader the keyboard moved is where
MIDI's next relative step starts from. Meters come from `meters.Meters` (written by the worker, read here
without a lock); counters from the host's `RunStats`.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from core.errors import ConfigError, UserError
from core.schema import build, setting

# The parameter a chain's effect shows on its strip (the one a performer turns): effect -> parameter.
MAIN_PARAMS = {
    "gain": "gain_db", "reverb": "wet_level", "delay": "mix", "chorus": "mix", "phaser": "mix",
    "compressor": "threshold_db", "limiter": "threshold_db", "noise_gate": "threshold_db",
    "highpass": "cutoff_frequency_hz", "lowpass": "cutoff_frequency_hz", "peak": "gain_db",
    "low_shelf": "gain_db", "high_shelf": "gain_db", "distortion": "drive_db", "pitch_shift": "semitones",
}
SHORT = {"wet_level": "wet", "threshold_db": "thr", "cutoff_frequency_hz": "freq", "gain_db": "gain",
         "drive_db": "drive", "semitones": "st"}

KEYS_HELP = ("up/down select strip (1-9 jump)   left/right fader -/+1 dB   pgup/pgdn +/-6 dB   0 unity   "
             "m mute   s solo   [ ] key -/+1   \\ key 0   p next parameter   , . parameter -/+   q quit")


@dataclass(frozen=True)
class UiConfig:
    """`config.yaml` section `ui`."""

    enabled: str = setting("auto", choices=("auto", "on", "off"))  # auto: on when stdin and stderr are terminals
                                                    # and the run is live | on | off
    refresh_hz: float = setting(15.0, gt=0, le=20)     # screen refreshes per second (at most 20)
    stats_interval_s: float = setting(0.5, gt=0, le=60)  # how often the engine line (step p99, latency, counters) is recomputed
    fader_step_db: float = setting(1.0, gt=0, le=24)   # left / right
    fader_coarse_db: float = setting(6.0, gt=0, le=48)  # page up / page down
    fader_floor_db: float = setting(-60.0, ge=-200, lt=0)  # bottom of the fader scale; a step below it turns the stem off
    meter_floor_db: float = setting(-60.0, ge=-200, le=0)  # meter scale, dBFS
    meter_top_db: float = setting(6.0, ge=-60, le=24)
    param_steps: int = setting(40, ge=1, le=10000)     # key presses from one end of an effect parameter's range to the other

    def __post_init__(self) -> None:
        if not self.meter_floor_db < self.meter_top_db:
            raise ConfigError("config ui: expected meter_floor_db < meter_top_db, got "
                              f"{self.meter_floor_db:g} / {self.meter_top_db:g}")

    @classmethod
    def from_config(cls, config: dict) -> UiConfig:
        return build(cls, config.get("ui"), "config ui")


def want_ui(flag: bool | None, cfg: UiConfig, live: bool, quiet: bool) -> bool:
    """Whether this run shows the mixer. `--ui` / `--no-ui` win; otherwise config `ui.enabled`; `auto` is on
    for a live run started from a terminal (stdin, for the keys, and stderr, where textual draws and the status
    line goes, both terminals) without `--quiet`."""
    if flag is None:
        flag = {"on": True, "off": False}.get(cfg.enabled)
    if flag is not None:
        if flag and not live:
            raise UserError("--ui: expected a live run (an audio device as input or output); a file -> file run "
                            "goes as fast as it can and has nothing to show live")
        return flag
    return live and not quiet and sys.stdin.isatty() and sys.stderr.isatty()


# ----------------------------------------------------------------------------------------------------
# Strips and their controls

@dataclass
class Strip:
    """One row of the mixer: a stem, the master bus or the mic."""

    name: str
    fader: str                       # control name of its fader (dB)
    meter: int | None                # index into the meters (None: not metered)
    mute: str | None = None
    solo: str | None = None
    params: list[str] = field(default_factory=list)    # main parameter of each effect of its chain
    param: int = 0                   # the parameter `,` / `.` change


def chain_params(target: str, effects: list[tuple[str, str]], names: list[str]) -> list[str]:
    """The main parameter of each effect (name, kind) of `target`'s chain that the registry has."""
    out = []
    for name, kind in effects:
        prefix = f"{target}.{name}."
        wanted = prefix + MAIN_PARAMS.get(kind, "")
        if wanted in names:
            out.append(wanted)
        else:                            # a VST3 (or an effect without a main parameter): its first parameter
            out.extend([n for n in names if n.startswith(prefix)][:1])
    return out


def build_strips(stems: tuple[str, ...], controls, chains: dict[str, list[tuple[str, str]]]) -> list[Strip]:
    """Stems, then the master, then the mic when the run has one."""
    names = controls.names()
    strips = [Strip(s, f"{s}.gain_db", i, f"{s}.mute", f"{s}.solo", chain_params(s, chains.get(s, []), names))
              for i, s in enumerate(stems)]
    strips.append(Strip("master", "master_db", len(stems), params=chain_params("mix", chains.get("mix", []), names)))
    if "mic.level_db" in names:
        strips.append(Strip("mic", "mic.level_db", None, params=chain_params("mic", chains.get("mic", []), names)))
    return strips


def fader_request(controls, name: str, by_db: float, floor_db: float) -> None:
    """Move a dB fader by `by_db` through the queue. A relative step (applied against the value the worker
    holds, so MIDI and the keyboard never fight); from off (-inf) up it starts at the floor, below the
    floor it turns off."""
    value = controls.value(name)
    if value == -math.inf:
        if by_db > 0:
            controls.request(name, floor_db)
    elif value + by_db < floor_db:
        controls.request(name, -math.inf)
    else:
        controls.request_step(name, by_db)


def param_request(controls, name: str, direction: int, steps: int) -> None:
    """Move an effect parameter one key press up (+1) or down (-1) its range: whole dB for dB parameters,
    whole semitones for `st`, a factor for log-scaled ones (frequencies, times), else range / steps."""
    c = controls.get(name)
    if c.unit in ("dB", "st"):
        controls.request_step(name, float(direction))
    elif c.curve == "log" and c.minimum > 0:
        controls.request(name, c.value * (c.maximum / c.minimum) ** (direction / steps))
    else:
        controls.request_step(name, direction * (c.maximum - c.minimum) / steps)


def format_value(value: float, unit: str) -> str:
    if value == -math.inf:
        return "off"
    if unit == "dB":
        return f"{value:+.1f} dB"
    if unit == "st":
        return f"{value:+.1f} st"
    if unit == "Hz":
        return f"{value / 1000:.2f} kHz" if value >= 1000 else f"{value:.0f} Hz"
    if unit in ("ms", "s"):
        return f"{value:.3g} {unit}"
    return f"{value:.2f}"


def param_label(name: str, controls) -> str:
    """`vocals.reverb.wet_level` -> `reverb wet 0.30`."""
    c = controls.get(name)
    _, effect, param = name.split(".", 2)
    return f"{effect} {SHORT.get(param, param)} {format_value(c.value, c.unit)}"


def level_text(db: float) -> str:
    return "  -inf" if db <= -120 else f"{db:6.1f}"


# ----------------------------------------------------------------------------------------------------
# The running host, as the mixer sees it

class LiveView:
    """A running `LiveHost` seen from the main thread: controls, meters, counters, stop condition."""

    def __init__(self, host, t0: float, duration: float | None, model_name: str = ""):
        self.host, self.t0, self.duration, self.model_name = host, t0, duration, model_name
        self.controls = host.controls
        self.meters = host.chain.meters
        self.engine = host.engine
        self.stems = tuple(host.mixer.stems)
        self.stop_requested = False
        self._p99: float | None = None
        self._p99_at = -math.inf

    @property
    def midi(self):
        return self.host.midi

    def running(self) -> bool:
        return not self.stop_requested and self.host.running(self.t0, self.duration)

    def chains(self) -> dict[str, list[tuple[str, str]]]:
        """target -> [(effect name, effect kind)] of every chain of the run."""
        out: dict[str, list[tuple[str, str]]] = {}
        fx = self.host.chain.fx
        if fx is not None:
            for target, chain in (*fx.chains.items(), *((("mix", fx.mix_chain),) if fx.mix_chain else ())):
                out[target] = [(e.name, e.effect) for e in chain.effects]
        mic = self.host.mic
        if mic is not None and hasattr(mic, "chain"):
            out["mic"] = [(e.name, e.effect) for e in mic.chain.effects]
        return out

    def stats(self):
        self.host.collect(time.perf_counter() - self.t0)
        return self.host.stats

    def step_p99_ms(self, every_s: float = 1.0) -> float | None:
        """p99 of the recent per-hop compute times (recomputed at most every `every_s`)."""
        now = time.perf_counter()
        if now - self._p99_at >= every_s:
            t = self.engine.step_times_ms
            self._p99 = float(np.percentile(t, 99)) if len(t) else None
            self._p99_at = now
        return self._p99

    def engine_lines(self) -> list[str]:
        """The engine panel: model and engine, latency and its parts, load and counters."""
        s, e = self.stats(), self.engine
        device = "GPU" if e.device.type == "cuda" else "CPU"
        threads = f", {e.threads} thread{'s' if e.threads != 1 else ''}" if device == "CPU" else ""
        prio = "" if s.extra.get("worker_realtime", True) else "  (worker at normal priority)"
        hop_ms = 1000.0 * e.hop_length / e.sample_rate
        p99 = self.step_p99_ms()
        midi = self.midi
        midi_text = "MIDI off" if midi is None else f"MIDI {midi.messages} msgs ({midi.ignored} ignored)"
        return [
            f"{self.model_name or 'model'}  |  engine {e.engine_kind} on {device}{threads}{prio}",
            (f"latency {s.total_latency_ms:.1f} ms = model {s.algorithmic_latency_ms:.1f} + chains "
             f"{s.chain_latency_ms:.1f} + resampling {s.resampler_latency_ms:.1f} + buffers "
             f"{s.buffer_latency_ms:.1f} + device {s.device_latency_ms:.1f}"),
            (f"load {100 * s.worker_load:3.0f}%  |  step p99 {'-' if p99 is None else f'{p99:.2f}'} ms of "
             f"{hop_ms:.1f} ms hop  |  late blocks {s.late_blocks}  |  xruns in {s.input_overflows} out "
             f"{s.output_underflows}  |  {midi_text}"),
        ]
