"""MIDI control of the host: rtmidi input ports, the control map, learn mode, lock-free handoff.

rtmidi calls `MidiControl._on_message` on its own thread. It parses the message, looks the control up
in the map and turns it into a request on the host's `ControlRegistry` (registry.py), whose bounded
`collections.deque` is drained by the worker thread between audio blocks (no lock on either side).
Malformed or unmapped messages are counted and ignored.

Actions: `gain` / `master` (a CC, fader law below), `mute` / `solo` (a note-on or a CC press toggles),
`param` (a CC sets any named control over its range: `vocals.reverb.wet_level`, `key`, `mic.level_db`;
a note toggles an on/off control) and `step` (a note or CC press moves a control by `by`, e.g. key +1).

Fader law (CC value v in 0..127 -> gain): v = 0 is -inf dB (silent), otherwise
    gain_db = 40 * log10(v / 127) + fader_max_db
the General MIDI volume (CC 7) curve: v = 127 -> fader_max_db, v = 64 -> fader_max_db - 11.9 dB,
v = 32 -> fader_max_db - 23.9 dB.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from core.config import read_yaml_mapping
from core.errors import UserError
from core.schema import build, setting

ACTIONS = ("gain", "mute", "solo", "master", "param", "step")


@dataclass(frozen=True)
class MidiConfig:
    """`config.yaml` section `midi`."""

    client_name: str = "tfswa-live"
    api: str = setting("auto", choices=("auto", "jack", "alsa"))
    fader_max_db: float = setting(0.0, ge=-60, le=24)
    learn_timeout_s: float = setting(15.0, gt=0, le=3600)   # per action in --midi-learn; no control moved -> skipped
    learn_settle_s: float = setting(0.4, ge=0, le=10)       # after binding, messages this long are swallowed
    queue_size: int = setting(1024, ge=1, le=1 << 20)
    default_map: tuple = field(default_factory=tuple)

    @classmethod
    def from_config(cls, config: dict) -> MidiConfig:
        cfg = build(cls, config.get("midi"), "config midi")
        MidiMap.from_list(list(cfg.default_map), (), strict=False, where="config midi.default_map")  # shape only
        return cfg


def fader_db(value: int, fader_max_db: float = 0.0) -> float:
    """CC value 0..127 -> gain in dB (see the module docstring)."""
    return -math.inf if value <= 0 else 40.0 * math.log10(min(value, 127) / 127.0) + fader_max_db


# ----------------------------------------------------------------------------------------------------
# The control map

@dataclass(frozen=True)
class Binding:
    action: str            # gain | mute | solo | master | param | step
    stem: str | None       # gain / mute / solo only
    kind: str              # cc | note
    channel: int           # 1..16
    number: int            # 0..127
    param: str | None = None    # param / step: the control's name
    by: float | None = None     # step: the change per press

    @property
    def control(self) -> str:
        """The name of the control in the registry this binding drives."""
        if self.action == "gain":
            return f"{self.stem}.gain_db"
        if self.action in ("mute", "solo"):
            return f"{self.stem}.{self.action}"
        if self.action == "master":
            return "master_db"
        return str(self.param)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"action": self.action}
        if self.stem is not None:
            d["stem"] = self.stem
        if self.param is not None:
            d["param"] = self.param
        if self.by is not None:
            d["by"] = self.by
        d[self.kind] = self.number
        d["channel"] = self.channel
        return d


def parse_binding(item: Any, where: str) -> Binding:
    if not isinstance(item, dict):
        raise UserError(f"{where}: expected a mapping like {{action: gain, stem: vocals, cc: 20, channel: 1}}, got {item!r}")
    action = item.get("action")
    if action not in ACTIONS:
        raise UserError(f"{where}: expected action one of {list(ACTIONS)}, got {action!r}")
    stem = item.get("stem")
    if action in ("gain", "mute", "solo") and not isinstance(stem, str):
        raise UserError(f"{where}: action {action!r} needs a stem name")
    param = item.get("param")
    if action in ("param", "step") and not isinstance(param, str):
        raise UserError(f"{where}: action {action!r} needs a control name, e.g. param: vocals.reverb.wet_level")
    by = item.get("by")
    if action == "step" and (isinstance(by, bool) or not isinstance(by, (int, float)) or not math.isfinite(by)):
        raise UserError(f"{where}: action 'step' needs a number 'by' (the change per press), got {by!r}")
    kinds = [k for k in ("cc", "note") if k in item]
    if len(kinds) != 1:
        raise UserError(f"{where}: expected exactly one of 'cc' or 'note', got {sorted(item)}")
    kind = kinds[0]
    if action in ("gain", "master") and kind != "cc":
        raise UserError(f"{where}: action {action!r} needs a CC (a fader or knob), got a note")
    number, channel = item[kind], item.get("channel", 1)
    if not (isinstance(number, int) and 0 <= number <= 127):
        raise UserError(f"{where}: expected {kind} number 0..127, got {number!r}")
    if not (isinstance(channel, int) and 1 <= channel <= 16):
        raise UserError(f"{where}: expected channel 1..16, got {channel!r}")
    return Binding(action, stem if action in ("gain", "mute", "solo") else None, kind, channel, number,
                   param if action in ("param", "step") else None, float(by) if action == "step" else None)


class MidiMap:
    """(kind, channel 0..15, number) -> list of Bindings. Built for one model's stems and, when `controls`
    (the registry's names) is given, checked against the controls that exist."""

    def __init__(self, bindings: list[Binding], stems: tuple[str, ...], strict: bool = True, where: str = "MIDI map",
                 controls=None):
        self.stems = tuple(stems)
        self.bindings: list[Binding] = []
        self.table: dict[tuple[str, int, int], list[Binding]] = {}
        for b in bindings:
            if b.stem is not None and b.stem not in self.stems:
                if strict:
                    raise UserError(f"{where}: unknown stem {b.stem!r}; this model's stems are: {', '.join(self.stems)}")
                continue
            if b.param is not None and controls is not None and b.param not in controls:
                if strict:
                    raise UserError(f"{where}: unknown control {b.param!r}; expected one of: {', '.join(controls)}")
                continue
            self.bindings.append(b)
            self.table.setdefault((b.kind, b.channel - 1, b.number), []).append(b)

    @classmethod
    def from_list(cls, items: list | tuple, stems: tuple[str, ...], strict: bool = True,
                  where: str = "MIDI map", controls=None) -> MidiMap:
        return cls([parse_binding(it, f"{where} entry {i}") for i, it in enumerate(items)], stems, strict, where,
                   controls)

    def params(self) -> set[str]:
        """Control names that param / step bindings drive."""
        return {b.param for b in self.bindings if b.param is not None}

    def to_yaml(self) -> str:
        head = ("# MIDI map for `python -m streaming --midi-map FILE`.\n"
                "# action: gain | master (a CC, fader law in README) or mute | solo (note-on or CC press toggles);\n"
                "# channel: 1..16.\n")
        head += ("# param: a CC sets a named control over its range (key, vocals.reverb.wet_level, mic.level_db, ...);\n"
                 "# step: a note / CC press changes a control by `by`.\n")
        return head + yaml.safe_dump({"bindings": [b.to_dict() for b in self.bindings]}, sort_keys=False)


def load_midi_map(path: str | Path, stems: tuple[str, ...], controls=None) -> MidiMap:
    data = read_yaml_mapping(path, "MIDI map", "a YAML file written by --midi-learn", UserError)
    if not isinstance(data.get("bindings"), list):
        raise UserError(f"MIDI map {path}: expected a mapping with a 'bindings' list")
    return MidiMap.from_list(data["bindings"], stems, strict=True, where=f"MIDI map {path}", controls=controls)


def save_midi_map(midi_map: MidiMap, path: str | Path) -> None:
    """Write atomically (core.files: temporary beside it, then rename)."""
    from core.files import write_text
    write_text(path, midi_map.to_yaml())


# ----------------------------------------------------------------------------------------------------
# Parsing raw messages

def parse_message(msg: Any) -> tuple[str, int, int, int] | None:
    """Raw MIDI bytes -> (kind, channel 0..15, number, value) for CC / note on / note off, else None.

    kind is 'cc' or 'note' (note off and note on with velocity 0 come back with value 0)."""
    if not isinstance(msg, (list, tuple)) or len(msg) != 3:
        return None
    status, a, b = msg
    if not all(isinstance(v, int) for v in msg) or not 0x80 <= status <= 0xEF or not (0 <= a < 128 and 0 <= b < 128):
        return None
    kind, channel = status & 0xF0, status & 0x0F
    if kind == 0xB0:
        return "cc", channel, a, b
    if kind == 0x90:
        return "note", channel, a, b
    if kind == 0x80:
        return "note", channel, a, 0
    return None


# ----------------------------------------------------------------------------------------------------
# Ports

def _rtmidi():
    try:
        import rtmidi
    except ImportError as e:  # pragma: no cover - a dependency
        raise UserError(f"python-rtmidi is not installed ({e}); expected `pip install python-rtmidi`") from None
    return rtmidi


def _apis(cfg: MidiConfig) -> list[int]:
    rtmidi = _rtmidi()
    named = {"jack": rtmidi.API_UNIX_JACK, "alsa": rtmidi.API_LINUX_ALSA}
    if cfg.api == "auto":
        return [a for a in (rtmidi.API_LINUX_ALSA, rtmidi.API_UNIX_JACK, rtmidi.API_MACOSX_CORE,
                            rtmidi.API_WINDOWS_MM) if a in rtmidi.get_compiled_api()]
    if cfg.api not in named:
        raise UserError(f"config midi.api: expected auto, jack or alsa, got {cfg.api!r}")
    return [named[cfg.api]]


def _open_clients(cfg: MidiConfig) -> list:
    """One MidiIn per usable API (an API whose backend is not running is skipped)."""
    rtmidi = _rtmidi()
    clients = []
    for api in _apis(cfg):
        try:
            clients.append(rtmidi.MidiIn(api, name=cfg.client_name))
        except Exception:  # noqa: BLE001, S112 - rtmidi raises SystemError / RuntimeError when a backend is absent
            continue
    return clients


def list_midi_ports(cfg: MidiConfig) -> list[str]:
    rtmidi = _rtmidi()
    lines = []
    for client in _open_clients(cfg):
        api = rtmidi.get_api_name(client.get_current_api())
        for i, name in enumerate(client.get_ports()):
            lines.append(f"{i:3d}  {name}  ({api})")
        client.delete()
    return lines


def open_midi_input(spec: str, cfg: MidiConfig):
    """`virtual`, a port index or a name substring -> (rtmidi.MidiIn with the port open, port name)."""
    clients = _open_clients(cfg)
    if not clients:
        raise UserError(f"no MIDI backend is available (tried {cfg.api}: ALSA sequencer / JACK server); "
                        "expected a running ALSA sequencer or JACK server")
    if spec == "virtual":
        client = clients[0]
        for other in clients[1:]:
            other.delete()
        client.open_virtual_port(cfg.client_name)
        return client, f"{cfg.client_name} (virtual)"
    names = [(c, i, n) for c in clients for i, n in enumerate(c.get_ports())]
    if spec.isdigit():
        hits = [(c, i, n) for c, i, n in names if i == int(spec)][:1]
    else:
        hits = [(c, i, n) for c, i, n in names if spec.lower() in n.lower()]
    if not hits:
        for c in clients:
            c.delete()
        available = ", ".join(repr(n) for _, _, n in names) or "none"
        raise UserError(f"no MIDI input port matches {spec!r}; expected an index, a name substring or 'virtual' "
                        f"(ports: {available})")
    client, index, name = hits[0]
    for c in clients:
        if c is not client:
            c.delete()
    client.open_port(index, name=cfg.client_name)
    return client, name


# ----------------------------------------------------------------------------------------------------
# Live control

class MidiControl:
    """Turns MIDI messages from one port into requests on a ControlRegistry (lock-free queue)."""

    def __init__(self, midi_in, midi_map: MidiMap, cfg: MidiConfig, controls):
        self.midi_in = midi_in
        self.map = midi_map
        self.cfg = cfg
        self.controls = controls
        self.messages = 0          # every message received
        self.ignored = 0           # malformed, unsupported or unmapped
        self._last_cc: dict[tuple[int, int], int] = {}    # for CC toggles: press = rising edge over 63
        midi_in.ignore_types(sysex=True, timing=True, active_sense=True)
        midi_in.set_callback(self._on_message)

    def _on_message(self, event, data=None) -> None:
        # rtmidi thread: never raise, never block.
        try:
            self.messages += 1
            msg = event[0] if isinstance(event, tuple) else event
            parsed = parse_message(list(msg) if isinstance(msg, (list, tuple)) else msg)
            if parsed is None:
                self.ignored += 1
                return
            kind, channel, number, value = parsed
            targets = self.map.table.get((kind, channel, number))
            if not targets:
                self.ignored += 1
                return
            pressed = value > 0
            if kind == "cc":
                prev = self._last_cc.get((channel, number), 0)
                self._last_cc[(channel, number)] = value
                pressed = value >= 64 and prev < 64
            for b in targets:
                name = b.control
                control = self.controls.get(name)
                if b.action == "step":
                    if pressed:
                        self.controls.request_step(name, b.by)
                elif control.curve == "toggle":
                    if pressed:
                        self.controls.request_toggle(name)
                elif kind == "cc":
                    self.controls.request(name, control.from_midi(value))
        except Exception:  # noqa: BLE001 - garbage MIDI must never kill the rtmidi thread
            self.ignored += 1

    def close(self) -> None:
        try:
            self.midi_in.cancel_callback()
            self.midi_in.close_port()
            self.midi_in.delete()
        except Exception:  # noqa: BLE001, S110 - closing a port whose backend went away
            pass


def midi_learn(midi_in, stems: tuple[str, ...], cfg: MidiConfig, out: TextIO = sys.stderr,
               params: tuple[str, ...] = ()) -> MidiMap:
    """Ask for each action in turn (per stem: gain, mute, solo; then master; then each named control in
    `params`, e.g. key or vocals.reverb.wet_level); bind the first control moved that is not bound yet.
    An action with no control within `learn_timeout_s` is skipped."""
    actions = [(a, s) for s in stems for a in ("gain", "mute", "solo")] + [("master", None)] + \
        [("param", p) for p in params]
    bindings: list[Binding] = []
    used: set[tuple[str, int, int]] = set()
    for action, stem in actions:
        what = stem if action == "param" else f"{stem} {action}" if stem else "master gain"
        need = "a fader/knob (CC)" if action in ("gain", "master", "param") else "a button/pad (note or CC)"
        print(f"midi-learn: move {need} for: {what}  ({cfg.learn_timeout_s:g} s to skip)", file=out, flush=True)
        deadline = time.monotonic() + cfg.learn_timeout_s
        bound = None
        while bound is None and time.monotonic() < deadline:
            item = midi_in.get_message()
            if item is None:
                time.sleep(0.002)
                continue
            parsed = parse_message(list(item[0]))
            if parsed is None:
                continue
            kind, channel, number, value = parsed
            if (kind, channel, number) in used or (action in ("gain", "master", "param") and kind != "cc"):
                continue
            if kind == "note" and value == 0:
                continue
            bound = Binding("param", None, kind, channel + 1, number, param=stem) if action == "param" else \
                Binding(action, stem, kind, channel + 1, number)
        if bound is None:
            print(f"midi-learn: {what}: skipped", file=out, flush=True)
            continue
        used.add((bound.kind, bound.channel - 1, bound.number))
        bindings.append(bound)
        print(f"midi-learn: {what} <- {bound.kind} {bound.number} on channel {bound.channel}", file=out, flush=True)
        settle = time.monotonic() + cfg.learn_settle_s
        while time.monotonic() < settle:   # swallow the rest of that gesture
            if midi_in.get_message() is None:
                time.sleep(0.002)
    return MidiMap(bindings, stems)
