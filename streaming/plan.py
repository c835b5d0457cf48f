"""A run plan: what one `python -m streaming` run will do, decided before anything opens.

One run goes settings -> plan -> build -> host:
- `settings.load_settings`: config.yaml, `--config` and the host flags, each section built and checked once;
- `plan(settings, args, stems)`: this module, a pure function of the settings, the flags and the model's
  stems. It resolves the endpoints (without looking a device up), the routes, the mic, the key, the effect
  chains and the MIDI map, and refuses contradictions and flags the run cannot honour, each with one line.
  It reads the MIDI map file and checks that output paths can be written; it opens no device, stream or
  port and builds nothing that makes sound;
- `build.build(plan, engine, io_rate)`: the processing pieces (the remix chain with its mixer, key, effect
  chains and router, the mic path and the control registry), built once;
- `host.devices.negotiate(plan)` and `host.live_host.LiveHost`: the device, or `host.file_run` for files.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from core.errors import UserError
from core.files import check_output_file

from .control.midi import MidiMap, load_midi_map
from .host.jack_graph import ConnectSpec, parse_connect
from .host.sources import Endpoint, parse_channels, parse_input, parse_output
from .processing.effects import EffectSpec
from .processing.keyshift import check_semitones
from .processing.routing import Route, check_routes, jack_layout, parse_route
from .processing.stem_fx import chain_specs
from .processing.stem_mixer import check_stem, parse_gain
from .settings import Settings
from .ui.mixer_view import want_ui


@dataclass(frozen=True)
class MixerPlan:
    """The mixer's state at the first block (no fade-in from unity)."""

    mutes: tuple[str, ...] = ()
    solos: tuple[str, ...] = ()
    gains: tuple[tuple[str, float], ...] = ()
    master_db: float = 0.0


@dataclass(frozen=True)
class MicPlan:
    """The singer's microphone: an input channel through its own chain, added without the separation delay."""

    channel: int                                 # 0-based input channel
    level_db: float
    prefill_blocks: int
    specs: tuple[EffectSpec, ...] = ()


@dataclass(frozen=True)
class MidiPlan:
    """`--midi PORT` with its map: the file (checked strictly) or config midi.default_map (bindings to controls
    this run lacks are skipped), checked against the built controls by `build.open_midi`; or `--midi-learn`."""

    port: str
    map: MidiMap | None                          # None with --midi-learn
    map_path: str | None = None
    learn_path: str | None = None
    learn_params: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunPlan:
    """Everything one run does, resolved and checked; see the module docstring."""

    settings: Settings
    stems: tuple[str, ...]
    action: str                                  # run | list-controls | midi-learn
    input: Endpoint | None = None                # None: list-controls / midi-learn
    output: Endpoint | None = None
    in_channels: tuple[int, ...] = ()            # 0-based input columns (--channels); () = the first two
    routes: tuple[Route, ...] = ()               # --route, or the --jack-ports layout; () = the mix on 1-2
    jack_client: str | None = None               # --jack-ports / --input jack:: this JACK client with `port_names`
    port_names: tuple[str, ...] = ()
    connect: tuple[ConnectSpec, ...] = ()        # our port pairs -> other clients' inputs (--connect, routing.connect)
    wait_s: float | None = None                  # --wait: how long to wait for the --input jack: ports before start
    mic: MicPlan | None = None
    mixer: MixerPlan = MixerPlan()
    fx: dict[str, tuple[EffectSpec, ...]] = field(default_factory=dict)   # target -> its chain
    key_semitones: float | None = None           # --key (None: config key.semitones)
    key_bound: bool = False                      # a MIDI binding can move the key (the shifter must run)
    midi: MidiPlan | None = None
    duration: float | None = None
    stats_json: str | None = None
    ui: bool = False                             # the terminal mixer
    status: bool = True                          # the status line (off with -q or the mixer)
    device: str = "cpu"                          # where the model runs
    compile: bool | None = None                  # --compile / --no-compile (None: config streaming.compile)

    @property
    def kind(self) -> str:
        """file->file | device->device | file->device | device->file ('file' includes the demo); none: no audio
        runs (list-controls, midi-learn)."""
        if self.input is None:
            return "none"
        side = lambda e: "device" if e.kind in ("device", "jack") else "file"
        return f"{side(self.input)}->{side(self.output)}"

    @property
    def live(self) -> bool:
        return self.kind not in ("file->file", "none")


def _check_flags(args) -> None:
    """Flag combinations that contradict each other whatever the model."""
    if args.duration is not None and not 0 < args.duration < 1e7:
        raise UserError(f"--duration: expected a finite number of seconds > 0, got {args.duration}")
    if args.midi_learn and not args.midi:
        raise UserError("--midi-learn FILE needs --midi PORT (the controller to learn from)")
    if args.midi_learn_params and not args.midi_learn:
        raise UserError("--midi-learn-params NAMES needs --midi-learn FILE")
    if args.midi_map and not args.midi:
        raise UserError("--midi-map FILE needs --midi PORT")
    if args.jack_ports and args.route:
        raise UserError("--jack-ports gives every source its own named ports; expected either it or --route")
    if args.mic_level is not None and args.mic is None:
        raise UserError("--mic-level DB needs --mic CHANNEL (the microphone's input channel)")
    if args.wait is not None and not 0 <= args.wait < 1e7:
        raise UserError(f"--wait: expected a finite number of seconds >= 0, got {args.wait}")


def _refuse_unhonoured(settings: Settings, kind: str, jack: bool) -> None:
    """Host flags this kind of run cannot honour are refused, not ignored."""
    given = settings.host_flags
    why: dict[str, str] = {}
    if kind == "file->file":
        why = {"samplerate": "a file -> file run writes at the input file's rate (resample the file instead)",
               "blocksize": "a file -> file run has no audio device (it reads host.file_block frames at a time)",
               "latency": "a file -> file run has no audio device",
               "late_policy": "a file -> file run waits for every block, none is late"}
    elif kind == "device->file":
        why = {"late_policy": "a device -> file run writes every block when it is done, none plays late"}
    elif kind == "file->device" and "late_policy" in given and settings.host.late_policy == "dry":
        why = {"late_policy": "a file input has no live dry signal to play (a late block plays silence)"}
    if jack:
        why.setdefault("latency", "the --jack-ports client runs at the JACK server's period (set the period on "
                                  "the server)")
    for name in sorted(given):
        if name in why:
            flag = settings.flag(name)
            raise UserError(f"{flag}: {why[name]}; expected no {flag}")


def _late_policy(settings: Settings, kind: str, routes: tuple[Route, ...], stems: tuple[str, ...]) -> Settings:
    """One late policy for every port. `dry` plays the live input on the ports that carry the mix (or the
    dry input); a port that carries a stem has no dry equivalent, so a run that routes a stem plays a late
    block as silence on every port: config `dry` becomes `silence` there, and `--late dry` is refused. A
    file input has no live signal either: its late blocks are silence."""
    host = settings.host
    if host.late_policy != "dry":
        return settings
    silence = dataclasses.replace(settings, host=dataclasses.replace(host, late_policy="silence"))
    if kind == "file->device":
        return silence
    stem_ports = list(dict.fromkeys(r.source for r in routes if r.source in stems))
    if kind != "device->device" or not stem_ports:
        return settings
    if "late_policy" in settings.host_flags:
        raise UserError(f"--late dry: a late block has no dry signal for the stem port{'s' if len(stem_ports) > 1 else ''} "
                        f"({', '.join(stem_ports)}), and every port plays the same policy; expected --late silence "
                        "or no --late")
    return silence


def _jack(settings: Settings, args, inp: Endpoint | None, out: Endpoint | None, stems: tuple[str, ...],
          mic: bool) -> tuple[str | None, tuple[Route, ...] | None, tuple[str, ...], tuple[ConnectSpec, ...]]:
    """The host's own JACK client, when `--jack-ports` or `--input jack:PATTERN` asks for one -> (client name,
    its routes, its port names, the output connections), or (None, None, (), ()). Contradictions refused."""
    follow = inp is not None and inp.kind == "jack"
    given = [parse_connect(c) for c in args.connect]
    if not (args.jack_ports or follow):
        if given or args.wait is not None:
            flag = "--connect" if given else "--wait"
            raise UserError(f"{flag} needs the host's own JACK client; expected --input jack:PATTERN or --jack-ports")
        return None, None, (), ()
    if args.wait is not None and not follow:
        raise UserError("--wait S waits for the ports of --input jack:PATTERN; expected that input too")
    if follow:
        if args.channels:
            raise UserError("--channels picks an audio interface's channels; with --input jack:PATTERN the "
                            "matched ports are the input (expected no --channels)")
        if args.route:
            raise UserError("--route plays on an audio interface's channels; with --input jack:PATTERN the host "
                            "plays on its own JACK ports (expected --jack-ports for a port pair per stem)")
        if out is not None and out.kind == "device" and out.spec not in ("speakers", "default"):
            raise UserError(f"--output {out.spec}: with --input jack:PATTERN the host plays on its own JACK ports; "
                            "expected no --output (connect them with --connect) or a .wav / .flac file")
    routes, names = jack_layout(stems if args.jack_ports else (), mic)
    if out is not None and out.kind == "file":
        if given:
            raise UserError("--connect: a run that writes a file has no output ports to connect; expected no --connect")
        return settings.routing.jack_client_name, (), (), ()
    pairs = list(dict.fromkeys(n.rpartition("_")[0] for n in names))
    config = {src: ConnectSpec(src, tuple(t), explicit=False) for src, t in settings.routing.connect.items()}
    for spec in given:
        config[spec.source] = spec
    for spec in given:
        if spec.source not in pairs:
            extra = " (stem ports need --jack-ports)" if spec.source in stems else ""
            raise UserError(f"--connect {spec.source}=...: this run has no {spec.source} ports{extra}; expected "
                            f"one of: {', '.join(pairs)}")
    # config entries for ports this run lacks (a stem without --jack-ports) do not apply to it
    connect = tuple(c for c in config.values() if c.source in pairs)
    return settings.routing.jack_client_name, tuple(routes), tuple(names), connect


def _mixer(args, stems: tuple[str, ...]) -> MixerPlan:
    gains = tuple(parse_gain(g) for g in args.gain)
    for name in (*args.mute, *args.solo, *(s for s, _ in gains)):
        check_stem(name, stems)
    both = sorted(set(args.mute) & set(args.solo))
    if both:
        raise UserError(f"--mute and --solo of the same stem ({', '.join(both)}) contradict each other; "
                        "expected one of them per stem")
    return MixerPlan(tuple(args.mute), tuple(args.solo), gains, float(args.master))


def _mic(settings: Settings, args, fx: dict) -> MicPlan | None:
    channel = args.mic if args.mic is not None else settings.mic.channel
    if channel is not None and channel < 1:
        raise UserError(f"--mic: expected a 1-based input channel >= 1, got {channel}")
    if "mic" in {a.partition("=")[0].strip() for a in args.fx} and channel is None:
        raise UserError("--fx mic=...: there is no mic; expected --mic CHANNEL as well")
    if channel is None:
        return None
    level = args.mic_level if args.mic_level is not None else settings.mic.level_db
    return MicPlan(channel - 1, float(level), settings.mic.prefill_blocks, fx.get("mic", ()))


def _midi(settings: Settings, args, stems: tuple[str, ...]) -> MidiPlan | None:
    if not args.midi:
        return None
    learn = tuple(p.strip() for p in (args.midi_learn_params or "").split(",") if p.strip())
    if args.midi_learn:
        return MidiPlan(args.midi, None, learn_path=args.midi_learn, learn_params=learn)
    if args.midi_map:
        raw = load_midi_map(args.midi_map, stems)
    else:
        raw = MidiMap.from_list(list(settings.midi.default_map), stems, strict=False, where="config midi.default_map")
    return MidiPlan(args.midi, raw, map_path=args.midi_map)


def _endpoints(args, action: str) -> tuple[Endpoint | None, Endpoint | None]:
    """The input and output (device specs not looked up yet), and every output file checked writable."""
    inp = out = None
    if action == "run":
        inp, out = parse_input(args.input), parse_output(args.output)
        if out.kind == "file":
            check_output_file(out.path, "--output", [inp.path] if inp.kind == "file" else [])
    for path, flag in ((args.stats_json, "--stats-json"), (args.midi_learn, "--midi-learn")):
        if path:
            check_output_file(path, flag, [p for p in (args.input, args.midi_map, args.config) if p])
    return inp, out


def _ui(settings: Settings, args, live: bool) -> bool:
    """Whether the terminal mixer shows. Explicit --ui needs textual and a live run; auto falls back to the
    status line without textual."""
    use = want_ui(args.ui, settings.ui, live, args.quiet)
    if use:
        try:
            import textual  # noqa: F401
        except ImportError as e:
            if args.ui:
                raise UserError(f"--ui needs the textual package ({e}); expected `pip install textual`") from None
            use = False
    return use


def plan(settings: Settings, args, stems: tuple[str, ...]) -> RunPlan:
    """The parsed `python -m streaming` arguments, for a model with these stems -> RunPlan (or UserError)."""
    stems = tuple(stems)
    _check_flags(args)
    action = "midi-learn" if args.midi_learn else "list-controls" if args.list_controls else "run"
    inp, out = _endpoints(args, action)
    in_channels = parse_channels(args.channels)
    fx = chain_specs(settings.chains, args.fx, stems)
    mic = _mic(settings, args, fx)
    routes = tuple(parse_route(r) for r in args.route)
    check_routes(routes, stems, mic is not None)
    key_range = settings.key.range
    if args.key is not None:
        check_semitones(args.key, key_range)
    check_semitones(settings.key.semitones, key_range, "config key.semitones")
    midi = _midi(settings, args, stems)
    key_bound = midi is not None and ("key" in midi.learn_params or (midi.map is not None and "key" in midi.map.params()))
    mixer = _mixer(args, stems)
    jack_client, jack_routes, port_names, connect = _jack(settings, args, inp, out, stems, mic is not None)
    if jack_routes is not None:
        routes = jack_routes
    p = RunPlan(settings=settings, stems=stems, action=action, input=inp, output=out, in_channels=in_channels,
                routes=routes, jack_client=jack_client, port_names=port_names, connect=connect, wait_s=args.wait,
                mic=mic, mixer=mixer, fx=fx,
                key_semitones=args.key, key_bound=key_bound, midi=midi, duration=args.duration,
                stats_json=args.stats_json, device=args.device or "cpu", compile=args.compile)
    if action != "run":
        return p
    if args.jack_ports and out.kind != "device":
        raise UserError("--jack-ports: expected the output to be the JACK server (leave out --output FILE)")
    if mic is not None and (inp.kind not in ("device", "jack") or out.kind != "device"):
        raise UserError("--mic: expected an audio interface for input and output (the singer hears the mic live)")
    _refuse_unhonoured(settings, p.kind, jack_client is not None)
    settings = _late_policy(settings, p.kind, routes, stems)
    ui = _ui(settings, args, p.live)
    return dataclasses.replace(p, settings=settings, ui=ui, status=not (args.quiet or ui))
