"""Audio and model loading shared by the tools: streamed readers, atomic writers.

Inputs are read block by block (`open_input`): soundfile for what libsndfile decodes, else an ffmpeg
pipe (MP3, M4A, the mixture stream of a .stem.mp4, ...), so that no tool needs a whole file in memory.
Shapes: audio is (N, C) frames-major float32 (the soundfile layout); models see (B, C, N).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

import model
from core.errors import UserError
from core.files import write_json as _write_json
from streaming.host.sources import ArraySource, ChannelsError, FileSource, demo_source, pick_channels

WRITE_BLOCK = 1 << 16


class FfmpegSource:
    """The first audio stream of any file ffmpeg decodes, as float32 through a pipe, block by block
    (the FileSource interface: `rate`, `channels`, `frames` (estimated), `read(n)`, `close()`)."""

    def __init__(self, path: Path, channels: tuple[int, ...] = ()):
        self.name = str(path)
        try:
            probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                                    "stream=sample_rate,channels,duration", "-of", "json", str(path)],
                                   capture_output=True, text=True, timeout=60, check=False)
            stream = json.loads(probe.stdout or "{}").get("streams", [])
        except (OSError, subprocess.SubprocessError, ValueError) as e:
            raise UserError(f"cannot read audio file {path} (ffprobe: {e})") from None
        if probe.returncode != 0 or not stream:
            msg = (probe.stderr.strip().splitlines() or ["no audio stream"])[-1][:120]
            raise UserError(f"cannot read audio file {path} ({msg}); expected a file soundfile or ffmpeg can decode")
        self.rate = int(stream[0]["sample_rate"])
        self.file_channels = int(stream[0]["channels"])
        self._cols = pick_channels(self.name, self.file_channels, channels)
        self.channels = len(self._cols) or self.file_channels
        self.frames = round(float(stream[0].get("duration") or 0.0) * self.rate)
        self.read_frames = 0
        self._proc = subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0",
                                       "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._frame_bytes = 4 * self.file_channels
        self._rest = b""
        self.truncated = False

    def read(self, n: int) -> np.ndarray:
        want = n * self._frame_bytes - len(self._rest)
        data = self._rest + (self._proc.stdout.read(want) if want > 0 else b"")
        if not data and self._proc.wait() != 0 and not self.truncated:
            self.truncated = True
            why = (self._proc.stderr.read().decode(errors="replace").strip().splitlines() or ["decoding failed"])[-1]
            print(f"warning: {self.name}: ffmpeg stopped after {self.read_frames / self.rate:.2f} s ({why[:80]}); "
                  f"processing the {self.read_frames / self.rate:.2f} s before that", file=sys.stderr)
        usable = len(data) - len(data) % self._frame_bytes
        data, self._rest = data[:usable], data[usable:]
        x = np.frombuffer(data, np.float32).reshape(-1, self.file_channels)
        if self._cols:
            x = x[:, self._cols]
        self.read_frames += x.shape[0]
        return np.ascontiguousarray(x)

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        for f in (self._proc.stdout, self._proc.stderr):
            f.close()


def open_input(spec: str | Path, channels: tuple[int, ...] = ()) -> FileSource | FfmpegSource | ArraySource:
    """`demo`, or any file soundfile reads, else any file ffmpeg decodes -> a block reader."""
    if str(spec) == "demo":
        src = demo_source()
        pick_channels(src.name, src.channels, channels)
        return ArraySource(src.read(src.frames)[:, list(channels)], src.rate, src.name) if channels else src
    path = Path(spec)
    if not path.is_file():
        raise UserError(f"input file not found: {path} (expected an audio file)")
    try:
        return FileSource(path, channels)
    except ChannelsError:
        raise
    except UserError as sf_error:
        if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
            raise
        try:
            return FfmpegSource(path, channels)
        except ChannelsError:
            raise
        except UserError:
            raise sf_error from None


def read_all(source) -> np.ndarray:
    """Everything a block reader holds -> (N, C) float32 (closes it)."""
    try:
        blocks = []
        while (x := source.read(WRITE_BLOCK)).shape[0]:
            blocks.append(x)
    finally:
        source.close()
    return np.ascontiguousarray(np.concatenate(blocks) if blocks else np.zeros((0, source.channels), np.float32))


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """A whole file (soundfile, else ffmpeg) -> ((N, C) float32, rate). For short files (evaluation)."""
    src = open_input(path)
    return read_all(src), src.rate


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """(N, C) at rate_in -> (round(N * rate_out / rate_in), C) at rate_out (soxr HQ); equal rates pass through."""
    if rate_in == rate_out:
        return audio
    import soxr
    return np.ascontiguousarray(soxr.resample(audio, rate_in, rate_out, quality="HQ"), np.float32)


def fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad the last axis to n samples."""
    if audio.shape[-1] >= n:
        return audio[..., :n]
    pad = [(0, 0)] * (audio.ndim - 1) + [(0, n - audio.shape[-1])]
    return np.pad(audio, pad)


def load_separator(checkpoint: str | None = None, preset: str | None = None) -> tuple[model.Separator, str]:
    """The separator a tool runs and a description of where it came from.

    `checkpoint` wins; `preset` builds that preset with random weights (tests, benchmarks); neither:
    model.DEFAULT_CHECKPOINT if it exists, else the `streaming` preset with random weights and the live
    host's loud warning (the same policy, the same code)."""
    return model.resolve_separator(checkpoint, preset, warn=lambda m: print(m, file=sys.stderr))


def add_separator_arguments(p: argparse.ArgumentParser) -> None:
    """`--checkpoint` and `--preset`: the two ways to name the separator that `load_separator` returns."""
    p.add_argument("--checkpoint", help="separator checkpoint (default: model/weights/streaming_default.ckpt "
                   "when it exists, else the `streaming` preset with RANDOM weights)")
    p.add_argument("--preset", help="a config.yaml preset with random weights instead of a checkpoint (tests)")


def write_json(path: str | Path, obj) -> None:
    """JSON (NaN written as null) through core.files (temporary beside it, renamed into place)."""
    _write_json(path, obj)
