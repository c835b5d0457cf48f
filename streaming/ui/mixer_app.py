"""`python -m streaming --ui`: the terminal mixer (textual). See `mixer_view.py` for what it shows and does.

One row per stem (post-fader meter: RMS bar, peak bar, peak-hold marker; fader; mute and solo; its chain's
main parameters), the master bus (meter, fader, limiter gain reduction, the mix chain's parameters), the mic
when there is one, the key, and the engine panel. It runs in the main thread at `ui.refresh_hz` (<= 20 Hz),
reads the worker's meters and counters without locks, redraws only what changed, and sends every change
through the control queue the worker drains between blocks; the audio callback never sees it.
"""
from __future__ import annotations

import asyncio
import math
import signal
import threading
import time
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from .mixer_view import (
    KEYS_HELP,
    LiveView,
    UiConfig,
    build_strips,
    fader_request,
    format_value,
    level_text,
    param_label,
    param_request,
)

ZONES = ((-18.0, "green3", "dark_green"), (-6.0, "yellow3", "dark_goldenrod"), (math.inf, "red3", "dark_red"))


class Line(Widget):
    """One or more lines of text that redraw only when the text changes (no relayout)."""

    DEFAULT_CSS = "Line { height: 1; }"

    def __init__(self, text: str | Text = "", **kw):
        super().__init__(**kw)
        self._text = text

    @property
    def text(self) -> str:
        return self._text.plain if isinstance(self._text, Text) else self._text

    def set(self, text: str | Text) -> None:
        if text != self._text:
            self._text = text
            self.refresh()

    def render(self) -> Text:
        return self._text if isinstance(self._text, Text) else Text(self._text)


def _runs(cells: list[tuple[str, Style]]) -> list[Segment]:
    """Per-cell (char, style) -> Segments of runs of one style (few Segments: cheap for the compositor)."""
    segments, run, style = [], "", None
    for ch, st in cells:
        if st is not style and run:
            segments.append(Segment(run, style))
            run = ""
        run += ch
        style = st
    if run:
        segments.append(Segment(run, style))
    return segments


def _fit(text: str, width: int, style: Style | None = None) -> list[Segment]:
    """`text` cut or padded to `width` cells; leading blanks as their own Segment (SVG renderers drop blanks
    at the start of a text run, which would shift a screenshot's columns)."""
    text = text[:width].ljust(width)
    body = text.lstrip(" ")
    lead = len(text) - len(body)
    return ([Segment(" " * lead)] if lead else []) + ([Segment(body, style)] if body else [])


class StripRow(Widget):
    """One strip in two lines, drawn with the line API (one widget: a meter change redraws two lines):

        > vocals        [M] [S]  meter: RMS solid, peak dim, hold marker     -12.3 pk -18.0 rms   reverb wet 0.30
                                 fader (click to set, scroll to nudge)       fader  -6.0 dB        compressor thr -18.0 dB
    """

    DEFAULT_CSS = "StripRow { height: 2; margin: 1 0 0 0; }"
    NAME, TOGGLES, READOUT, PARAMS = 16, 9, 24, 36
    ZONES: ClassVar = [(top, Style.parse(bright), Style.parse(dim), Style.parse(f"bold {bright}")) for top, bright, dim in ZONES]
    ZERO, EMPTY = Style.parse("grey50"), Style.parse("grey23")
    KNOB, KNOB_OFF = Style.parse("bold white"), Style.parse("grey50")
    FILL, TICK, TRACK = Style.parse("steel_blue1"), Style.parse("grey62"), Style.parse("grey35")
    NAME_STYLE, SELECTED = Style.parse("bold"), Style.parse("bold reverse")
    MUTE_ON, SOLO_ON, TOGGLE_OFF = Style.parse("bold white on red3"), Style.parse("bold black on yellow3"), \
        Style.parse("grey62")
    PLAIN, MUTED, ALERT = Style(), Style.parse("grey62"), Style.parse("bold red")

    def __init__(self, strip, index: int, cfg: UiConfig, fader_top_db: float):
        super().__init__()
        self.strip, self.index, self.cfg = strip, index, cfg
        self.fader_top_db = fader_top_db
        self.selected = False
        self.meter = (-math.inf, -math.inf, -math.inf)       # peak, rms, hold (dBFS)
        self.fader = 0.0
        self.toggles = (False, False)
        self.levels = ""
        self.gain = ""
        self.params: tuple[str, str] = ("", "")
        self.alert = False                                   # the master's limiter is working
        self._drawn: tuple | None = None

    # geometry ------------------------------------------------------------------------------------
    def _columns(self) -> tuple[int, int, int, int]:
        """(start of the bars, width of the bars, width of the readout, width of the parameters)."""
        w = self.size.width
        params = self.PARAMS if w >= 110 else 0
        bars = max(10, w - self.NAME - self.TOGGLES - self.READOUT - params)
        return self.NAME + self.TOGGLES, bars, self.READOUT, params

    def _meter_cells(self, width: int) -> tuple[int, int, int]:
        lo, hi = self.cfg.meter_floor_db, self.cfg.meter_top_db
        return tuple(round(min(max((db - lo) / (hi - lo), 0.0), 1.0) * width) for db in
                     (self.meter[1], self.meter[0], self.meter[2]))

    def _knob(self, db: float, width: int) -> int:
        if db == -math.inf or width < 2:
            return 0
        t = (db - self.cfg.fader_floor_db) / (self.fader_top_db - self.cfg.fader_floor_db)
        return 1 + round(min(max(t, 0.0), 1.0) * (width - 2))

    def _db_at(self, x: int, width: int) -> float:
        if x <= 0 or width < 2:
            return -math.inf
        t = min(max((x - 1) / (width - 2), 0.0), 1.0)
        return self.cfg.fader_floor_db + t * (self.fader_top_db - self.cfg.fader_floor_db)

    # state ---------------------------------------------------------------------------------------
    def show(self) -> None:
        """Redraw if anything visible changed (meters are compared in screen cells, not in dB)."""
        start, bars, _, _ = self._columns()
        meter = self._meter_cells(bars)
        rest = (self._knob(self.fader, bars), self.toggles, self.levels, self.gain, self.params, self.alert,
                self.selected, self.size.width)
        if self._drawn is None or rest != self._drawn[1]:
            self.refresh()
        elif meter != self._drawn[0]:
            self.refresh(Region(start, 0, bars, 1))       # only the meter's cells: the compositor redraws less
        self._drawn = (meter, rest)

    # drawing -------------------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        start, bars, readout, params = self._columns()
        segs: list[Segment] = []
        if y == 0:
            name = ("> " if self.selected else "  ") + self.strip.name
            segs += _fit(name, self.NAME - 1, self.SELECTED if self.selected else self.NAME_STYLE)
            segs.append(Segment(" "))
            if self.strip.mute:
                mute, solo = self.toggles
                segs += [Segment(" M ", self.MUTE_ON if mute else self.TOGGLE_OFF), Segment(" "),
                         Segment(" S ", self.SOLO_ON if solo else self.TOGGLE_OFF), Segment("  ")]
            else:
                segs.append(Segment(" " * self.TOGGLES))
            segs += self._meter_segments(bars)
            segs += _fit("  " + self.levels, readout)
        else:
            segs.append(Segment(" " * start))
            segs += self._fader_segments(bars)
            segs += _fit("  " + self.gain, readout)
        if params:
            style = self.ALERT if (self.alert and y == 0) else self.MUTED
            segs += _fit(" " + self.params[y], params, style)
        return Strip(segs, self.size.width)

    def _meter_segments(self, width: int) -> list[Segment]:
        n_rms, n_peak, n_hold = self._meter_cells(width)
        lo, hi = self.cfg.meter_floor_db, self.cfg.meter_top_db
        zero = round((0.0 - lo) / (hi - lo) * width)
        cells = []
        for i in range(width):
            db = lo + (i + 0.5) / width * (hi - lo)
            _, bright, dim, bold = next(z for z in self.ZONES if db < z[0] or z[0] == math.inf)
            if i < n_rms:
                cells.append(("█", bright))
            elif i < n_peak:
                cells.append(("█", dim))
            elif n_hold and i == n_hold - 1:
                cells.append(("▌", bold))
            elif i == zero:
                cells.append(("┊", self.ZERO))
            else:
                cells.append(("─", self.EMPTY))
        return _runs(cells)

    def _fader_segments(self, width: int) -> list[Segment]:
        knob, zero = self._knob(self.fader, width), self._knob(0.0, width)
        cells = []
        for i in range(width):
            if i == knob:
                cells.append(("●", self.KNOB if self.fader != -math.inf else self.KNOB_OFF))
            elif i < knob:
                cells.append(("━", self.FILL))
            elif i == zero:
                cells.append(("┼", self.TICK))
            else:
                cells.append(("─", self.TRACK))
        return _runs(cells)

    # mouse ---------------------------------------------------------------------------------------
    def on_click(self, event: events.Click) -> None:
        event.stop()
        start, bars, _, _ = self._columns()
        app = self.app
        app.select(self.index)
        if event.y == 0 and self.strip.mute and self.NAME <= event.x < self.NAME + 3:
            app.action_toggle("mute")
        elif event.y == 0 and self.strip.solo and self.NAME + 4 <= event.x < self.NAME + 7:
            app.action_toggle("solo")
        elif event.y == 1 and start <= event.x < start + bars:
            app.set_fader(self.index, round(self._db_at(event.x - start, bars), 1))

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.app.nudge_fader(self.index, +1)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self.app.nudge_fader(self.index, -1)


class MixerApp(App):
    """The mixer over a LiveView. Exits when the run ends (duration, end of file, error) or on q / Ctrl-C."""

    TITLE = "tfswa-live mixer"
    CSS = """
    Screen { layout: vertical; }
    #title { height: 1; background: $primary-background; text-style: bold; }
    #key { height: 1; margin: 1 0 0 0; }
    #engine { height: 3; margin: 1 0 0 0; }
    #help { height: 2; margin: 1 0 0 0; color: $text-muted; }
    """
    BINDINGS: ClassVar = [
        *[Binding(key, action, description, show=False) for key, action, description in (
            ("up", "select_step(-1)", "previous strip"), ("down", "select_step(1)", "next strip"),
            ("left", "fader(-1)", "fader down"), ("right", "fader(1)", "fader up"),
            ("pagedown", "fader_coarse(-1)", ""), ("pageup", "fader_coarse(1)", ""), ("0", "unity", ""),
            ("m", "toggle('mute')", ""), ("s", "toggle('solo')", ""),
            ("left_square_bracket", "key(-1)", ""), ("right_square_bracket", "key(1)", ""),
            ("backslash", "key_reset", ""), ("p", "next_param", ""),
            ("comma", "param(-1)", ""), ("full_stop", "param(1)", ""), ("q", "stop", ""))],
        Binding("ctrl+c", "stop", show=False, priority=True),
        *[Binding(str(i + 1), f"select({i})", show=False) for i in range(9)],
    ]

    def __init__(self, view: LiveView, cfg: UiConfig, title: str = ""):
        super().__init__()
        self.view, self.cfg, self.title_text = view, cfg, title
        self.controls = view.controls
        self.strips = build_strips(view.stems, view.controls, view.chains())
        self.selected = 0
        top = max(c.maximum for c in (self.controls.get(s.fader) for s in self.strips))
        self.rows = [StripRow(s, i, cfg, top) for i, s in enumerate(self.strips)]
        self.title_line = Line(id="title")
        self.key_line = Line(id="key")
        self.engine_panel = Line(id="engine")
        self.ticks = 0
        self._stats_at = -math.inf
        self._midi_seen = 0
        self._midi_lit_until = 0.0

    # layout and refresh ------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield self.title_line
        yield from self.rows
        yield self.key_line
        yield self.engine_panel
        yield Line(KEYS_HELP, id="help")

    def on_mount(self) -> None:
        self.rows[0].selected = True
        self.refresh_view()
        self.set_interval(1.0 / float(self.cfg.refresh_hz), self.refresh_view)

    def refresh_view(self) -> None:
        """One frame: stop if the run ended, else update what changed."""
        if not self.view.running():
            self.exit()
            return
        self.ticks += 1
        now = time.perf_counter()
        reading = self.view.meters.read(now)
        slow = self.ticks % 4 == 1                       # numbers change at a readable ~4 Hz
        for row in self.rows:
            st = row.strip
            c = self.controls.get(st.fader)
            row.fader = c.value
            row.gain = f"fader {format_value(c.value, c.unit)}"
            if st.mute:
                row.toggles = (self.controls.value(st.mute) >= 0.5, self.controls.value(st.solo) >= 0.5)
            if st.meter is not None:
                i = st.meter
                row.meter = (reading.peak_db[i], reading.rms_db[i], reading.hold_db[i])
                if slow:
                    row.levels = f"{level_text(reading.peak_db[i])} pk {level_text(reading.rms_db[i])} rms"
            else:
                row.levels = "  (not metered)"
            params = [("> " if j == st.param and len(st.params) > 1 else "") + param_label(p, self.controls)
                      for j, p in enumerate(st.params)]
            if st.name == "master":
                lim = reading.limiter_db
                params.insert(0, f"limiter {'-' if lim < 0.05 else f'-{lim:.1f} dB'}")
                row.alert = lim >= 0.05
            if len(params) > 2:                        # two lines: the selected parameter stays in view
                first = min(max(st.param - 1 + (st.name == "master"), 0), len(params) - 2)
                params = params[first:first + 2]
            row.params = (params + ["", ""])[0], (params + ["", ""])[1]
            row.show()
        self._refresh_key()
        midi = self.view.midi
        if midi is not None and midi.messages != self._midi_seen:
            self._midi_seen = midi.messages
            self._midi_lit_until = now + 0.5
            self._stats_at = -math.inf                  # show the activity now
        if now - self._stats_at >= self.cfg.stats_interval_s:
            self._stats_at = now
            lines = self.view.engine_lines()
            text = Text("\n".join(lines))
            if midi is not None:
                text.append("  ●" if now < self._midi_lit_until else "  ○",
                            "bold green" if now < self._midi_lit_until else "grey50")
            self.engine_panel.set(text)
            elapsed = now - self.view.t0
            total = f" / {self.view.duration:.0f}" if self.view.duration else ""
            self.title_line.set(f" tfswa-live  {self.title_text}  |  {elapsed:.0f}{total} s")

    def _refresh_key(self) -> None:
        if "key" in self.controls:
            c = self.controls.get("key")
            self.key_line.set(f" key {format_value(c.value, c.unit)}   ([ ] -/+1 semitone, \\ back to 0)")
        else:
            self.key_line.set(" key fixed at 0 (start with --key N, or config key.live: on, to change it live)")

    # what the keys and the mouse do --------------------------------------------------------------
    def select(self, index: int) -> None:
        if 0 <= index < len(self.strips):
            self.rows[self.selected].selected = False
            self.selected = index
            self.rows[index].selected = True
            for row in self.rows:
                row.show()

    def set_fader(self, index: int, db: float) -> None:
        self.select(index)
        self.controls.request(self.strips[index].fader, db)

    def nudge_fader(self, index: int, direction: int) -> None:
        fader_request(self.controls, self.strips[index].fader, direction * self.cfg.fader_step_db,
                      self.cfg.fader_floor_db)

    def action_select(self, index: int) -> None:
        self.select(index)

    def action_select_step(self, delta: int) -> None:
        self.select((self.selected + delta) % len(self.strips))

    def action_fader(self, direction: int) -> None:
        self.nudge_fader(self.selected, direction)

    def action_fader_coarse(self, direction: int) -> None:
        fader_request(self.controls, self.strips[self.selected].fader, direction * self.cfg.fader_coarse_db,
                      self.cfg.fader_floor_db)

    def action_unity(self) -> None:
        self.controls.request(self.strips[self.selected].fader, 0.0)

    def action_toggle(self, what: str) -> None:
        name = getattr(self.strips[self.selected], what)
        if name:
            self.controls.request_toggle(name)

    def action_key(self, direction: int) -> None:
        if "key" in self.controls:
            self.controls.request_step("key", float(direction))
        else:
            self.notify("the key is fixed: start with --key N or config key.live: on to change it live")

    def action_key_reset(self) -> None:
        if "key" in self.controls:
            self.controls.request("key", 0.0)

    def action_next_param(self) -> None:
        st = self.strips[self.selected]
        if st.params:
            st.param = (st.param + 1) % len(st.params)

    def action_param(self, direction: int) -> None:
        st = self.strips[self.selected]
        if st.params:
            param_request(self.controls, st.params[st.param], direction, int(self.cfg.param_steps))

    def action_stop(self) -> None:
        self.view.stop_requested = True
        self.exit()


def mixer_main_loop(host, cfg: UiConfig, model_name: str, title: str = ""):
    """A `LiveHost.run(main_loop=...)` that shows the mixer in this terminal until the run ends or the user
    quits. SIGTERM / SIGINT end the run cleanly (the terminal is restored)."""
    def loop(t0: float, duration: float | None) -> None:
        view = LiveView(host, t0, duration, model_name)
        app = MixerApp(view, cfg, title)

        def stop(signum, frame) -> None:
            view.stop_requested = True

        main = threading.current_thread() is threading.main_thread()
        old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)} if main else {}
        try:
            app.run()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        if app.return_code not in (0, None):
            raise RuntimeError("the mixer UI stopped with an error (traceback above)")
    return loop


def headless_main_loop(host, cfg: UiConfig, script, model_name: str = "", size: tuple[int, int] = (120, 34),
                       title: str = "headless"):
    """The mixer without a terminal (textual's headless pilot), for tests and benchmarks:
    `await script(app, pilot)` runs while the stream runs; the run ends when the script returns or the run does."""
    def loop(t0: float, duration: float | None) -> None:
        async def main() -> None:
            view = LiveView(host, t0, duration, model_name)
            app = MixerApp(view, cfg, title)
            async with app.run_test(size=size) as pilot:
                await script(app, pilot)
                if app.is_running:
                    view.stop_requested = True
                    await pilot.pause(2.0 / float(cfg.refresh_hz))
        asyncio.run(main())
    return loop
