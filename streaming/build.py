"""The one builder: a RunPlan -> the processing pieces of a run, each built once.

`build(plan, engine, io_rate)` makes the mixer (at the planned gains), the key change, the effect chains,
the router, the mic path and the control registry, and the `RemixChain` that runs them; the live host,
file runs, `tools.ui_bench` and the benchmarks all call it (see `streaming/plan.py` for the whole way).
`make_engine` and `warm_engine` make the engine the plan asks for; `open_midi` opens the planned MIDI input on the built
controls.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from core.errors import UserError

from .control.registry import ControlRegistry, register_mixer
from .plan import RunPlan
from .processing.keyshift import KeyChange
from .processing.mic import MicPath
from .processing.remix_chain import RemixChain
from .processing.routing import Router, default_routes
from .processing.stem_fx import StemEffects, build_key, register_key
from .processing.stem_mixer import StemMixer


@dataclass
class Pieces:
    """What `build` returns. `chain.mixer`, `chain.fx` and `chain.router` are the same objects as here."""

    chain: RemixChain
    mixer: StemMixer
    fx: StemEffects
    key: KeyChange | None
    router: Router | None
    mic: MicPath | None          # at the I/O rate; the host runs it on the worker, ahead of the chain
    mic_prefill_blocks: int
    controls: ControlRegistry    # every control of this run: mixer, key, chains, mic


def _mixer(plan: RunPlan) -> StemMixer:
    mixer = StemMixer(plan.stems, plan.settings.mixer)
    for s in plan.mixer.mutes:
        mixer.set_mute(s, True)
    for s in plan.mixer.solos:
        mixer.set_solo(s, True)
    for stem, db in plan.mixer.gains:
        mixer.set_gain_db(stem, db)
    mixer.set_master_db(plan.mixer.master_db)
    mixer.settle()
    return mixer


def _router(plan: RunPlan, device_out_channels: int | None) -> Router | None:
    """--jack-ports' layout, the --route list (checked against the device's channels), the mic's default
    (the mix and the mic on 1-2), or None: the mix on two channels (its mono sum on a mono device)."""
    mic = plan.mic is not None
    if plan.port_names:
        return Router(list(plan.routes), plan.stems, mic, port_names=list(plan.port_names))
    if plan.routes:
        return Router(list(plan.routes), plan.stems, mic, out_channels=device_out_channels)
    if mic:
        assert device_out_channels is not None, "the mic plays on an output device"
        return Router(default_routes(device_out_channels), plan.stems, True)
    return None


def build_effects(plan: RunPlan, model_rate: int) -> StemEffects:
    """The key change and the effect chains of the plan at the model rate (`fx.key`: the key change or None)."""
    key = build_key(plan.stems, model_rate, plan.settings.key, plan.key_semitones, plan.key_bound)
    return StemEffects(plan.stems, model_rate, plan.fx, key)


def build(plan: RunPlan, engine, io_rate: int, device_out_channels: int | None = None) -> Pieces:
    """plan, the engine (a StreamingSeparator: stems, model rate), the I/O rate and the output device's channel
    count (None: a file) -> Pieces."""
    s = plan.settings
    assert tuple(engine.stems) == plan.stems, (engine.stems, plan.stems)
    mixer = _mixer(plan)
    fx = build_effects(plan, engine.sample_rate)
    key = fx.key
    controls = ControlRegistry(s.midi.queue_size)
    register_mixer(controls, mixer, s.midi.fader_max_db)
    register_key(controls, key, s.key)
    fx.register(controls)
    mic = None
    if plan.mic is not None:
        mic = MicPath(plan.mic.specs, io_rate, plan.mic.level_db)
        mic.register(controls, mixer.cfg.max_gain_db)
    router = _router(plan, device_out_channels)
    if router is not None:
        out_channels = router.n_channels
    else:
        out_channels = 2 if device_out_channels is None else min(2, device_out_channels)
    quality = s.host.resample_quality if plan.live else s.host.file_resample_quality
    chain = RemixChain(engine, mixer, io_rate, quality, out_channels=out_channels, fx=fx, router=router,
                       meter_cfg=s.meters)
    return Pieces(chain=chain, mixer=mixer, fx=fx, key=key, router=router, mic=mic,
                  mic_prefill_blocks=plan.mic.prefill_blocks if plan.mic else 2, controls=controls)


def _torch_device(name: str) -> str:
    import torch
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: expected a CUDA GPU, none is available")
    return name


AUTO_PROBE_CALLS = 64   # hops_per_step auto: timed calls per candidate K


def make_engine(plan: RunPlan, separator):
    """The streaming engine the plan asks for (device, compile setting, threads), cold: `warm_engine` compiles
    and warms it up once its pieces are built, before any stream opens. With hops per step `auto`, a live
    plan's engine comes from `pick_hops` (compiled, warm); any other run takes K = 1."""
    cfg = plan.settings.engine
    if cfg.hops_per_step == "auto":
        if plan.live:
            return pick_hops(plan, separator)
        print("streaming: hops per step auto: 1 (a file -> file run has no real-time deadline)", file=sys.stderr)
    return _engine(plan, separator, 1 if cfg.hops_per_step == "auto" else cfg.hops_per_step)


def _engine(plan: RunPlan, separator, k: int):
    from .engine.separator import StreamingSeparator
    cfg = plan.settings.engine
    setting = cfg.compile if plan.compile is None else plan.compile
    return StreamingSeparator(separator, device=_torch_device(plan.device), compile=setting, threads=cfg.threads,
                              hops_per_step=k)


def pick_hops(plan: RunPlan, separator):
    """`hops_per_step: auto`: for K = 1, 2, 4, ... up to streaming.auto_hops_max, build the engine, warm it up
    (compiling it, as the run would) and time AUTO_PROBE_CALLS calls on silence; the first K whose p99 call
    fits streaming.auto_hops_budget of its K hops wins (else the largest tried). -> that engine, warm."""
    import numpy as np
    cfg = plan.settings.engine
    ks = [k for k in (1, 2, 4, 8, 16) if k <= cfg.auto_hops_max]
    tried = []
    for k in ks:
        engine = _engine(plan, separator, k)
        warm_engine(plan, engine)
        engine.reset_stats()
        silence = np.zeros((engine.channels, k * engine.hop_length), np.float32)
        for _ in range(AUTO_PROBE_CALLS):
            engine.feed(silence)
        p99 = float(np.percentile(engine.step_times_ms * k, 99))      # step_times_ms is per hop: x K per call
        engine.reset()
        hops_ms = 1000.0 * k * engine.hop_length / engine.sample_rate
        tried.append(f"K={k}: call p99 {p99:.2f} ms of {hops_ms:.1f}")
        if p99 <= cfg.auto_hops_budget * hops_ms or k == ks[-1]:
            verdict = "fits" if p99 <= cfg.auto_hops_budget * hops_ms else "does not fit; the largest tried"
            print(f"streaming: hops per step auto: {k} ({'; '.join(tried)}; budget {100 * cfg.auto_hops_budget:g} % "
                  f"of the call's hops: {verdict})", file=sys.stderr)
            engine.reset_stats()
            return engine
    raise AssertionError("unreachable")


def warm_engine(plan: RunPlan, engine, file_seconds: float | None = None) -> None:
    """Compile (when asked) and warm up. `file_seconds`: the length of a file -> file run's input; with compile
    auto, shorter than `streaming.compile_min_file_s` and no cached build, the run stays eager (compiling the
    step takes longer than the whole eager run)."""
    cfg = plan.settings.engine
    if file_seconds is not None and file_seconds < cfg.compile_min_file_s and engine.skip_compile_unless_cached():
        print(f"streaming: eager step for this {file_seconds:.0f} s file (compiling pays off from "
              f"{cfg.compile_min_file_s:g} s: streaming.compile_min_file_s; --compile forces it)", file=sys.stderr)
    if engine.compiles_on_warm_up:
        from .engine.compiled import cache_dir
        print(f"streaming: compiling the streaming step for {engine.device.type} (cached in {cache_dir()}; "
              "a first start takes up to a minute)...", file=sys.stderr, flush=True)
    engine.warm_up()
    if engine.compile_s:
        print(f"streaming: {engine.engine_kind} step ready in {engine.compile_s:.1f} s", file=sys.stderr)


def open_midi(plan: RunPlan, controls: ControlRegistry):
    """The planned MIDI input with its map checked against the built controls (the map file strictly; the
    default map skips bindings to controls this run lacks) -> MidiControl, or None without --midi."""
    midi = plan.midi
    if midi is None or midi.map is None:
        return None
    from .control.midi import MidiControl, MidiMap, open_midi_input
    cfg = plan.settings.midi
    midi_map = MidiMap(midi.map.bindings, plan.stems, strict=bool(midi.map_path),
                       where=f"MIDI map {midi.map_path}" if midi.map_path else "config midi.default_map",
                       controls=controls.names())
    midi_in, port = open_midi_input(midi.port, cfg)
    print(f"streaming: MIDI from {port} ({len(midi_map.bindings)} bindings)", file=sys.stderr)
    return MidiControl(midi_in, midi_map, cfg, controls)
