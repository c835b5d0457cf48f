"""`python -m tools.separate IN... --out DIR`: separate whole files into DIR/<track>/<stem>.wav.

Every input is read at its own rate (anything soundfile or ffmpeg decodes, or `demo`), resampled to
the model's rate if needed, separated, resampled back and written with the input's rate and length.
Offline: the model runs on overlapping segments overlap-added with normalised weights
(streaming.engine.chunked); `--streaming`: the file goes through `StreamingSeparator` block by block exactly as
the live host's file runs do, and the latency is dropped so the stems line up with the input.

Memory does not grow with the file: the input is read, resampled (streaming soxr), separated and its
stems resampled back and written block by block (`separate_stream`). The stems of a track are written
to temporaries and renamed into place together once the track is complete.

    python -m tools.separate song.flac --out separated --stems vocals,accompaniment --plot
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

import model
from core.errors import OneLineParser, UserError, run_main
from streaming.engine.chunked import ChunkedStream, chunked_apply
from streaming.host.sources import ArraySource, FileSink
from streaming.processing.remix_chain import AlignedWriter
from streaming.processing.resample import StreamResampler

from .audio_io import add_separator_arguments, load_separator, open_input
from .settings import SeparateConfig

RESAMPLE_QUALITY = "HQ"


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


def _segment(sep: model.Separator, cfg: SeparateConfig) -> int:
    return max(sep.n_fft, round(cfg.segment_seconds * sep.sample_rate))


def _model_fn(sep: model.Separator, device: str):
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return sep(x.to(device)).to("cpu")
    return run


def separate_offline(sep: model.Separator, wav: np.ndarray, cfg: SeparateConfig | None = None,
                     device: str = "cpu", progress: bool = False) -> np.ndarray:
    """(C, N) at the model rate -> (S, C, N) through the chunked overlap-add of the whole separator."""
    cfg = cfg or SeparateConfig()
    sep = sep.to(device).eval()
    x = torch.from_numpy(np.ascontiguousarray(wav, np.float32))[None]
    y = chunked_apply(_model_fn(sep, device), x, _segment(sep, cfg), cfg.overlap, cfg.batch_size,
                      progress=progress, desc="offline")
    return y[0].numpy()


def separate_streaming(sep: model.Separator, wav: np.ndarray, block: int = 4096, device: str = "cpu",
                       progress: bool = False) -> np.ndarray:
    """(C, N) at the model rate -> (S, C, N) through StreamingSeparator fed `block` frames at a time,
    flushed, with the engine latency dropped (stream sample i + latency is output sample i)."""
    proc = StreamingStems(sep, wav.shape[0], block, device)
    return np.concatenate([proc.feed(wav), proc.flush()], -1)


class OfflineStems:
    """Model-rate audio in pieces -> stems in pieces, through the chunked overlap-add (ChunkedStream).
    feed((C, k)) -> (S, C, m); flush() -> the rest; in total exactly `separate_offline`."""

    def __init__(self, sep: model.Separator, cfg: SeparateConfig, device: str = "cpu"):
        self.stream = ChunkedStream(_model_fn(sep.to(device).eval(), device), _segment(sep, cfg), cfg.overlap,
                                    cfg.batch_size)
        self.n_stems = len(sep.stems)

    def _out(self, y: torch.Tensor, channels: int) -> np.ndarray:
        y = y[0].numpy()
        return y if y.shape[0] else np.zeros((self.n_stems, channels, 0), np.float32)

    def feed(self, x: np.ndarray) -> np.ndarray:
        return self._out(self.stream.feed(torch.from_numpy(np.ascontiguousarray(x, np.float32))[None]), x.shape[0])

    def flush(self) -> np.ndarray:
        return self._out(self.stream.flush(), self.stream._in.shape[1])


class StreamingStems:
    """Model-rate audio in pieces -> stems in pieces through StreamingSeparator, `block` frames per call,
    latency dropped: in total N samples out for N in, exactly `separate_streaming`."""

    def __init__(self, sep: model.Separator, channels: int, block: int = 4096, device: str = "cpu"):
        from streaming import StreamingSeparator
        self.engine = StreamingSeparator(sep, device=device, channels=channels)
        self.block = block
        self._drop = self.engine.latency_samples

    def _aligned(self, y: np.ndarray) -> np.ndarray:
        k = min(self._drop, y.shape[-1])
        self._drop -= k
        return y[..., k:]

    def feed(self, x: np.ndarray) -> np.ndarray:
        parts = [self.engine.feed(np.ascontiguousarray(x[:, s:s + self.block])) for s in range(0, x.shape[1], self.block)]
        return self._aligned(np.concatenate(parts, -1) if parts else self.engine.feed(x))

    def flush(self) -> np.ndarray:
        return self._aligned(self.engine.flush())


def separate_stream(sep: model.Separator, source, sinks: dict, streaming: bool = False, device: str = "cpu",
                    cfg: SeparateConfig | None = None, progress: bool = False, mixture_sink=None) -> int:
    """Separate a block reader (FileSource / FfmpegSource / ArraySource: (n, C) blocks at `source.rate`)
    into `sinks` {stem: writer with write((n, C))} at the source's rate and length, block by block:
    soxr in -> OfflineStems | StreamingStems -> per stem (merged stems summed) soxr out -> writer. Only
    the overlap window is ever held in memory. `mixture_sink` also gets the input blocks (for --plot).
    Returns the number of frames written per stem."""
    cfg = cfg or SeparateConfig.from_config()
    if source.channels not in (1, 2):
        raise UserError(f"{source.name}: expected mono or stereo audio, got {source.channels} channels")
    if streaming and not sep.causal:
        raise UserError("--streaming needs a causal (streaming) model; this checkpoint is offline")
    channels, rate, model_rate = source.channels, source.rate, sep.sample_rate
    merges = model.stem_merges()
    parts = {name: [sep.stems.index(p) for p in ([name] if name in sep.stems else merges[name])] for name in sinks}
    rs_in = StreamResampler(rate, model_rate, channels, RESAMPLE_QUALITY)
    rs_out = {name: StreamResampler(model_rate, rate, channels, RESAMPLE_QUALITY) for name in sinks}
    writers = {name: AlignedWriter(sink, 0) for name, sink in sinks.items()}
    proc = StreamingStems(sep, channels, cfg.stream_block, device) if streaming else OfflineStems(sep, cfg, device)

    def emit(y: np.ndarray) -> None:
        if y.shape[-1] == 0:
            return
        for name, idx in parts.items():
            stem = y[idx[0]] if len(idx) == 1 else np.sum(y[idx], axis=0)
            writers[name].write(rs_out[name].process(np.ascontiguousarray(stem.T)))

    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=source.frames or None, desc="separate", unit="frame", unit_scale=True, leave=False)
    n = 0
    try:
        while (x := source.read(cfg.read_block)).shape[0]:
            if not np.isfinite(x).all():
                at = n + int(np.argmin(np.isfinite(x).all(1)))
                raise UserError(f"{source.name}: expected finite audio samples, got NaN or infinity at {at / rate:.3f} s")
            n += x.shape[0]
            if mixture_sink is not None:
                mixture_sink.write(x)
            emit(proc.feed(rs_in.process(x).T))
            if bar is not None:
                bar.update(x.shape[0])
        if n == 0:
            raise UserError(f"{source.name}: expected audio with at least one frame, got none")
        emit(proc.feed(rs_in.flush().T))
        emit(proc.flush())
    finally:
        if bar is not None:
            bar.close()
        source.close()
    for name, w in writers.items():
        w.total = n
        w.write(rs_out[name].flush())
        w.finish(channels)
    return n


class ArraySink:
    """Collects (n, C) blocks in memory (the writer of `separate_audio`)."""

    def __init__(self):
        self.blocks: list[np.ndarray] = []

    def write(self, block: np.ndarray) -> None:
        self.blocks.append(np.array(block, np.float32))

    def audio(self, channels: int) -> np.ndarray:
        return np.concatenate(self.blocks) if self.blocks else np.zeros((0, channels), np.float32)


def separate_audio(sep: model.Separator, audio: np.ndarray, rate: int, stems: list[str] | None = None,
                   streaming: bool = False, device: str = "cpu", cfg: SeparateConfig | None = None,
                   progress: bool = False) -> dict[str, np.ndarray]:
    """(N, C) at `rate` -> {stem: (N, C) at `rate`} for the requested stems (merged stems summed): the
    same pipeline as files (`separate_stream`), with the audio in memory."""
    if audio.ndim != 2 or audio.shape[1] not in (1, 2) or audio.shape[0] == 0:
        raise UserError(f"expected mono or stereo audio with at least one frame, got shape {audio.shape}")
    sinks = {name: ArraySink() for name in (stems or list(sep.stems))}
    separate_stream(sep, ArraySource(audio, rate, "audio"), sinks, streaming, device, cfg, progress)
    return {name: sink.audio(audio.shape[1]) for name, sink in sinks.items()}


# --------------------------------------------------------------------------------------------------
def track_name(spec: str) -> str:
    if spec == "demo":
        return "demo"
    name = Path(spec).name
    for suffix in (".stem.mp4", ".stem.m4a"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(spec).stem


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m tools.separate", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="IN", help="audio files (or `demo`, the stempeg preview clip)")
    p.add_argument("--out", required=True, metavar="DIR", help="writes DIR/<track>/<stem>.wav")
    add_separator_arguments(p)
    p.add_argument("--stems", help="comma list of stems to write (default: the model's; `accompaniment` "
                   "is derivable from drums, bass and other)")
    p.add_argument("--streaming", action="store_true", help="run through StreamingSeparator like the live host")
    p.add_argument("--plot", action="store_true", help="also write DIR/<track>/separation.png")
    p.add_argument("--channels", help="1-based channels of a multichannel input, e.g. 1,2 (mono and stereo files "
                   "need none)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    return p


def plan_outputs(inputs: list[str], out_dir: Path, stems: list[str], plot: bool) -> dict[str, Path]:
    """input -> its track folder; refuses two inputs that would write the same folder (same basename in
    different folders, or the same file twice) and outputs that would overwrite an input."""
    from core.files import same_file
    folders: dict[str, Path] = {}
    for spec in inputs:
        folder = out_dir / track_name(spec)
        clash = [other for other, f in folders.items() if f == folder]
        if clash:
            raise UserError(f"inputs {clash[0]} and {spec} would both write {folder}/; expected inputs with distinct "
                            "names (rename one, or separate them into different --out folders)")
        folders[spec] = folder
        for name in [*stems, *(["separation"] if plot else [])]:
            target = folder / (f"{name}.png" if name == "separation" else f"{name}.wav")
            hit = [i for i in inputs if i != "demo" and same_file(target, i)]
            if hit:
                raise UserError(f"{target} would overwrite the input {hit[0]}; expected another --out folder")
    return folders


def _made_dirs(folder: Path) -> list[Path]:
    """The folders `mkdir -p folder` creates, deepest first."""
    made = []
    while not folder.exists():
        made.append(folder)
        folder = folder.parent
    return made


def separate_track(sep: model.Separator, spec: str, folder: Path, stems: list[str], args, cfg: SeparateConfig,
                   announce) -> tuple[int, int]:
    """One input -> folder/<stem>.wav (+ separation.png): every file to a temporary, all renamed into place
    once the track is complete; on any failure or signal the temporaries and the folders this call created
    are removed and earlier files stay as they were. Returns (frames, rate)."""
    source = open_input(spec, _channels(args.channels))
    announce()
    made = _made_dirs(folder)
    sinks: dict = {}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        sinks = {name: FileSink(folder / f"{name}.wav", source.rate, source.channels) for name in stems}
        writers, mixture = dict(sinks), None
        if args.plot:
            from .spectrogram_plot import SpectrogramSketch, Tee
            sketch = {name: SpectrogramSketch(sep.n_fft, sep.hop_length) for name in stems}
            writers = {name: Tee(sinks[name], sketch[name]) for name in stems}
            mixture = SpectrogramSketch(sep.n_fft, sep.hop_length)
        rate = source.rate
        n = separate_stream(sep, source, writers, args.streaming, args.device, cfg, not args.quiet, mixture)
        for sink in sinks.values():
            sink.finish()                  # every header written before anything is renamed
        if args.plot:
            from .spectrogram_plot import plot_separation
            plot_separation(folder / "separation.png", mixture, sketch, rate)
        for sink in sinks.values():
            sink.commit()
    except BaseException as e:
        source.close()
        for sink in sinks.values():
            sink.discard()
        for d in made:
            try:
                d.rmdir()
            except OSError:
                break
        if isinstance(e, UserError) and not str(e).startswith(str(spec)):
            raise UserError(f"{spec}: {e}") from None
        if isinstance(e, KeyboardInterrupt):
            e.note = f" while separating {spec}; its stems were not written"
        raise
    return n, rate


def _channels(spec: str | None) -> tuple[int, ...]:
    from streaming.host.sources import parse_channels as parse
    return parse(spec)


def run(args) -> int:
    from tqdm import tqdm

    from core.config import resolve_config
    from core.files import check_output_dir
    from tools import COMMAND
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: expected a CUDA GPU, none is available")
    config = resolve_config(command=COMMAND)
    for spec in args.inputs:  # fail before any work on a missing input
        if spec != "demo" and not Path(spec).is_file():
            raise UserError(f"input file not found: {spec} (expected an audio file or `demo`)")
    _channels(args.channels)
    out_dir = check_output_dir(args.out, "--out")
    sep, where = load_separator(args.checkpoint, args.preset)
    stems = parse_stems(args.stems, sep)
    folders = plan_outputs(args.inputs, out_dir, stems, args.plot)
    cfg = SeparateConfig.from_config(config)
    mode = "streaming" if args.streaming else "offline"
    said = []

    def announce() -> None:   # after the first input opened, so that a bad input is the only line printed
        if not said:
            print(f"separate: {where}; {mode}; stems {', '.join(stems)}", file=sys.stderr)
            said.append(True)

    for spec in tqdm(args.inputs, desc="tracks", unit="track", disable=args.quiet or len(args.inputs) < 2):
        n, rate = separate_track(sep, spec, folders[spec], stems, args, cfg, announce)
        print(f"separate: {spec} -> {folders[spec]}/ ({', '.join(stems)}; {n / rate:.1f} s at {rate} Hz)",
              file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    from core.signals import exit_fast
    exit_fast(main())
