"""`python -m tools.resample_quality`: delay and quality of soxr's settings on the live host's resampler pair.

The live host converts the device rate to the model's 44.1 kHz and back (streaming/processing/resample.py). For each
soxr quality (QQ, LQ, MQ, HQ, VHQ) this measures, with the host's own `StreamResampler`:

- lag: how far the output of the in -> out pair falls behind its input when fed device blocks
  (`chain_lag_frames`: the filter delay plus soxr's bursty release); the host primes its output ring with
  it, so it is the resampler's share of the live round trip;
- THD+N: tones at -6 dBFS from 100 Hz to 19 kHz through the pair (device rate -> 44.1 kHz -> device rate):
  everything but the tone (least-squares fit) that lies in the audible band (<= 20 kHz), relative to the
  tone; the worst tone <= 16 kHz and the tone at 19 kHz are reported, and the passband gain at 19 kHz;
- aliasing: tones above 22.05 kHz (the model's Nyquist) into the down-converter; what comes out below
  20 kHz (relative to the input tone; the worst tone). An ideal converter folds a 22.5-24 kHz tone to
  20.1-21.6 kHz, out of the audible band; what lands below 20 kHz are the converter's own spurs;
- cost: CPU time of the pair per device block of 256 frames (stereo; median of 400 blocks).

    python -m tools.resample_quality [--rate 48000] [--blocks 64,128,256] [--qualities QQ,LQ,LD32] [--json out.json]
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from streaming.processing.resample import QUALITIES, StreamResampler, chain_lag_frames, check_quality

MODEL_RATE = 44100
TONES_HZ = (100.0, 1000.0, 5000.0, 10000.0, 14000.0, 16000.0, 19000.0)
ALIAS_HZ = (22500.0, 23500.0, 26000.0, 30000.0, 40000.0)
AUDIBLE_HZ = 20000.0
DEFAULT_QUALITIES = (*QUALITIES, "LD16", "LD24", "LD32", "LD48")


def _stream(rs: StreamResampler, x: np.ndarray, block: int) -> np.ndarray:
    """x (n,) mono through a streaming resampler in `block`-frame chunks, flushed -> (m,)."""
    x2 = np.repeat(x[:, None], 2, axis=1).astype(np.float32)
    out = [rs.process(x2[i:i + block]) for i in range(0, len(x2), block)]
    out.append(rs.flush())
    return np.concatenate(out)[:, 0].astype(np.float64)


def _band_power(x: np.ndarray, rate: int, top_hz: float = AUDIBLE_HZ) -> float:
    """Power of x (Hann-windowed) in 0..top_hz."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / rate)
    return float(spec[freqs <= top_hz].sum())


def _residual_db(y: np.ndarray, f: float, rate: int) -> tuple[float, float]:
    """(in-band THD+N dB relative to the fitted tone, tone amplitude) of y, a tone at f Hz, edges trimmed."""
    n = len(y)
    y = y[n // 8: n - n // 8]
    t = np.arange(len(y)) / rate
    basis = np.stack([np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t), np.ones_like(t)], 1)
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    fit = basis @ coef
    amp = float(np.hypot(coef[0], coef[1]))
    ratio = _band_power(y - fit, rate) / max(_band_power(fit - coef[2], rate), 1e-30)
    return 10.0 * np.log10(max(ratio, 1e-24)), amp


def measure(quality: str, rate: int, blocks: tuple[int, ...], seconds: float = 0.5) -> dict:
    """One row of the table: lag at each block size, THD+N of the round trip, aliasing of the down-converter."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    rec: dict = {"quality": quality, "rate": rate}
    for b in blocks:
        lag = chain_lag_frames(rate, MODEL_RATE, quality, b)
        rec[f"lag_frames_b{b}"] = lag
        rec[f"lag_ms_b{b}"] = round(1000.0 * lag / rate, 3)
    thd = {}
    gain19 = None
    for f in TONES_HZ:
        x = 0.5 * np.sin(2 * np.pi * f * t)
        down = StreamResampler(rate, MODEL_RATE, 2, quality)
        up = StreamResampler(MODEL_RATE, rate, 2, quality)
        mid = _stream(down, x, 256)
        y = _stream(up, mid, 256)
        db, amp = _residual_db(y[:n], f, rate)
        thd[f] = db
        if f == 19000.0:
            gain19 = 20.0 * np.log10(max(amp / 0.5, 1e-12))
    rec["thdn_db"] = {str(int(f)): round(v, 1) for f, v in thd.items()}
    rec["thdn_db_worst_to_16k"] = round(max(v for f, v in thd.items() if f <= 16000.0), 1)
    rec["thdn_db_19k"] = round(thd[19000.0], 1)
    rec["gain_db_19k"] = round(gain19, 2)
    alias = []
    for f in ALIAS_HZ:
        if f >= rate / 2:
            continue
        x = 0.5 * np.sin(2 * np.pi * f * t)
        y = _stream(StreamResampler(rate, MODEL_RATE, 2, quality), x, 256)
        m = len(y)
        core = y[m // 8: m - m // 8]
        ref = 0.5 * np.sin(2 * np.pi * 1000.0 * np.arange(len(core)) / MODEL_RATE)   # same level, in band
        alias.append(10.0 * np.log10(max(_band_power(core, MODEL_RATE) / _band_power(ref, MODEL_RATE), 1e-24)))
    rec["alias_db"] = round(max(alias), 1) if alias else None
    import time
    down, up = StreamResampler(rate, MODEL_RATE, 2, quality), StreamResampler(MODEL_RATE, rate, 2, quality)
    block = (0.1 * np.random.default_rng(0).standard_normal((256, 2))).astype(np.float32)
    cost = []
    for _ in range(400):
        t0 = time.perf_counter()
        up.process(down.process(block))
        cost.append(time.perf_counter() - t0)
    rec["cost_us_b256"] = round(1e6 * float(np.median(cost)), 1)
    return rec


def table(rows: list[dict], blocks: tuple[int, ...]) -> str:
    head = ["quality"] + [f"lag b{b} (ms)" for b in blocks] + ["THD+N <=16k", "THD+N 19k", "gain 19k",
                                                             "alias into 0-20k", "cost / 256 frames"]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        cells = [r["quality"]] + [f"{r[f'lag_frames_b{b}']} ({r[f'lag_ms_b{b}']:.2f})" for b in blocks]
        cells += [f"{r['thdn_db_worst_to_16k']:.1f} dB", f"{r['thdn_db_19k']:.1f} dB", f"{r['gain_db_19k']:+.2f} dB",
                  "-" if r["alias_db"] is None else f"{r['alias_db']:.1f} dB", f"{r['cost_us_b256']:.0f} us"]
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.resample_quality", description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=int, default=48000, help="device rate (default 48000; the model runs at 44100)")
    p.add_argument("--blocks", default="64,128,256", help="device block sizes for the lag (default 64,128,256)")
    p.add_argument("--qualities", default=",".join(DEFAULT_QUALITIES), help="soxr qualities and LD<n> settings "
                   f"(default {','.join(DEFAULT_QUALITIES)})")
    p.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = p.parse_args(argv)
    blocks = tuple(int(b) for b in args.blocks.split(","))
    rows = [measure(check_quality(q, "--qualities"), args.rate, blocks) for q in args.qualities.split(",")]
    print(f"# {args.rate} Hz <-> {MODEL_RATE} Hz through streaming.processing.resample.StreamResampler (soxr and LD<n>)")
    print(table(rows, blocks))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    from core.signals import exit_fast
    exit_fast(main())
