"""Objective checks of how close the song engine's vocals are to real singing ("listening by numbers").

    python -m training.songs.realism --synth DIR [--synth DIR2 ...] [--real ROOT] [--json out.json]

DIR: a folder of rendered songs (`python -m training.render`, `<song>/vocals.wav`); ROOT: the shared data
folder (default: found as training.real_vocals does). Real reference: the vocals of the eif *training* songs
and the solo clip (never the validation songs). Per set it reports, over the frames where the voice sounds:

- pitch contour (YIN f0 every 10 ms): voiced share, median and 95th percentile |pitch change| per 10 ms
  within voiced runs (cents), vibrato (share of sustained 0.5 s windows whose detrended contour has a
  dominant 3.5-9 Hz peak, its median rate and peak-to-peak extent), note transition time (10-90 % of
  pitch jumps > 1 semitone), micro-jitter (std of the contour minus its 50 ms moving average);
- spectral envelope: level-normalised mean log-mel spectrum (dB) and its RMS distance to the real one
  over 100 Hz - 11 kHz, spectral tilt (dB / octave, 200 Hz - 8 kHz), share of energy above 5 kHz, median
  log10 spectral flatness, Frechet distance of MFCC frame statistics to the real ones;
- a cheap-cue classifier: logistic regression on per-second summary features (MFCC means / stds, deltas,
  flatness, pitch statistics), leave-one-group-out accuracy of telling real from synthetic seconds
  (0.5 = indistinguishable by these cues).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000  # analysis rate
HOP = 160  # 10 ms
N_MELS = 64
FMIN, FMAX = 65.0, 1100.0


def _mono16k(x: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    x = x.mean(axis=1) if x.ndim == 2 else x
    return soxr.resample(x.astype(np.float32), rate, SR).astype(np.float32)


# -- pitch -----------------------------------------------------------------------------------------
def yin(x: np.ndarray, threshold: float = 0.15) -> np.ndarray:
    """(N,) mono at 16 kHz -> (M,) f0 in Hz every 10 ms (0 = unvoiced). YIN with FFT correlation."""
    w = 400  # 25 ms integration window
    tmax = int(SR / FMIN) + 1
    tmin = int(SR / FMAX)
    length = w + tmax
    m = max(0, (len(x) - length) // HOP + 1)
    f0 = np.zeros(m)
    nfft = 1 << int(np.ceil(np.log2(length + w)))
    for a in range(0, m, 2048):
        idx = np.arange(a, min(m, a + 2048))[:, None] * HOP + np.arange(length)[None]
        fr = x[idx].astype(np.float64)
        spec = np.fft.rfft(fr, nfft)
        head = np.fft.rfft(fr[:, :w], nfft)
        r = np.fft.irfft(np.conj(head) * spec, nfft)[:, :tmax]
        c = np.concatenate([np.zeros((len(fr), 1)), np.cumsum(fr ** 2, axis=1)], axis=1)
        e0 = c[:, w:w + 1]
        et = c[:, w:w + tmax] - c[:, 0:tmax]
        d = np.maximum(e0 + et - 2 * r, 0.0)
        d[:, 0] = 0
        cm = d[:, 1:] * np.arange(1, tmax) / np.maximum(np.cumsum(d[:, 1:], axis=1), 1e-12)
        cm = np.concatenate([np.ones((len(fr), 1)), cm], axis=1)
        cm[:, :tmin] = 1.0
        below = cm < threshold
        first = np.where(below.any(axis=1), below.argmax(axis=1), -1)
        for k, t in enumerate(first):
            if t < 0 or e0[k, 0] < 1e-7 * w:
                continue
            while t + 1 < tmax and cm[k, t + 1] < cm[k, t]:
                t += 1
            y0, y1, y2 = cm[k, t - 1], cm[k, t], cm[k, min(t + 1, tmax - 1)]
            den = y0 - 2 * y1 + y2
            tt = t + (0.5 * (y0 - y2) / den if abs(den) > 1e-12 else 0.0)
            f0[a + k] = SR / tt
    return f0


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def contour_stats(f0: np.ndarray, active: np.ndarray) -> dict[str, float]:
    """Pitch-contour statistics (see the module docstring) of one clip's f0 track."""
    voiced = f0 > 0
    cents = np.where(voiced, 1200 * np.log2(np.maximum(f0, 1e-9) / 440.0), 0.0)
    # Split voiced runs at octave errors / jumps the tracker makes (> 3 semitones in 10 ms).
    step = np.abs(np.diff(cents, prepend=cents[:1]))
    ok = voiced & (np.concatenate([[True], (step[1:] < 300) | ~voiced[:-1]]))
    runs = [(a, b) for a, b in _runs(ok) if b - a >= 8]
    slopes, jitter, vib_flags, vib_rates, vib_ext, trans = [], [], [], [], [], []
    for a, b in runs:
        c = cents[a:b]
        slopes.append(np.abs(np.diff(c)))
        if b - a >= 5:
            k = np.ones(5) / 5
            sm = np.convolve(c, k, mode="same")
            jitter.append((c - sm)[2:-2])
        for s in range(0, b - a - 50 + 1, 25):  # 0.5 s windows, hop 0.25 s
            seg = c[s:s + 50]
            t = np.arange(50)
            seg = seg - np.polyval(np.polyfit(t, seg, 2), t)
            if np.ptp(c[s:s + 50]) > 250:  # a note change inside: not a sustained window
                continue
            spec = np.abs(np.fft.rfft(seg * np.hanning(50), 512)) ** 2
            freqs = np.fft.rfftfreq(512, 0.01)
            band = (freqs >= 3.5) & (freqs <= 9.0)
            strength = spec[band].sum() / max(spec[freqs >= 1.0].sum(), 1e-12)
            has = strength > 0.6 and np.std(seg) > 5.0
            vib_flags.append(has)
            if has:
                vib_rates.append(freqs[band][np.argmax(spec[band])])
                vib_ext.append(2 * np.sqrt(2) * np.std(seg))
        # Note transitions: plateau-to-plateau jumps of more than a semitone.
        for t in range(12, b - a - 12):
            before, after = np.median(c[t - 12:t - 4]), np.median(c[t + 4:t + 12])
            jump = after - before
            if abs(jump) > 100 and abs(c[t] - (before + after) / 2) < abs(jump) * 0.15:
                seg = (c[t - 12:t + 12] - before) / jump
                inside = np.flatnonzero((seg > 0.1) & (seg < 0.9))
                trans.append(10.0 * max(1, len(inside)))
    cat = np.concatenate(slopes) if slopes else np.zeros(1)
    jit = np.concatenate(jitter) if jitter else np.zeros(1)
    act = active[:len(f0)]
    return {
        "voiced_share": float(voiced[:len(act)][act].mean()) if act.any() else 0.0,
        "pitch_change_median_cents": float(np.median(cat)),
        "pitch_change_p95_cents": float(np.percentile(cat, 95)),
        "vibrato_share": float(np.mean(vib_flags)) if vib_flags else 0.0,
        "vibrato_rate_hz": float(np.median(vib_rates)) if vib_rates else float("nan"),
        "vibrato_extent_cents": float(np.median(vib_ext)) if vib_ext else float("nan"),
        "transition_ms": float(np.median(trans)) if trans else float("nan"),
        "micro_jitter_cents": float(np.std(jit)),
    }


# -- spectral envelope -----------------------------------------------------------------------------
def _mel_fb() -> tuple[np.ndarray, np.ndarray]:
    def mel(f):
        return 2595 * np.log10(1 + f / 700.0)

    def hz(m):
        return 700 * (10 ** (m / 2595) - 1)

    nfft = 1024
    freqs = np.fft.rfftfreq(nfft, 1 / 44100)
    pts = hz(np.linspace(mel(40.0), mel(16000.0), N_MELS + 2))
    fb = np.zeros((N_MELS, len(freqs)))
    for i in range(N_MELS):
        lo, c, hi = pts[i], pts[i + 1], pts[i + 2]
        fb[i] = np.clip(np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c)), 0, None)
    return fb, pts[1:-1]


def spectral_frames(x: np.ndarray, rate: int) -> dict[str, np.ndarray]:
    """(N, C) or (N,) at 44.1 kHz -> per 10 ms frame: log-mel (M, 64) dB, flatness (M,), level dB (M,),
    power spectrum summaries (tilt and high-frequency share are computed from the mean spectrum)."""
    import soxr

    x = x.mean(axis=1) if x.ndim == 2 else x
    if rate != 44100:
        x = soxr.resample(x.astype(np.float32), rate, 44100)
    nfft, hop = 1024, 441
    m = max(0, (len(x) - nfft) // hop + 1)
    idx = np.arange(m)[:, None] * hop + np.arange(nfft)[None]
    fb, _ = _mel_fb()
    win = np.hanning(nfft)
    logmel, flat, level, power = [], [], [], []
    for a in range(0, m, 4096):
        p = np.abs(np.fft.rfft(x[idx[a:a + 4096]] * win, axis=1)) ** 2 + 1e-12
        logmel.append(10 * np.log10(p @ fb.T + 1e-10))
        band = p[:, 3:372]  # ~130 Hz - 16 kHz
        flat.append(np.exp(np.mean(np.log(band), axis=1)) / np.mean(band, axis=1))
        level.append(10 * np.log10(p.sum(axis=1)))
        power.append(p)
    cat = (lambda v: np.concatenate(v) if v else np.zeros((0,)))
    return {"logmel": cat(logmel).reshape(-1, N_MELS), "flatness": cat(flat), "level": cat(level),
            "power": cat(power).reshape(-1, nfft // 2 + 1)}


def active_frames(level_db: np.ndarray, floor_db: float = 30.0) -> np.ndarray:
    """Frames within `floor_db` of the loud (99th percentile) level."""
    if not len(level_db):
        return np.zeros(0, bool)
    return level_db > np.percentile(level_db, 99) - floor_db


def _mfcc(logmel: np.ndarray, n: int = 20) -> np.ndarray:
    k = np.arange(N_MELS)
    dct = np.cos(np.pi / N_MELS * (k[None] + 0.5) * np.arange(n)[:, None]) * np.sqrt(2.0 / N_MELS)  # orthonormal
    return logmel @ dct.T


def _frechet(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.linalg import sqrtm

    ma, mb = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    s = sqrtm(ca @ cb)
    s = s.real if np.iscomplexobj(s) else s
    return float(np.sum((ma - mb) ** 2) + np.trace(ca + cb - 2 * s))


# -- per clip --------------------------------------------------------------------------------------
def analyse_clip(x: np.ndarray, rate: int) -> dict:
    """One vocal clip ((N, C) or (N,)) -> frame features and pitch track over its active frames."""
    spec = spectral_frames(x, rate)
    act = active_frames(spec["level"])
    f0 = yin(_mono16k(x, rate))
    m = min(len(f0), len(act))
    return {"spec": spec, "active": act, "f0": f0[:m], "act_f0": act[:m]}


def _segment_features(clip: dict) -> np.ndarray:
    """Per-second summary features of a clip's active seconds -> (K, D)."""
    mf = _mfcc(clip["spec"]["logmel"])
    mf = mf - mf[:, :1] * np.r_[1.0, np.zeros(mf.shape[1] - 1)]  # drop the level (c0) as a cue
    fl = np.log(clip["spec"]["flatness"] + 1e-9)
    f0 = clip["f0"]
    out = []
    n = min(len(mf), len(f0))
    for s in range(0, n - 100 + 1, 100):
        a = clip["active"][s:s + 100]
        if a.mean() < 0.5:
            continue
        seg = mf[s:s + 100][a]
        d = np.diff(mf[s:s + 100], axis=0)
        f = f0[s:s + 100]
        v = f > 0
        c = 1200 * np.log2(f[v] / 440.0) if v.sum() > 2 else np.zeros(3)
        dc = np.abs(np.diff(c)) if len(c) > 2 else np.zeros(2)
        out.append(np.concatenate([seg.mean(0)[1:], seg.std(0), np.abs(d).mean(0), [fl[s:s + 100][a].mean(),
                                   fl[s:s + 100][a].std(), v.mean(), np.median(dc), np.percentile(dc, 90)]]))
    return np.array(out).reshape(-1, 20 * 3 - 1 + 5)


def _fit_logreg(x, y, w):
    """Class-weighted L2 logistic regression (LBFGS) -> the fitted torch Linear."""
    import torch

    lin = torch.nn.Linear(x.shape[1], 1)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=200)

    def closure():
        opt.zero_grad()
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(lin(x)[:, 0], y, reduction="none") * w).mean()
        loss = loss + 1e-2 * (lin.weight ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return lin


def _logreg_accuracy(xs: list[np.ndarray], ys: list[int]) -> float:
    """Leave-one-group-out accuracy (balanced over the two classes) of an L2 logistic regression."""
    import torch

    groups = [i for i, x in enumerate(xs) if len(x)]
    accs: dict[int, list[float]] = {0: [], 1: []}
    for g in groups:
        tr = [i for i in groups if i != g]
        xtr = np.concatenate([xs[i] for i in tr])
        ytr = np.concatenate([np.full(len(xs[i]), ys[i]) for i in tr])
        w_cls = np.where(ytr == 1, 0.5 / max(ytr.mean(), 1e-9), 0.5 / max(1 - ytr.mean(), 1e-9))
        mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
        lin = _fit_logreg(torch.tensor((xtr - mu) / sd, dtype=torch.float32), torch.tensor(ytr, dtype=torch.float32),
                          torch.tensor(w_cls, dtype=torch.float32))
        with torch.no_grad():
            p = lin(torch.tensor((xs[g] - mu) / sd, dtype=torch.float32))[:, 0] > 0
        accs[ys[g]].append(float((p.numpy() == bool(ys[g])).mean()))
    return float(np.mean([np.mean(accs[0]), np.mean(accs[1])]))


def summarise(clips: list[dict]) -> dict:
    """Statistics over a set of clips: pitch contour, envelope, MFCCs (for distances)."""
    f0 = np.concatenate([c["f0"] for c in clips] + [np.zeros(1)])
    act = np.concatenate([c["act_f0"] for c in clips] + [np.zeros(1, bool)])
    cont = contour_stats(f0, act)
    logmel = np.concatenate([c["spec"]["logmel"][c["active"]] for c in clips])
    power = np.concatenate([c["spec"]["power"][c["active"]] for c in clips])
    flat = np.concatenate([c["spec"]["flatness"][c["active"]] for c in clips])
    mean_p = power.mean(0)
    freqs = np.fft.rfftfreq(1024, 1 / 44100)
    sel = (freqs >= 200) & (freqs <= 8000)
    tilt = np.polyfit(np.log2(freqs[sel]), 10 * np.log10(mean_p[sel]), 1)[0]
    env = logmel.mean(0)
    return {**cont, "tilt_db_per_octave": float(tilt),
            "energy_above_5k": float(mean_p[freqs > 5000].sum() / mean_p[freqs > 80].sum()),
            "log10_flatness_median": float(np.median(np.log10(flat + 1e-12))), "_env": env - env.mean(),
            "_mfcc": _mfcc(logmel)[:, 1:13]}


def compare(sets: dict[str, list[dict]], real: str = "real") -> dict[str, dict[str, float]]:
    """{set name: clips} -> {set name: statistics + distances to the real set}."""
    summ = {k: summarise(v) for k, v in sets.items()}
    _, centres = _mel_fb()
    band = (centres >= 100) & (centres <= 11000)
    out = {}
    feats = {k: [_segment_features(c) for c in v] for k, v in sets.items()}
    for k, s in summ.items():
        row = {m: v for m, v in s.items() if not m.startswith("_")}
        if k != real:
            row["envelope_distance_db"] = float(np.sqrt(np.mean((s["_env"] - summ[real]["_env"])[band] ** 2)))
            row["mfcc_frechet"] = _frechet(s["_mfcc"], summ[real]["_mfcc"])
            xs = feats[real] + feats[k]
            ys = [1] * len(feats[real]) + [0] * len(feats[k])
            row["classifier_accuracy"] = _logreg_accuracy(xs, ys)
        out[k] = row
    return out


def load_real(root: Path, max_seconds: float | None = None) -> list[dict]:
    """The real reference: vocals of the eif training songs and the solo clip(s) (never validation songs)."""
    from training.real_vocals import RealVocalLibrary, RealVocalsConfig

    cfg = RealVocalsConfig.from_dict(None)
    lib = RealVocalLibrary(root, cfg)
    clips = []
    for c in lib.songs + lib.solo:
        frames = -1 if max_seconds is None else int(max_seconds * c.sample_rate)
        x, rate = sf.read(str(c.vocals), frames=frames, dtype="float32", always_2d=True)
        clips.append(analyse_clip(x, rate))
    return clips


def load_synth(folder: Path) -> list[dict]:
    files = sorted(Path(folder).glob("*/vocals.wav"))
    if not files:
        raise SystemExit(f"realism: no <song>/vocals.wav under {folder}")
    return [analyse_clip(*sf.read(str(f), dtype="float32", always_2d=True)) for f in files]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.songs.realism", description=__doc__.splitlines()[0])
    p.add_argument("--synth", action="append", required=True, metavar="NAME=DIR",
                   help="rendered songs to compare (NAME=DIR or DIR); repeatable")
    p.add_argument("--real", default=None, help="shared data folder (default: found as training.real_vocals does)")
    p.add_argument("--real-seconds", type=float, default=None, help="use only the first seconds of each real clip")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    from training.real_vocals import find_data_root

    sets = {"real": load_real(find_data_root(a.real), a.real_seconds)}
    for spec in a.synth:
        name, _, d = spec.rpartition("=")
        sets[name or Path(d).name] = load_synth(Path(d))
    res = compare(sets)
    keys = list(next(iter(res.values())).keys()) + ["envelope_distance_db", "mfcc_frechet", "classifier_accuracy"]
    keys = list(dict.fromkeys(keys))
    print("metric".ljust(28) + "".join(k[:14].rjust(15) for k in res))
    for m in keys:
        print(m[:28].ljust(28) + "".join(f"{res[k].get(m, float('nan')):15.3f}" for k in res))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    from core.signals import exit_fast
    exit_fast(main())
