"""Running a plan: build its pieces and hand them to the file run or the live host (settings -> plan -> build
-> host; see `streaming/plan.py`). `open_live` is the live host of a plan, for the CLI, `tools.ui_bench`
and the tests; `run_plan` runs any plan and returns the run's figures; `list_controls` and `learn_midi`
are the two runs that play nothing.
"""
from __future__ import annotations

import sys

from core.errors import UserError

from .build import Pieces, build, open_midi, warm_engine
from .host.sources import open_source
from .plan import RunPlan


def open_source_of(plan: RunPlan):
    """The file / demo input of the plan (None: an input device)."""
    return open_source(plan.input, plan.in_channels) if plan.input.kind not in ("device", "jack") else None


def open_live(plan: RunPlan, engine, source=None):
    """A live plan's host: devices negotiated, pieces built at the device's rate, nothing opened yet.
    `source` replaces the plan's file input (tools.ui_bench loops the demo)."""
    from .host.devices import negotiate
    from .host.live_host import LiveHost
    if source is None:
        source = open_source_of(plan)
    fmt = negotiate(plan, source)
    if plan.wait_s is not None:
        from .host.jack_graph import wait_for_source
        wait_for_source(plan.jack_client, plan.input.spec, plan.wait_s)
    pieces = build(plan, engine, fmt.rate, fmt.max_out)
    _warn_silent(pieces)
    return LiveHost(pieces, fmt, plan.settings.host, source=source,
                    out_path=plan.output.path if plan.output.kind == "file" else None, status=plan.status)


def _warn_silent(pieces: Pieces) -> None:
    if pieces.mixer.silent:
        print("warning: every stem is silent with these --mute / --solo / --gain flags; the output starts silent",
              file=sys.stderr)


def _prepare(plan: RunPlan, engine, where: str, source):
    """Pieces built, engine warmed -> (pieces, run(): RunStats, the live host or None)."""
    if plan.kind == "file->file":
        from .host.file_run import run_file_to_file
        pieces = build(plan, engine, source.rate)
        _warn_silent(pieces)
        warm_engine(plan, engine, source.frames / source.rate if getattr(source, "frames", 0) else None)
        print(f"streaming: {source.name} -> {plan.output.path} ({where}; stems {', '.join(plan.stems)})",
              file=sys.stderr)
        return pieces, lambda: run_file_to_file(source, plan.output.path, pieces, plan.settings.host,
                                                plan.duration), None
    host = open_live(plan, engine, source)
    warm_engine(plan, engine)
    ports = f"; JACK ports {', '.join(host.port_names)}" if host.port_names else ""
    route = f"{host.fmt.in_name} -> {host.fmt.out_name} at {host.rate} Hz, block {host.blocksize}"
    banner = f"streaming: {route} ({where}; stems {', '.join(plan.stems)}{ports}); Ctrl-C stops"
    main_loop = None
    if plan.ui:
        from .ui.mixer_app import mixer_main_loop
        main_loop = mixer_main_loop(host, plan.settings.ui, where, route)
    return host.pieces, lambda: host.run(plan.duration, main_loop=main_loop, banner=banner), host


def run_plan(plan: RunPlan, engine, where: str, source=None) -> dict:
    """Run a plan (action 'run') to its end: pieces built, then the engine (cold, from build.make_engine)
    compiled and warmed up, then the run -> the run's figures (report.stats_dict plus the model, stems,
    key, chains and controls), written to --stats-json when the plan asks."""
    from .host.report import stats_dict, write_stats_json
    pieces, go, host = _prepare(plan, engine, where, source)
    midi = open_midi(plan, pieces.controls)
    if host is not None:
        host.midi = midi
    try:
        stats = go()
    finally:
        if midi is not None:
            midi.close()
    d = stats_dict(stats, engine, pieces.mixer, midi)
    d["model"] = where
    d["stems"] = list(plan.stems)
    d["key_semitones"] = pieces.controls.value("key") if "key" in pieces.controls else 0.0
    d["chains"] = pieces.fx.describe()
    d["controls"] = pieces.controls.snapshot()
    if plan.stats_json:
        write_stats_json(d, plan.stats_json)
    if d.get("jack_server_gone"):
        written = f"; figures in {plan.stats_json}" if plan.stats_json else ""
        raise UserError(f"the JACK server went away mid-run ({d['jack_server_gone']}); the run ended after "
                        f"{d['wall_seconds']:.1f} s{written}")
    return d


def list_controls(plan: RunPlan, engine) -> str:
    """`--list-controls`: every control of this run, with its range and value, one per line."""
    controls = build(plan, engine, engine.sample_rate, 2).controls
    lines = []
    for name in controls.names():
        c = controls.controls[name]
        lines.append(f"{name:40s} {c.minimum:g}..{c.maximum:g} {c.unit}  (now {c.value:g})")
    return "\n".join(lines)


def learn_midi(plan: RunPlan, engine) -> int:
    """`--midi-learn FILE`: bind each action (and the named controls) to the first control moved; write the map."""
    from .control.midi import midi_learn, open_midi_input, save_midi_map
    names = build(plan, engine, engine.sample_rate, 2).controls.names()
    learn = plan.midi.learn_params
    unknown = [p for p in learn if p not in names]
    if unknown:
        raise UserError(f"--midi-learn-params: unknown control {unknown[0]!r}; expected some of: {', '.join(names)}")
    midi_in, port = open_midi_input(plan.midi.port, plan.settings.midi)
    print(f"midi-learn: listening on {port}; stems: {', '.join(plan.stems)}", file=sys.stderr)
    try:
        learned = midi_learn(midi_in, plan.stems, plan.settings.midi, params=learn)
    finally:
        midi_in.delete()
    save_midi_map(learned, plan.midi.learn_path)
    print(f"midi-learn: wrote {len(learned.bindings)} bindings to {plan.midi.learn_path}", file=sys.stderr)
    return len(learned.bindings)
