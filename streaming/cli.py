"""`python -m streaming`: live karaoke / remix host. See `--help` and the README."""
from __future__ import annotations

import argparse
import sys

from core.errors import OneLineParser, run_main

EPILOG = """\
inputs : mic | default (default input device), a device index or name substring, an audio file
         (played in real time, or as fast as possible when --output is a file), demo (the MUSDB18
         preview clip shipped with stempeg), or jack:PATTERN: another program's JACK output ports (a
         player, a browser; PATTERN is part of the client:port name, e.g. jack:mpv, jack:Firefox), through
         the host's own JACK client; connected when they appear, again after the program restarts.
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
         --jack-ports opens a JACK client with a named port pair per stem plus the mix; --connect
         SOURCE=PORTS wires a pair to other clients on start (mix=system:playback by default);
         --list-ports shows what there is to connect.
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


def _hops(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer from 1 to 16 or auto, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m streaming", description="Real-time music source separation host: live remix "
                "(karaoke, stem solo / mute / gain) from an audio interface, a file or the demo clip, with MIDI control.",
                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    io = p.add_argument_group("input / output")
    io.add_argument("--input", "-i", default="mic", help="mic|default|INDEX|NAME|FILE|demo|jack:PATTERN (default: mic)")
    io.add_argument("--output", "-o", default="speakers", help="speakers|default|INDEX|NAME|FILE.wav|FILE.flac "
                    "(default: speakers)")
    io.add_argument("--channels", help="input channels of a multi-channel interface, 1-based, e.g. 1,2 or 3 "
                    "(default: the first two)")
    io.add_argument("--samplerate", type=int, help="device sample rate in Hz (default: the device's)")
    io.add_argument("--duration", type=float, help="stop after this many seconds")
    io.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    io.add_argument("--list-ports", action="store_true", help="list the JACK server's audio ports (sources for "
                    "--input jack:, destinations for --connect) and exit")
    io.add_argument("--wait", type=float, metavar="S", help="with --input jack:PATTERN: wait up to S seconds for "
                    "matching ports before starting, then fail (0: they must be there now); default: start at once "
                    "and connect them whenever they appear")
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
    au.add_argument("--hops-per-step", type=_hops, metavar="K|auto", help="run K model hops per network call, as "
                    "one batch: cheaper per hop, K - 1 hops more latency; auto: the smallest K (1, 2, 4, ...) whose "
                    "call the start-up probe times within streaming.auto_hops_budget of its hops (config "
                    "streaming.hops_per_step; --latency-mode lowest: 2)")
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
    fx.add_argument("--connect", action="append", default=[], metavar="SOURCE=PORTS",
                    help="JACK: connect our SOURCE_L/_R ports (mix, a stem with --jack-ports, mic) to these input "
                    "ports (names or patterns, comma list; 'none': unconnected) when the stream opens, undone at "
                    "exit (repeatable; config routing.connect; default mix=system:playback)")
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


def _say_mode(p, where: str) -> None:
    """What --latency-mode chose, and a warning when its model has random weights."""
    mode, host = p.settings.mode, p.settings.host
    if mode is None:
        return
    k = p.settings.engine.hops_per_step
    steps = ", hops per step from the start-up probe" if k == "auto" else f", {k} hops per step" if k > 1 else ""
    if p.live:
        what = (f"block {host.blocksize}, head-start margin {host.prefill_margin_ms:g} ms "
                f"(p{host.prefill_quantile:g} of the measured worker time)")
    else:
        what = f"its block {host.blocksize} and head start apply to live runs only"
    random = "random weights" in where.lower()
    print(f"streaming: latency mode {mode.name}: {where}{steps}, {what}"
          + ("\nstreaming: WARNING: this mode's model has RANDOM weights (no trained checkpoint "
             f"{mode.checkpoint_path()} yet): the output is NOT a separation" if random else ""), file=sys.stderr)


def run(args) -> int:
    """One `python -m streaming` run: settings -> plan -> build -> host (streaming/plan.py)."""
    from .settings import load_separator, settings_from_args
    settings = settings_from_args(args)
    if args.list_devices:
        from .host.sources import list_devices
        print(list_devices())
        return 0
    if args.list_ports:
        from .host.jack_graph import list_ports
        print(list_ports(settings.routing.jack_client_name))
        return 0
    if args.list_midi:
        from .control.midi import list_midi_ports
        print("\n".join(list_midi_ports(settings.midi)) or "no MIDI input ports")
        return 0
    from .build import make_engine
    from .host.report import summary
    from .launch import learn_midi, list_controls, open_source_of, run_plan
    from .plan import plan
    sep, where = load_separator(settings, args.checkpoint, args.preset)
    p = plan(settings, args, tuple(sep.stems))
    if p.action == "list-controls":
        print(list_controls(p, make_engine(p, sep)))
        return 0
    if p.action == "midi-learn":
        learn_midi(p, make_engine(p, sep))
        return 0
    _say_mode(p, where)
    print(summary(run_plan(p, make_engine(p, sep), where, open_source_of(p))), file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)
