"""`python -m tools.evaluate DATA`: BSS Eval v4 (museval) of the separator, with floor and ceiling.

SDR, SIR, SAR and ISR per stem over 1-second windows (museval, not reimplemented), median over the
windows of a track (windows with a silent reference give NaN and are left out, as in SiSEC), then
median over tracks. Estimates scored side by side:

  model    the separator (offline chunked overlap-add, or `--streaming`: the live engine path with its
           latency removed)
  mixture  `--baseline mixture`: the unprocessed mixture as every stem's estimate (the floor)
  oracle   `--baseline oracle`: ideal ratio masks |S_j| / sum_k |S_k| from the true stems at the model's
           own STFT, applied to the mixture STFT (the ceiling of magnitude masking at that resolution)

DATA: musdb:/path (MUSDB18 .stem.mp4, test subset unless --subset), musdb-hq:/path (wav), folder:/path
(<track>/<stem>.wav|flac|ogg, or one such track folder itself; mixture.* optional, else the sum of the
stems; `accompaniment` may be given as a reference), demo (the MUSDB18 preview shipped in stempeg) or
eif-valid[:/shared/data] (the 16 fixed 12 s excerpts of the eif validation songs Caesium and Francium
where vocals sound, config real_vocals.valid_excerpts; mixture = vocals + accompaniment). The mixture
file is separated as given (it may be a mastered mix, not the sum of the stems); the stem files are the
references. A model stem without a reference file (e.g. accompaniment) is built from its parts (config stems.merges).

    python -m tools.evaluate demo --baseline mixture --baseline oracle --json demo.json
"""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import model
from core.errors import OneLineParser, UserError, run_main

from .audio_io import add_separator_arguments, fit_length, load_separator, read_audio, resample, write_json
from .separate import separate_audio
from .settings import tools_settings

METRICS = ("SDR", "SIR", "SAR", "ISR")
ESTIMATES = ("mixture", "model", "oracle")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


@dataclass
class Track:
    """One evaluation track: mixture (N, C) and reference stems {name: (N, C)} at `rate`."""

    name: str
    rate: int
    mixture: np.ndarray
    references: dict[str, np.ndarray] = field(default_factory=dict)


# -- data ------------------------------------------------------------------------------------------
def demo_tracks() -> Iterator[Track]:
    try:
        import stempeg
        audio, rate = stempeg.read_stems(stempeg.example_stem_path(), dtype=np.float32)
    except Exception as e:  # noqa: BLE001 - ffmpeg / stempeg failures become one line
        raise UserError(f"cannot decode the stempeg demo track ({str(e).splitlines()[0][:120]}); "
                        "expected stempeg and ffmpeg") from None
    names = ("drums", "bass", "other", "vocals")
    yield Track("demo", int(rate), audio[0], {n: audio[i + 1] for i, n in enumerate(names)})


def folder_tracks(root: Path) -> Iterator[Track]:
    if not root.is_dir():
        raise UserError(f"folder:{root}: expected a folder of <track>/<stem>.wav|flac|ogg, found no such folder")
    # A folder that holds stem files itself is one track (e.g. folder:../shared/data/eif/Caesium).
    dirs = [root] if _stem_files(root) else sorted(d for d in root.iterdir() if d.is_dir() and _stem_files(d))
    if not dirs:
        raise UserError(f"folder:{root}: expected <track>/<stem>.wav|flac|ogg subfolders, found none")
    for d in dirs:
        files = _stem_files(d)
        audio, rates = {}, {}
        for name, path in files.items():
            audio[name], rates[name] = read_audio(path)
        if len(set(rates.values())) != 1 or len({a.shape for a in audio.values()}) != 1:
            got = ", ".join(f"{n} {a.shape[0]} frames x {a.shape[1]} ch at {rates[n]} Hz" for n, a in audio.items())
            raise UserError(f"{d}: expected stems of equal length, channels and rate, got {got}")
        rates = set(rates.values())
        mixture = audio.pop("mixture", None)
        if not audio:
            raise UserError(f"{d}: expected reference stems beside the mixture, found only {sorted(files)}")
        if mixture is None:
            mixture = np.sum(list(audio.values()), axis=0)
        yield Track(d.name, rates.pop(), mixture, audio)


def _stem_files(d: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(d.iterdir()) if p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".")}


def musdb_tracks(root: Path, hq: bool, subset: str) -> Iterator[Track]:
    import musdb
    if not root.is_dir():
        raise UserError(f"musdb:{root}: expected the MUSDB18 root folder, found no such folder")
    try:
        db = musdb.DB(root=str(root), subsets=subset, is_wav=hq)
    except Exception as e:  # noqa: BLE001
        raise UserError(f"musdb:{root}: cannot open the dataset ({str(e).splitlines()[0][:120]})") from None
    if not len(db):
        raise UserError(f"musdb:{root}: expected MUSDB18{'-HQ' if hq else ''} tracks in subset {subset!r}, found none")
    for t in db:
        refs = {name: np.asarray(t.targets[name].audio, np.float32) for name in ("vocals", "drums", "bass", "other")}
        yield Track(t.name, int(t.rate), np.asarray(t.audio, np.float32), refs)


def eif_valid_tracks(root: str | None) -> Iterator[Track]:
    """The fixed vocal-sounding excerpts of the eif validation songs (config `real_vocals.valid_excerpts`),
    each a track whose mixture is vocals + accompaniment sample for sample."""
    from training.real_vocals import RealValidTracks, RealVocalsConfig, find_data_root

    cfg = RealVocalsConfig.from_dict(None)
    src = RealValidTracks(find_data_root(root, cfg.root), 44100, cfg)
    for i in range(len(src)):
        voc, acc = src.read(i, ["vocals", "accompaniment"], 0, src.length)
        refs = {"vocals": np.ascontiguousarray(voc.T), "accompaniment": np.ascontiguousarray(acc.T)}
        yield Track(src.track_name(i), src.sample_rate, refs["vocals"] + refs["accompaniment"], refs)


def open_data(spec: str, subset: str = "test") -> Iterator[Track]:
    if spec == "demo":
        return demo_tracks()
    kind, _, path = spec.partition(":")
    if kind == "eif-valid":
        return eif_valid_tracks(path or None)
    if kind == "folder" and path:
        return folder_tracks(Path(path))
    if kind in ("musdb", "musdb-hq") and path:
        return musdb_tracks(Path(path), kind == "musdb-hq", subset)
    raise UserError(f"data: expected demo, eif-valid[:/path], folder:/path, musdb:/path or musdb-hq:/path, got {spec!r}")


# -- references and estimates ----------------------------------------------------------------------
def references_for(track: Track, stems: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The reference of every model stem: the stem file, or the sum of its parts (stems.merges)."""
    merges = model.stem_merges()
    out = {}
    for stem in stems:
        if stem in track.references:
            out[stem] = track.references[stem]
        elif stem in merges and all(p in track.references for p in merges[stem]):
            out[stem] = np.sum([track.references[p] for p in merges[stem]], axis=0)
        else:
            raise UserError(f"track {track.name}: no reference for stem {stem!r}; expected a {stem} file"
                            + (f" or all of {merges[stem]}" if stem in merges else "")
                            + f", found {sorted(track.references)}")
    return out


def oracle_estimates(sep: model.Separator, track: Track, refs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Ideal ratio masks at the model's STFT: M_j = |S_j| / sum_k |S_k| over the model's stems plus a
    rest (reference stems no model stem covers), applied to the mixture STFT -> {stem: (N, C)}."""
    merges = model.stem_merges()
    covered = {p for s in refs for p in merges.get(s, [s])}
    rest = [a for name, a in track.references.items() if name not in covered and name not in merges]
    sources = list(refs.values()) + ([np.sum(rest, axis=0)] if rest else [])

    def spec(x: np.ndarray) -> torch.Tensor:
        return sep.stft(torch.from_numpy(np.ascontiguousarray(resample(x, track.rate, sep.sample_rate).T)))

    with torch.no_grad():
        mags = torch.stack([spec(s).abs() for s in sources])
        masks = mags / mags.sum(0).clamp_min(1e-8)
        n = round(track.mixture.shape[0] * sep.sample_rate / track.rate)
        mix = spec(track.mixture)
        out = {}
        for i, name in enumerate(refs):
            y = sep.stft.inverse(mix * masks[i], n).numpy().T
            out[name] = fit_length(resample(np.ascontiguousarray(y), sep.sample_rate, track.rate).T,
                                   track.mixture.shape[0]).T
    return out


def bss_eval(refs: dict[str, np.ndarray], ests: dict[str, np.ndarray], rate: int, win_s: float = 1.0,
             hop_s: float = 1.0) -> dict[str, dict[str, float]]:
    """museval BSS Eval v4 over all stems at once -> {stem: {metric: median over windows (NaN-free)}}."""
    import museval
    names = list(refs)
    r = np.stack([refs[n] for n in names]).astype(np.float64)
    e = np.stack([fit_length(ests[n].T, r.shape[1]).T for n in names]).astype(np.float64)
    sdr, isr, sir, sar = museval.evaluate(r, e, win=round(win_s * rate), hop=round(hop_s * rate))
    values = {"SDR": sdr, "SIR": sir, "SAR": sar, "ISR": isr}
    return {n: {m: _nanmedian(values[m][i]) for m in METRICS} for i, n in enumerate(names)}


def _nanmedian(x) -> float:
    x = np.asarray(x, np.float64)
    x = x[~np.isnan(x)]  # silent-reference windows (NaN) are left out; a perfect estimate may score inf
    return float(np.median(x)) if x.size else float("nan")


def aggregate(tracks: dict[str, dict[str, dict[str, dict[str, float]]]]) -> dict:
    """Median over tracks of the per-track medians: {estimate: {stem: {metric: x}}}."""
    out: dict = {}
    for per_est in tracks.values():
        for est, per_stem in per_est.items():
            for stem, scores in per_stem.items():
                for m, v in scores.items():
                    out.setdefault(est, {}).setdefault(stem, {}).setdefault(m, []).append(v)
    return {e: {s: {m: _nanmedian(v) for m, v in ms.items()} for s, ms in ss.items()} for e, ss in out.items()}


def evaluate(sep: model.Separator, tracks: Iterator[Track], streaming: bool = False,
             baselines: tuple[str, ...] = (), device: str = "cpu", progress: bool = False) -> dict:
    """Score the model (and the baselines) on every track -> {"tracks": ..., "aggregate": ...}."""
    settings = tools_settings()
    win_s, hop_s = settings.evaluate.win_seconds, settings.evaluate.hop_seconds
    sep_cfg = settings.separate
    results: dict = {}
    for track in tracks:
        refs = references_for(track, sep.stems)
        ests = {"model": separate_audio(sep, track.mixture, track.rate, list(sep.stems), streaming, device,
                                        sep_cfg, progress)}
        if "mixture" in baselines:
            ests["mixture"] = {s: track.mixture for s in refs}
        if "oracle" in baselines:
            ests["oracle"] = oracle_estimates(sep, track, refs)
        results[track.name] = {e: bss_eval(refs, ests[e], track.rate, win_s, hop_s)
                               for e in ESTIMATES if e in ests}
        if progress:
            print(f"evaluate: {track.name}: " + "; ".join(
                f"{e} " + " ".join(f"{s} {v['SDR']:.2f}" for s, v in r.items()) for e, r in results[track.name].items())
                + " (SDR dB)", file=sys.stderr)
    if not results:
        raise UserError("no tracks to evaluate")
    return {"tracks": results, "aggregate": aggregate(results)}


def format_table(agg: dict) -> str:
    rows = [["estimate", "stem", *METRICS]]
    for est in ESTIMATES:
        for stem, scores in agg.get(est, {}).items():
            rows.append([est, stem] + [f"{scores[m]:.2f}" if math.isfinite(scores[m]) else "nan" for m in METRICS])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m tools.evaluate", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="demo | eif-valid[:/path] | folder:/path | musdb:/path | musdb-hq:/path")
    p.add_argument("--subset", default="test", choices=("train", "test"), help="MUSDB18 subset (default test)")
    add_separator_arguments(p)
    p.add_argument("--streaming", action="store_true", help="separate through the streaming engine")
    p.add_argument("--baseline", action="append", default=[], choices=("mixture", "oracle"),
                   help="also score the mixture / the oracle ratio masks (repeatable)")
    p.add_argument("--json", metavar="PATH", help="write the scores as JSON")
    p.add_argument("--plot", metavar="PNG", help="draw SDR per track and stem against the baselines it ran "
                   "(tools/plots.py; the same scores as --json)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--quiet", "-q", action="store_true")
    return p


def run(args) -> int:
    import training  # noqa: F401 - declares the real_vocals section it reads
    from core.config import resolve_config
    from core.files import check_output_file, json_safe
    from tools import COMMAND
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: expected a CUDA GPU, none is available")
    resolve_config(command=COMMAND, reads=("real_vocals",))
    for flag, path in (("--json", args.json), ("--plot", args.plot)):
        if path:
            check_output_file(path, flag)
    tracks = open_data(args.data, args.subset)
    sep, where = load_separator(args.checkpoint, args.preset)
    mode = "streaming" if args.streaming else "offline"
    result = evaluate(sep, tracks, args.streaming, tuple(args.baseline), args.device, not args.quiet)
    result["meta"] = {"model": where, "mode": mode, "data": args.data, "stems": list(sep.stems),
                      "metric": "museval BSS Eval v4, 1 s windows, median over windows then over tracks"}
    print(f"# {where}; {mode}; {args.data}; {len(result['tracks'])} track(s); median of medians (dB)")
    print(format_table(result["aggregate"]))
    if args.json:
        write_json(args.json, result)
    if args.plot:
        from .plots import evaluate_figure, save_png
        save_png(evaluate_figure(json_safe(result)), args.plot)      # exactly what --json holds
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    from core.signals import exit_fast
    exit_fast(main())
