"""The control registry: every live parameter of the host under one name, with its range and current value.

Names: `master_db`, `STEM.gain_db`, `STEM.mute`, `STEM.solo` (the stem mixer), `key` (karaoke key, semitones),
`mic.level_db`, and one per effect parameter: `TARGET.EFFECT.PARAM` (e.g. `vocals.reverb.wet_level`,
`mic.compressor.threshold_db`, `mix.delay.feedback`), where TARGET is a stem, `mix` or `mic` and EFFECT the
effect's name in its chain (`reverb`, `reverb2` for a second one, or the name given in the chain spec).

Any thread (MIDI, a UI, the CLI) asks for a change with `request`, `request_toggle` or `request_step`; the
request is checked and queued in a bounded `collections.deque` (append / popleft are atomic in CPython: no
lock). The worker thread applies the queue between audio blocks (`apply_pending`), so the DSP objects are
only ever touched by the worker. `value(name)` reads the last applied value; MIDI and a UI read and set the
same numbers.
"""
from __future__ import annotations

import collections
import math
from collections.abc import Callable
from dataclasses import dataclass

from core.errors import UserError

CURVES = ("linear", "log", "fader", "toggle")


@dataclass
class Control:
    """One named parameter. `apply(value)` sets the DSP object (worker thread only)."""

    name: str
    minimum: float
    maximum: float
    value: float
    apply: Callable[[float], None]
    unit: str = ""
    curve: str = "linear"     # MIDI mapping: linear | log (frequencies, times) | fader (gain law) | toggle (on/off)
    step: float = 0.0         # > 0: values snap to multiples of step (key: whole semitones from a fader)
    fader_max_db: float = 0.0
    midi_step: float = 0.0    # > 0: a MIDI fader snaps to multiples of this (key: whole semitones)

    def clamp(self, value: float) -> float:
        """A requested value -> the value applied (NaN is an error; the range clamps, `step` snaps)."""
        value = float(value)
        if math.isnan(value):
            raise UserError(f"control {self.name}: expected a number in [{self.minimum:g}, {self.maximum:g}], got nan")
        if self.curve == "toggle":
            return 1.0 if value >= 0.5 else 0.0
        if self.step > 0 and math.isfinite(value):
            value = round(value / self.step) * self.step
        return min(max(value, self.minimum), self.maximum)

    def from_midi(self, v: int) -> float:
        """A CC value 0..127 -> a value in range (the curve decides how)."""
        v = min(max(int(v), 0), 127)
        if self.curve == "fader":
            # General MIDI volume law: v = 0 silent, 127 -> fader_max_db.
            return -math.inf if v == 0 else self.clamp(40.0 * math.log10(v / 127.0) + self.fader_max_db)
        if self.curve == "toggle":
            return 1.0 if v >= 64 else 0.0
        t = v / 127.0
        if self.curve == "log" and self.minimum > 0:
            value = self.minimum * (self.maximum / self.minimum) ** t
        else:
            value = self.minimum + (self.maximum - self.minimum) * t
        if self.midi_step > 0:
            value = round(value / self.midi_step) * self.midi_step
        return self.clamp(value)

    def describe(self) -> dict:
        return {"name": self.name, "min": self.minimum, "max": self.maximum, "value": self.value,
                "unit": self.unit, "curve": self.curve, "step": self.step}


class ControlRegistry:
    """Name -> Control, plus the lock-free command queue into the worker thread."""

    def __init__(self, queue_size: int = 1024):
        self.controls: dict[str, Control] = {}
        self.pending: collections.deque = collections.deque(maxlen=int(queue_size))
        self.applied = 0

    # building --------------------------------------------------------------------------------------
    def add(self, control: Control) -> Control:
        assert control.name not in self.controls, f"duplicate control name {control.name}"
        assert control.curve in CURVES, control.curve
        self.controls[control.name] = control
        return control

    def names(self) -> list[str]:
        return list(self.controls)

    def __contains__(self, name: str) -> bool:
        return name in self.controls

    def __getitem__(self, name: str) -> Control:
        return self.get(name)

    def get(self, name: str) -> Control:
        if name not in self.controls:
            raise UserError(f"unknown control {name!r}; expected one of: {', '.join(self.controls) or 'none'}")
        return self.controls[name]

    def value(self, name: str) -> float:
        return self.get(name).value

    def set_now(self, name: str, value: float) -> float:
        """Apply at once (before the stream starts, or from the worker thread itself)."""
        c = self.get(name)
        c.value = c.clamp(value)
        c.apply(c.value)
        return c.value

    # any thread ------------------------------------------------------------------------------------
    def request(self, name: str, value: float) -> None:
        c = self.get(name)
        self.pending.append(("set", c, c.clamp(value)))

    def request_toggle(self, name: str) -> None:
        self.pending.append(("toggle", self.get(name), 0.0))

    def request_step(self, name: str, by: float) -> None:
        """Relative change, applied against the value current when the worker gets to it."""
        self.pending.append(("step", self.get(name), float(by)))

    # worker thread ---------------------------------------------------------------------------------
    def apply_pending(self) -> int:
        """Apply every queued request in order; returns how many."""
        n = 0
        items = self.pending
        while items:
            kind, c, value = items.popleft()
            if kind == "step":
                value = c.clamp(c.value + value)
            elif kind == "toggle":
                value = 0.0 if c.value >= 0.5 else 1.0
            c.value = value
            c.apply(value)
            n += 1
        self.applied += n
        return n

    def snapshot(self) -> dict[str, float | None]:
        """Name -> current value (JSON-safe: -inf / inf -> None)."""
        return {n: (round(c.value, 6) if math.isfinite(c.value) else None) for n, c in self.controls.items()}


def register_mixer(registry: ControlRegistry, mixer, fader_max_db: float = 0.0) -> None:
    """The stem mixer's controls: master_db, STEM.gain_db, STEM.mute, STEM.solo."""
    top = float(mixer.cfg.max_gain_db)
    registry.add(Control("master_db", -math.inf, top, float(mixer.master_db), mixer.set_master_db, "dB", "fader",
                         fader_max_db=fader_max_db))
    for i, stem in enumerate(mixer.stems):
        registry.add(Control(f"{stem}.gain_db", -math.inf, top, float(mixer.gain_db[i]),
                             lambda v, i=i: mixer.set_gain_db(i, v), "dB", "fader", fader_max_db=fader_max_db))
        registry.add(Control(f"{stem}.mute", 0.0, 1.0, float(mixer.mute[i]), lambda v, i=i: mixer.set_mute(i, v >= 0.5),
                             curve="toggle"))
        registry.add(Control(f"{stem}.solo", 0.0, 1.0, float(mixer.solo[i]), lambda v, i=i: mixer.set_solo(i, v >= 0.5),
                             curve="toggle"))
