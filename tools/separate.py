"""`python -m tools.separate IN... --out DIR`: separate whole files into DIR/<track>/<stem>.wav.

Every input is read at its own rate (anything soundfile or ffmpeg decodes, or `demo`), resampled to
the model's rate if needed, separated, resampled back and written with the input's rate and length.
Offline: the model runs on overlapping segments overlap-added with normalised weights
(tools.chunked); `--streaming`: the file goes through `StreamingSeparator` block by block exactly as
the live host's file runs do, and the latency is dropped so the stems line up with the input.

    python -m tools.separate song.flac --out separated --stems vocals,accompaniment --plot
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import model
from model.errors import UserError, run_cli

from .audio_io import demo_audio, fit_length, load_separator, read_audio, resample, tools_config, write_audio
from .chunked import chunked_apply


@dataclass(frozen=True)
class SeparateConfig:
    """config.yaml `tools.separate`."""

    segment_seconds: float = 6.0
    overlap: float = 0.25
    batch_size: int = 1
    stream_block: int = 4096

    @classmethod
    def from_config(cls) -> SeparateConfig:
        return cls(**tools_config("separate"))


def available_stems(sep: model.Separator) -> list[str]:
    """The model's stems plus merged stems (e.g. accompaniment) whose parts the model all produces."""
    extra = [name for name, parts in model.stem_merges().items()
             if name not in sep.stems and all(p in sep.stems for p in parts)]
    return list(sep.stems) + extra


def parse_stems(spec: str | None, sep: model.Separator) -> list[str]:
    valid = available_stems(sep)
    if not spec:
        return list(sep.stems)
    wanted = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [s for s in wanted if s not in valid]
    if bad or not wanted:
        raise UserError(f"--stems: unknown stem(s) {bad or [spec]}; this model offers {', '.join(valid)}")
    return wanted


def separate_offline(sep: model.Separator, wav: np.ndarray, cfg: SeparateConfig = SeparateConfig(),
                     device: str = "cpu", progress: bool = False) -> np.ndarray:
    """(C, N) at the model rate -> (S, C, N) through the chunked overlap-add of the whole separator."""
    sep = sep.to(device).eval()
    segment = max(sep.n_fft, round(cfg.segment_seconds * sep.sample_rate))
    x = torch.from_numpy(np.ascontiguousarray(wav, np.float32)).to(device)[None]
    with torch.inference_mode():
        y = chunked_apply(sep, x, segment, cfg.overlap, cfg.batch_size, progress=progress, desc="offline")
    return y[0].cpu().numpy()


def separate_streaming(sep: model.Separator, wav: np.ndarray, block: int = 4096, device: str = "cpu",
                       progress: bool = False) -> np.ndarray:
    """(C, N) at the model rate -> (S, C, N) through StreamingSeparator fed `block` frames at a time,
    flushed, with the engine latency dropped (stream sample i + latency is output sample i)."""
    from streaming import StreamingSeparator
    engine = StreamingSeparator(sep, device=device, channels=wav.shape[0])
    n = wav.shape[1]
    out = np.empty((len(sep.stems), wav.shape[0], n + engine.latency_samples), np.float32)
    starts = range(0, n, block)
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc="streaming", unit="block", leave=False)
    for s in starts:
        engine.feed(wav[:, s:s + block], out=out[:, :, s:min(n, s + block)])
    out[:, :, n:] = engine.flush()
    return out[:, :, engine.latency_samples:]


def separate_audio(sep: model.Separator, audio: np.ndarray, rate: int, stems: list[str] | None = None,
                   streaming: bool = False, device: str = "cpu", cfg: SeparateConfig | None = None,
                   progress: bool = False) -> dict[str, np.ndarray]:
    """(N, C) at `rate` -> {stem: (N, C) at `rate`} for the requested stems (merged stems summed)."""
    cfg = cfg or SeparateConfig.from_config()
    if audio.ndim != 2 or audio.shape[1] not in (1, 2) or audio.shape[0] == 0:
        raise UserError(f"expected mono or stereo audio with at least one frame, got shape {audio.shape}")
    if not np.isfinite(audio).all():
        raise UserError("expected finite audio samples, got NaN or infinity")
    if streaming and not sep.causal:
        raise UserError("--streaming needs a causal (streaming) model; this checkpoint is offline")
    wav = resample(audio, rate, sep.sample_rate).T
    if streaming:
        y = separate_streaming(sep, wav, cfg.stream_block, device, progress)
    else:
        y = separate_offline(sep, wav, cfg, device, progress)
    out = {}
    merges = model.stem_merges()
    for name in stems or list(sep.stems):
        if name in sep.stems:
            s = y[sep.stems.index(name)]
        else:
            s = sum(y[sep.stems.index(p)] for p in merges[name])
        out[name] = fit_length(resample(np.ascontiguousarray(s.T), sep.sample_rate, rate).T, audio.shape[0]).T
    return out


# --------------------------------------------------------------------------------------------------
def plot_track(path: Path, mixture: np.ndarray, stems: dict[str, np.ndarray], rate: int, n_fft: int, hop: int) -> None:
    """PNG: mixture spectrogram, then per stem its ratio mask |stem| / |mixture| and its spectrogram."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def spec(x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(x.mean(1), np.float32))
        return torch.stft(t, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True).abs().numpy()

    mix = spec(mixture)
    extent = (0, mixture.shape[0] / rate, 0, rate / 2000)
    fig, axes = plt.subplots(1 + len(stems), 2, figsize=(12, 2.6 * (1 + len(stems))), squeeze=False)
    db = lambda m: 20 * np.log10(m + 1e-6)
    axes[0, 0].imshow(db(mix), origin="lower", aspect="auto", extent=extent, vmin=-80, vmax=20, cmap="magma")
    axes[0, 0].set_title("mixture (dB)")
    axes[0, 1].axis("off")
    for i, (name, audio) in enumerate(stems.items(), 1):
        s = spec(audio)
        axes[i, 0].imshow(np.clip(s / (mix + 1e-8), 0, 1), origin="lower", aspect="auto", extent=extent,
                          vmin=0, vmax=1, cmap="viridis")
        axes[i, 0].set_title(f"{name}: mask |stem| / |mixture|")
        axes[i, 1].imshow(db(s), origin="lower", aspect="auto", extent=extent, vmin=-80, vmax=20, cmap="magma")
        axes[i, 1].set_title(f"{name} (dB)")
    for ax in axes.flat:
        ax.set_xlabel("s")
        ax.set_ylabel("kHz")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.partial.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(path)


def track_name(spec: str) -> str:
    if spec == "demo":
        return "demo"
    name = Path(spec).name
    for suffix in (".stem.mp4", ".stem.m4a"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(spec).stem


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m tools.separate", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="IN", help="audio files (or `demo`, the stempeg preview clip)")
    p.add_argument("--out", required=True, metavar="DIR", help="writes DIR/<track>/<stem>.wav")
    p.add_argument("--checkpoint", help="separator checkpoint (default: model/weights/streaming_default.ckpt "
                   "when it exists, else the `streaming` preset with RANDOM weights)")
    p.add_argument("--preset", help="a config.yaml preset with random weights instead of a checkpoint (tests)")
    p.add_argument("--stems", help="comma list of stems to write (default: the model's; `accompaniment` "
                   "is derivable from drums, bass and other)")
    p.add_argument("--streaming", action="store_true", help="run through StreamingSeparator like the live host")
    p.add_argument("--plot", action="store_true", help="also write DIR/<track>/separation.png")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    return p


def run(args) -> int:
    from tqdm import tqdm
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: expected a CUDA GPU, none is available")
    for spec in args.inputs:  # fail before any work on a missing input
        if spec != "demo" and not Path(spec).is_file():
            raise UserError(f"input file not found: {spec} (expected an audio file or `demo`)")
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out: expected a folder, got the file {out_dir}")
    sep, where = load_separator(args.checkpoint, args.preset)
    stems = parse_stems(args.stems, sep)
    cfg = SeparateConfig.from_config()
    mode = "streaming" if args.streaming else "offline"
    for i, spec in enumerate(tqdm(args.inputs, desc="tracks", unit="track", disable=args.quiet or len(args.inputs) < 2)):
        audio, rate = demo_audio() if spec == "demo" else read_audio(spec)
        if i == 0:  # after the first read, so that a bad input is the only line printed
            print(f"separate: {where}; {mode}; stems {', '.join(stems)}", file=sys.stderr)
        try:
            result = separate_audio(sep, audio, rate, stems, args.streaming, args.device, cfg, not args.quiet)
        except UserError as e:
            raise UserError(f"{spec}: {e}") from None
        track_dir = out_dir / track_name(spec)
        track_dir.mkdir(parents=True, exist_ok=True)
        for name, y in result.items():
            write_audio(track_dir / f"{name}.wav", y, rate)
        if args.plot:
            plot_track(track_dir / "separation.png", audio, result, rate, sep.n_fft, sep.hop_length)
        print(f"separate: {spec} -> {track_dir}/ ({', '.join(result)}; {audio.shape[0] / rate:.1f} s at {rate} Hz)",
              file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli("python -m tools.separate", lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
