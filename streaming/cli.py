"""`python -m streaming`: live karaoke / remix host. See `--help` and the README."""
from __future__ import annotations

import argparse
import sys

from core.errors import UserError, run_cli

EPILOG = """\
inputs : mic | default (default input device), a device index or name substring, an audio file
         (played in real time, or as fast as possible when --output is a file), or demo (the MUSDB18
         preview clip shipped with stempeg).
outputs: speakers | default, a device index or name substring, or a .wav / .flac file (aligned with
         the input: latency removed, same length).
mixer  : --mute / --solo STEM and --gain STEM=DB are repeatable; --master DB; stem names come from the
         checkpoint. Gain changes ramp over one block; a soft limiter keeps the remix below -0.1 dBFS.
plugins: --fx TARGET=EFFECT[:PARAM=VALUE,...] appends an effect to a stem's chain (or mix, mic), e.g.
         --fx vocals=reverb:room_size=0.7,wet_level=0.3 --fx accompaniment=compressor:threshold_db=-18;
         --fx vocals=vst3:path=/path/Plugin.vst3,mix=0.5 loads a VST3 plugin. --list-controls names every
         parameter. --key SEMITONES shifts every non-vocal stem (-12..12, fractions allowed).
routing: --route SOURCE=CHANNELS (a stem, mix, dry or mic; 1-based channels, e.g. vocals=3,4) is
         repeatable and replaces the default (mix on 1-2); with a file output, one multichannel file.
         --jack-ports opens a JACK client with a named port pair per stem plus the mix.
mic    : --mic CHANNEL adds the singer's microphone (an input channel) through its own chain
         (chains.mic) to the output without the separation delay.
MIDI   : --midi PORT|virtual opens an input; controls map to actions through --midi-map FILE (written by
         --midi-learn FILE) or the default map in config.yaml (midi.default_map). Fader law:
         gain_db = 40*log10(v/127) + midi.fader_max_db, v = 0 silent.
ui     : --ui shows a terminal mixer: per stem a meter (RMS bar, peak, peak hold; post-fader), fader, mute and
         solo, its chain's main parameters; the master with its limiter; the key; the engine (model, eager or
         compiled, CPU or GPU, latency and its parts, load, step p99, late blocks, xruns, MIDI). On by default
         for a live run started from a terminal (stdin and stderr both terminals; not with -q): the mixer is
         how a live run is played, and scripts, pipes and CI (no terminal) keep the one status line; --no-ui
         or config ui.enabled: off turns it off. Keys: up/down select a strip (1-9 jump), left/right fader
         -/+1 dB, pgup/pgdn +/-6 dB, 0 unity, m mute, s solo, [ ] key -/+1 semitone, \\ key 0, p next
         parameter, , . parameter -/+, q or Ctrl-C quit. Mouse: click M / S, click or scroll a fader.
         Changes go through the same queue as MIDI, so MIDI and keys move the same faders.
exit   : Ctrl-C, end of file or --duration stop cleanly; user errors print one line and exit with code 2.
example: python -m streaming --input demo --mute vocals --output karaoke.wav
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m streaming", description="Real-time music source separation host: live remix "
                "(karaoke, stem solo / mute / gain) from an audio interface, a file or the demo clip, with MIDI control.",
                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    io = p.add_argument_group("input / output")
    io.add_argument("--input", "-i", default="mic", help="mic|default|INDEX|NAME|FILE|demo (default: mic)")
    io.add_argument("--output", "-o", default="speakers", help="speakers|default|INDEX|NAME|FILE.wav|FILE.flac "
                    "(default: speakers)")
    io.add_argument("--channels", help="input channels of a multi-channel interface, 1-based, e.g. 1,2 or 3 "
                    "(default: the first two)")
    io.add_argument("--samplerate", type=int, help="device sample rate in Hz (default: the device's)")
    io.add_argument("--duration", type=float, help="stop after this many seconds")
    io.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    mx = p.add_argument_group("stem mixer")
    mx.add_argument("--mute", action="append", default=[], metavar="STEM", help="mute a stem (repeatable)")
    mx.add_argument("--solo", action="append", default=[], metavar="STEM", help="solo a stem (repeatable)")
    mx.add_argument("--gain", action="append", default=[], metavar="STEM=DB", help="stem gain in dB (repeatable)")
    mx.add_argument("--master", type=float, default=0.0, metavar="DB", help="master gain in dB (default 0)")
    md = p.add_argument_group("model")
    md.add_argument("--checkpoint", help="separator checkpoint (default: model/weights/streaming_default.ckpt "
                    "when it exists, else the `streaming` preset with RANDOM weights)")
    md.add_argument("--preset", help="use this config.yaml preset with random weights instead of a checkpoint "
                    "(for tests and benchmarks, e.g. tiny)")
    md.add_argument("--device", choices=("cpu", "cuda"), help="where the model runs (default: cpu)")
    md.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                    help="run the per-hop step compiled with torch.compile (CUDA: also as a CUDA graph); default: "
                    "config streaming.compile (auto: when a C++ compiler / Triton is there). The first start "
                    "compiles (up to a minute), later starts load the cache")
    au = p.add_argument_group("audio engine")
    au.add_argument("--latency-mode", choices=("lowest", "balanced", "safe"), help="pick model, block size and "
                    "head-start margin together (config latency_modes): lowest = lowlatency model, 128-frame blocks; "
                    "balanced = default model, 256; safe = default model, 512, wide margin. The total is printed at start")
    au.add_argument("--blocksize", type=int, help="frames per audio callback (config host.blocksize)")
    au.add_argument("--latency", help="PortAudio suggested latency: low|high|SECONDS (config host.latency)")
    au.add_argument("--late", choices=("dry", "silence"), help="what a late block plays (config host.late_policy)")
    au.add_argument("--config", help="YAML file whose values override config.yaml")
    au.add_argument("--stats-json", metavar="PATH", help="write the run's figures as one JSON object at exit")
    au.add_argument("--quiet", "-q", action="store_true", help="no status line (and no mixer unless --ui)")
    au.add_argument("--ui", action=argparse.BooleanOptionalAction, default=None,
                    help="the terminal mixer (keys and defaults: see below); default: config ui.enabled = auto, "
                    "on when stdin and stderr are terminals and the run is live")
    fx = p.add_argument_group("plugins, key and routing")
    fx.add_argument("--fx", action="append", default=[], metavar="TARGET=EFFECT[:P=V,...]",
                    help="append an effect to a chain: TARGET is a stem, mix or mic (repeatable; replaces that "
                    "target's chain from the config)")
    fx.add_argument("--key", type=float, metavar="SEMITONES", help="karaoke key change of every non-vocal stem, "
                    "-12..12 (config key.semitones)")
    fx.add_argument("--route", action="append", default=[], metavar="SOURCE=CHANNELS",
                    help="play a stem, mix, dry or mic on these 1-based output channels (repeatable)")
    fx.add_argument("--jack-ports", action="store_true", help="JACK: open a client with one named output port "
                    "pair per stem plus the mix (and the mic)")
    fx.add_argument("--mic", type=int, metavar="CHANNEL", help="the singer's microphone: this 1-based input "
                    "channel, through chains.mic, added without the separation delay")
    fx.add_argument("--mic-level", type=float, metavar="DB", help="mic level in dB (config mic.level_db)")
    fx.add_argument("--list-controls", action="store_true", help="list every controllable parameter (for MIDI "
                    "maps) with its range, and exit")
    mi = p.add_argument_group("MIDI")
    mi.add_argument("--midi", metavar="PORT", help="MIDI input: index, name substring or 'virtual'")
    mi.add_argument("--midi-map", metavar="FILE", help="MIDI map YAML (default: midi.default_map in config.yaml)")
    mi.add_argument("--midi-learn", metavar="FILE", help="with --midi: bind each action to the first control "
                    "moved, write the map to FILE and exit")
    mi.add_argument("--midi-learn-params", metavar="NAMES", help="with --midi-learn: also learn these controls "
                    "(comma list, e.g. key,vocals.reverb.wet_level; see --list-controls)")
    mi.add_argument("--list-midi", action="store_true", help="list MIDI input ports and exit")
    return p


def _config(path: str | None) -> dict:
    from core.config import resolve_config

    from . import COMMAND
    return resolve_config(path, command=COMMAND)


def _separator(args, config: dict):
    import model
    sep, where = model.resolve_separator(args.checkpoint, args.preset, config,
                                         warn=lambda m: print(m, file=sys.stderr))
    if args.preset:
        print(f"streaming: using the {where} (no checkpoint)", file=sys.stderr)
    if not sep.causal:
        raise UserError(f"{where}: expected a causal (streaming) model, got an offline one")
    return sep, where


def _torch_device(name: str | None) -> str:
    import torch
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: expected a CUDA GPU, none is available")
    return name or "cpu"


def _engine(args, sep, config, file_seconds: float | None = None):
    """The streaming engine, compiled (when asked) and warmed up before any stream opens. `file_seconds`: the
    length of a file -> file run's input; with compile auto, shorter than `streaming.compile_min_file_s` and
    no cached build, the run stays eager (compiling the step takes longer than the whole eager run)."""
    from .engine.separator import EngineConfig, StreamingSeparator
    eng_cfg = EngineConfig.from_config(config)
    setting = eng_cfg.compile if args.compile is None else args.compile
    engine = StreamingSeparator(sep, device=_torch_device(args.device), compile=setting, threads=eng_cfg.threads)
    if file_seconds is not None and file_seconds < eng_cfg.compile_min_file_s and engine.skip_compile_unless_cached():
        print(f"streaming: eager step for this {file_seconds:.0f} s file (compiling pays off from "
              f"{eng_cfg.compile_min_file_s:g} s: streaming.compile_min_file_s; --compile forces it)", file=sys.stderr)
    if engine.compiles_on_warm_up:
        from .engine.compiled import cache_dir
        print(f"streaming: compiling the streaming step for {engine.device.type} (cached in {cache_dir()}; "
              "a first start takes up to a minute)...", file=sys.stderr, flush=True)
    engine.warm_up()
    if engine.compile_s:
        print(f"streaming: {engine.engine_kind} step ready in {engine.compile_s:.1f} s", file=sys.stderr)
    return engine


def _mixer(args, stems, config):
    from .processing.stem_mixer import MixerConfig, StemMixer, parse_gain
    mixer = StemMixer(stems, MixerConfig.from_config(config))
    for s in args.mute:
        mixer.set_mute(s, True)
    for s in args.solo:
        mixer.set_solo(s, True)
    for spec in args.gain:
        stem, db = parse_gain(spec)
        mixer.set_gain_db(stem, db)
    mixer.set_master_db(args.master)
    mixer._current = mixer._targets()   # start at the requested gains, no fade-in
    both = sorted(set(args.mute) & set(args.solo))
    if both:
        raise UserError(f"--mute and --solo of the same stem ({', '.join(both)}) contradict each other; "
                        "expected one of them per stem")
    if not mixer._targets().any():
        print("warning: every stem is silent with these --mute / --solo / --gain flags; the output starts silent",
              file=sys.stderr)
    return mixer


def _processing(args, config: dict, sep, mixer, midi_cfg, key_bound: bool):
    """Key change, effect chains, the control registry and the mic's chain specs from config + flags."""
    from .control.registry import ControlRegistry, register_mixer
    from .processing.effects import ChainsConfig
    from .processing.keyshift import KeyConfig, check_semitones
    from .processing.mic import MicConfig
    from .processing.stem_fx import StemEffects, build_key, chain_specs, register_key
    key_cfg = KeyConfig.from_config(config)
    if args.key is not None:
        check_semitones(args.key, key_cfg.range)
    check_semitones(key_cfg.semitones, key_cfg.range, "config key.semitones")
    specs = chain_specs(ChainsConfig.from_config(config), args.fx, tuple(sep.stems))
    mic_cfg = MicConfig.from_config(config)
    mic_channel = args.mic if args.mic is not None else mic_cfg.channel
    if mic_channel is not None and mic_channel < 1:
        raise UserError(f"--mic: expected a 1-based input channel >= 1, got {mic_channel}")
    if "mic" in {a.partition("=")[0].strip() for a in args.fx} and mic_channel is None:
        raise UserError("--fx mic=...: there is no mic; expected --mic CHANNEL as well")
    key = build_key(tuple(sep.stems), sep.sample_rate, key_cfg, args.key, key_bound)
    fx = StemEffects(tuple(sep.stems), sep.sample_rate, specs, key)
    controls = ControlRegistry(midi_cfg.queue_size)
    register_mixer(controls, mixer, midi_cfg.fader_max_db)
    register_key(controls, key, key_cfg)
    fx.register(controls)
    mic = None
    if mic_channel is not None:
        mic = {"specs": specs.get("mic", ()), "channel": mic_channel - 1,
               "level_db": args.mic_level if args.mic_level is not None else mic_cfg.level_db,
               "prefill_blocks": mic_cfg.prefill_blocks}
    return fx, key, controls, mic


def _mic_control_names(mic: dict | None, sample_rate: int, max_db: float) -> list[str]:
    """The mic's control names (its chain is built at the device rate later; the names do not depend on it)."""
    if mic is None:
        return []
    from .control.registry import ControlRegistry
    from .processing.mic import MicPath
    reg = ControlRegistry()
    MicPath(mic["specs"], sample_rate, mic["level_db"]).register(reg, max_db)
    return reg.names()


def parse_channels(spec: str | None) -> tuple[int, ...]:
    if not spec:
        return ()
    try:
        chans = tuple(int(c) - 1 for c in spec.split(","))
    except ValueError:
        raise UserError(f"--channels: expected 1-based channel numbers like 1,2, got {spec!r}") from None
    if not 1 <= len(chans) <= 2 or min(chans) < 0 or len(set(chans)) != len(chans):
        raise UserError(f"--channels: expected one or two distinct channels >= 1, got {spec!r}")
    return chans


def run(args) -> int:
    from core.files import check_output_file
    from core.schema import replace

    from .control.midi import (
        MidiConfig,
        MidiMap,
        list_midi_ports,
        load_midi_map,
        midi_learn,
        open_midi_input,
        save_midi_map,
    )
    from .host.config import HostConfig
    from .host.sources import list_devices, open_source, resolve_input, resolve_output
    from .processing.meters import MeterConfig
    from .processing.routing import Router, RoutingConfig, parse_route

    config = _config(args.config)
    host_cfg = HostConfig.from_config(config)
    flags = {"blocksize": "--blocksize", "latency": "--latency", "late_policy": "--late"}
    overrides = {k: v for k, v in (("blocksize", args.blocksize), ("latency", args.latency),
                                   ("late_policy", args.late)) if v is not None}
    if overrides:
        host_cfg = replace(host_cfg, flags, **overrides)
    mode = None
    if args.latency_mode:
        from .host.latency_modes import get_mode
        mode = get_mode(config, args.latency_mode)
        host_cfg = mode.host_config(host_cfg, blocksize_given=args.blocksize is not None)
        if not args.checkpoint and not args.preset:
            args.checkpoint, args.preset = mode.model_choice()
    midi_cfg = MidiConfig.from_config(config)
    if args.list_devices:
        print(list_devices())
        return 0
    if args.list_midi:
        print("\n".join(list_midi_ports(midi_cfg)) or "no MIDI input ports")
        return 0
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
    routing_cfg = RoutingConfig.from_config(config)
    routes = [parse_route(r) for r in args.route]
    # Everything that can be checked before the model loads: endpoints and output paths.
    in_ep = out_ep = None
    if not (args.midi_learn or args.list_controls):
        in_ep = resolve_input(args.input)
        out_ep = resolve_output(args.output)
        if out_ep.kind == "file":
            check_output_file(out_ep.path, "--output", [in_ep.path] if in_ep.kind == "file" else [])
    for path, flag in ((args.stats_json, "--stats-json"), (args.midi_learn, "--midi-learn")):
        if path:
            check_output_file(path, flag, [p for p in (args.input, args.midi_map, args.config) if p])
    in_channels = parse_channels(args.channels)
    source = open_source(in_ep, in_channels) if in_ep is not None and in_ep.kind != "device" else None

    sep, where = _separator(args, config)
    if mode is not None:
        random = "random weights" in where.lower()
        print(f"streaming: latency mode {mode.name}: {where}, block {host_cfg.blocksize}, head-start margin "
              f"{host_cfg.prefill_margin_ms:g} ms (p{host_cfg.prefill_quantile:g} of the measured worker time)"
              + ("\nstreaming: WARNING: this mode's model has RANDOM weights (no trained checkpoint "
                 f"{mode.checkpoint_path()} yet): the output is NOT a separation" if random else ""),
              file=sys.stderr)
    stems = sep.stems
    # Whether a MIDI binding can change the key decides if the key shifter runs (see keyshift.KeyChange).
    learn_params = tuple(p.strip() for p in (args.midi_learn_params or "").split(",") if p.strip())
    if args.midi_map and args.midi:
        raw_map = load_midi_map(args.midi_map, stems)
    elif args.midi:
        raw_map = MidiMap.from_list(list(midi_cfg.default_map), stems, strict=False, where="config midi.default_map")
    else:
        raw_map = None
    key_bound = "key" in learn_params or (raw_map is not None and "key" in raw_map.params())
    mixer = _mixer(args, stems, config)
    fx, _key, controls, mic = _processing(args, config, sep, mixer, midi_cfg, key_bound)
    names = controls.names() + _mic_control_names(mic, sep.sample_rate, mixer.cfg.max_gain_db)
    Router(routes, stems, mic is not None)          # unknown sources fail here, before any audio
    if args.list_controls:
        for name in names:
            c = controls.controls.get(name)
            print(name if c is None else f"{name:40s} {c.minimum:g}..{c.maximum:g} {c.unit}  (now {c.value:g})")
        return 0
    if args.midi_learn:
        unknown = [p for p in learn_params if p not in names]
        if unknown:
            raise UserError(f"--midi-learn-params: unknown control {unknown[0]!r}; expected some of: {', '.join(names)}")
        midi_in, port = open_midi_input(args.midi, midi_cfg)
        print(f"midi-learn: listening on {port}; stems: {', '.join(stems)}", file=sys.stderr)
        try:
            learned = midi_learn(midi_in, stems, midi_cfg, params=learn_params)
        finally:
            midi_in.delete()
        save_midi_map(learned, args.midi_learn)
        print(f"midi-learn: wrote {len(learned.bindings)} bindings to {args.midi_learn}", file=sys.stderr)
        return 0

    use_ui, ui_cfg = _ui(args, config, live=in_ep.kind == "device" or out_ep.kind == "device")
    file_seconds = None
    if in_ep.kind != "device" and out_ep.kind == "file" and source is not None and getattr(source, "frames", 0):
        file_seconds = source.frames / source.rate
    engine = _engine(args, sep, config, file_seconds)

    if args.jack_ports and out_ep.kind != "device":
        raise UserError("--jack-ports: expected the output to be the JACK server (leave out --output FILE)")
    if mic is not None and (in_ep.kind != "device" or out_ep.kind != "device"):
        raise UserError("--mic: expected an audio interface for input and output (the singer hears the mic live)")

    midi = None
    try:
        if in_ep.kind != "device" and out_ep.kind == "file":
            from .host.file_run import run_file_to_file
            midi = _open_midi(args, raw_map, stems, controls, midi_cfg)
            print(f"streaming: {source.name} -> {out_ep.path} ({where}; stems {', '.join(stems)})", file=sys.stderr)
            router = Router(routes, stems, False) if routes else None
            stats = run_file_to_file(source, out_ep.path, engine, mixer, host_cfg, args.duration, controls, fx, router)
        else:
            from .host.live_host import LiveHost
            host = LiveHost(engine, mixer, host_cfg, in_device=in_ep.device if source is None else None,
                            in_channels=in_channels, source=source,
                            out_device=out_ep.device if out_ep.kind == "device" else None,
                            out_path=out_ep.path if out_ep.kind == "file" else None,
                            samplerate=args.samplerate or host_cfg.samplerate, status=not (args.quiet or use_ui),
                            controls=controls, fx=fx, routes=routes or None,
                            mic=None if mic is None else mic["specs"],
                            mic_channel=None if mic is None else mic["channel"],
                            mic_level_db=0.0 if mic is None else mic["level_db"],
                            mic_prefill_blocks=2 if mic is None else mic["prefill_blocks"],
                            jack_client=routing_cfg.jack_client_name if args.jack_ports else None,
                            meter_cfg=MeterConfig.from_config(config))
            midi = host.midi = _open_midi(args, raw_map, stems, controls, midi_cfg)
            ports = f"; JACK ports {', '.join(host.port_names)}" if host.port_names else ""
            print(f"streaming: {in_ep.name} -> {out_ep.name} at {host.rate} Hz, block {host.blocksize} "
                  f"({where}; stems {', '.join(stems)}{ports}); Ctrl-C stops", file=sys.stderr)
            main_loop = None
            if use_ui:
                from .ui.mixer_app import mixer_main_loop
                main_loop = mixer_main_loop(host, ui_cfg, where, f"{in_ep.name} -> {out_ep.name} at {host.rate} Hz, "
                                            f"block {host.blocksize}")
            stats = host.run(args.duration, main_loop=main_loop)
    finally:
        if midi is not None:
            midi.close()

    from .host.report import stats_dict, summary, write_stats_json
    d = stats_dict(stats, engine, mixer, midi)
    d["model"] = where
    d["stems"] = list(stems)
    d["key_semitones"] = controls.value("key") if "key" in controls else 0.0
    d["chains"] = fx.describe()
    d["controls"] = controls.snapshot()
    if args.stats_json:
        write_stats_json(d, args.stats_json)
    print(summary(d), file=sys.stderr)
    return 0


def _ui(args, config: dict, live: bool):
    """(show the terminal mixer?, UiConfig). Explicit --ui needs textual and a live run; auto falls back to the
    status line without textual."""
    from .ui.mixer_view import UiConfig, want_ui
    ui_cfg = UiConfig.from_config(config)
    use = want_ui(args.ui, ui_cfg, live, args.quiet)
    if use:
        try:
            import textual  # noqa: F401
        except ImportError as e:
            if args.ui:
                raise UserError(f"--ui needs the textual package ({e}); expected `pip install textual`") from None
            use = False
    return use, ui_cfg


def _open_midi(args, raw_map, stems, controls, midi_cfg):
    """The MIDI input with its map checked against the controls that exist (the map file strictly; the
    default map skips bindings to controls this run lacks)."""
    if not args.midi:
        return None
    from .control.midi import MidiControl, MidiMap, open_midi_input
    midi_map = MidiMap(raw_map.bindings, stems, strict=bool(args.midi_map),
                       where=f"MIDI map {args.midi_map}" if args.midi_map else "config midi.default_map",
                       controls=controls.names())
    midi_in, port = open_midi_input(args.midi, midi_cfg)
    print(f"streaming: MIDI from {port} ({len(midi_map.bindings)} bindings)", file=sys.stderr)
    return MidiControl(midi_in, midi_map, midi_cfg, controls)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli("python -m streaming", lambda: run(args))
