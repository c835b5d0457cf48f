"""Run figures: the status line, the exit summary and the `--stats-json` object."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class RunStats:
    """Counters and latency parts of one run (live or file)."""

    mode: str = ""
    seconds: float = 0.0                 # audio processed, in seconds of input
    wall_seconds: float = 0.0
    io_sample_rate: int = 0
    model_sample_rate: int = 0
    blocksize: int = 0
    input_overflows: int = 0
    xrun_times_s: list = field(default_factory=list)        # stream time of the first xruns
    late_block_times_s: list = field(default_factory=list)  # stream time of the first late blocks
    output_underflows: int = 0
    late_blocks: int = 0
    input_ring_drops: int = 0
    output_ring_drops: int = 0
    nonfinite_samples: int = 0
    algorithmic_latency_ms: float = 0.0
    resampler_latency_ms: float = 0.0
    chain_latency_ms: float = 0.0        # key change + effect chains (the longest stem path + the mix chain)
    buffer_latency_ms: float = 0.0
    device_latency_ms: float = 0.0
    worker_load: float = 0.0             # compute time / audio time, recent average
    extra: dict = field(default_factory=dict)

    @property
    def total_latency_ms(self) -> float:
        return (self.algorithmic_latency_ms + self.chain_latency_ms + self.resampler_latency_ms + self.buffer_latency_ms
                + self.device_latency_ms)


def _percentile(x: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(x, q)), 4) if len(x) else None


def stats_dict(stats: RunStats, engine, mixer, midi=None) -> dict:
    steps = np.asarray(engine.step_times_ms, np.float64)
    d = {
        "mode": stats.mode,
        "seconds": round(stats.seconds, 4),
        "wall_seconds": round(stats.wall_seconds, 4),
        "io_sample_rate": stats.io_sample_rate,
        "model_sample_rate": stats.model_sample_rate,
        "blocksize": stats.blocksize,
        "input_overflows": stats.input_overflows,
        "xrun_times_s": stats.xrun_times_s,
        "late_block_times_s": stats.late_block_times_s,
        "output_underflows": stats.output_underflows,
        "late_blocks": stats.late_blocks,
        "input_ring_drops": stats.input_ring_drops,
        "output_ring_drops": stats.output_ring_drops,
        "nonfinite_samples": stats.nonfinite_samples,
        "algorithmic_latency_ms": round(stats.algorithmic_latency_ms, 3),
        "chain_latency_ms": round(stats.chain_latency_ms, 3),
        "resampler_latency_ms": round(stats.resampler_latency_ms, 3),
        "buffer_latency_ms": round(stats.buffer_latency_ms, 3),
        "device_latency_ms": round(stats.device_latency_ms, 3),
        "total_latency_ms": round(stats.total_latency_ms, 3),
        "worker_load": round(stats.worker_load, 4),
        "step_ms_p50": _percentile(steps, 50),
        "step_ms_p99": _percentile(steps, 99),
        "hops": len(steps),
        "engine": engine.engine_kind,
        "hops_per_step": engine.hops_per_step,
        "step_latency_ms": round(1000.0 * engine.step_latency_samples / engine.sample_rate, 3),
        "engine_device": str(engine.device),
        "engine_threads": engine.threads,
        "compile_s": round(engine.compile_s, 3),
        "midi_messages": int(midi.messages) if midi else 0,
        "midi_ignored": int(midi.ignored) if midi else 0,
        "stem_gains_db": mixer.stem_gains_db(),
        "mixer": mixer.state(),
    }
    d.update(stats.extra)
    return d


def write_stats_json(d: dict, path: str | Path) -> None:
    from core.files import write_json
    write_json(path, d)


def status_line(stats: RunStats, mixer, levels_db: np.ndarray) -> str:
    lv = " ".join(f"{s} {'--' if l <= -120 else f'{l:5.1f}'}" for s, l in zip(mixer.stems, levels_db))
    gains = mixer.stem_gains_db()
    muted = [s for s, g in gains.items() if g is None]
    steps = stats.extra.get("headstart_steps", 0)
    grew = f" (+{steps} step{'s' if steps != 1 else ''})" if steps else ""
    src = stats.extra.get("jack_source")
    wait = f"waiting for ports matching {src['pattern']!r} | " if src and src["waiting"] else ""
    return (f"{wait}lat {stats.total_latency_ms:6.1f} ms{grew} | load {100 * stats.worker_load:4.0f}% | "
            f"xruns in {stats.input_overflows} out {stats.output_underflows} late {stats.late_blocks} | "
            f"dB {lv}" + (f" | off: {','.join(muted)}" if muted else ""))


def latency_line(stats: RunStats) -> str:
    """The start-up breakdown of the round trip: model + chains + resampler + buffers + device."""
    x = stats.extra
    rs = x.get("resample_quality", "")
    parts = [f"model {stats.algorithmic_latency_ms:.1f}"]
    k = x.get("hops_per_step", 1)
    if k > 1:
        parts[0] += f" (incl. {x.get('step_latency_ms', 0.0):.1f} for {k} hops per step)"
    if stats.chain_latency_ms:
        parts.append(f"chains {stats.chain_latency_ms:.1f}")
    parts.append(f"resampler {stats.resampler_latency_ms:.1f}" + (f" ({rs})" if rs else ""))
    buffers = f"buffers {stats.buffer_latency_ms:.1f}"
    if "headstart_blocks" in x:
        blocks = x["headstart_blocks"]
        buffers += (f" ({blocks} block{'s' if blocks != 1 else ''} of {stats.blocksize}; worker p"
                    f"{x.get('headstart_quantile', 99):g} {x['worker_block_ms_p99']:.2f} ms per block)")
    parts.append(buffers)
    parts.append(f"device {stats.device_latency_ms:.1f}")
    return f"latency {stats.total_latency_ms:.1f} ms = " + " + ".join(parts)


def _source_summary(src: dict | None) -> str:
    if not src:
        return ""
    if not src["connects"]:
        return f"; no ports matched {src['pattern']!r}"
    gaps = f", {src['gaps']} gap{'s' if src['gaps'] != 1 else ''} ({src['gap_s']:.1f} s)" if src["gaps"] else ""
    return f"; source {src['pattern']!r} connected {src['connects']}x{gaps}"


def summary(d: dict) -> str:
    def ms(v):
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f} ms"
    gains = ", ".join(f"{s}: {'muted' if g is None else f'{g:+.1f} dB'}" for s, g in d["stem_gains_db"].items())
    return (f"done: {d['seconds']:.2f} s of audio in {d['wall_seconds']:.2f} s ({d['mode']}); "
            f"latency {d['total_latency_ms']:.1f} ms (model {d['algorithmic_latency_ms']:.1f}, "
            + (f"chains {d['chain_latency_ms']:.1f}, " if d.get('chain_latency_ms') else "") + "resampling "
            f"{d['resampler_latency_ms']:.1f}, buffers {d['buffer_latency_ms']:.1f}, device {d['device_latency_ms']:.1f}); "
            f"{d.get('engine', 'eager')} step p50 {ms(d['step_ms_p50'])} p99 {ms(d['step_ms_p99'])}; xruns in {d['input_overflows']} "
            f"out {d['output_underflows']}; late blocks {d['late_blocks']}"
            + (f" (head start grew {d['headstart_steps']} blocks, +{d['headstart_grown_ms']:.1f} ms)"
               if d.get("headstart_steps") else "") + _source_summary(d.get("jack_source")) + f"; MIDI {d['midi_messages']} "
            f"({d['midi_ignored']} ignored); nonfinite input samples {d['nonfinite_samples']}; stems: {gains}")
