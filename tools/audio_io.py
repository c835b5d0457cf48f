"""Audio and model loading shared by the tools: whole files in, whole files out.

Shapes: audio is (N, C) frames-major float32 (the soundfile layout); models see (B, C, N).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

import model
from model.errors import UserError
from streaming.sources import FileSink, FileSource, demo_source

WRITE_BLOCK = 1 << 16


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Any file soundfile reads, else any file ffmpeg decodes -> ((N, C) float32, rate)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"input file not found: {path} (expected an audio file)")
    try:
        src = FileSource(path)
    except UserError as sf_error:
        return _read_ffmpeg(path, sf_error)
    try:
        audio = src.read(src.frames) if src.frames > 0 else np.zeros((0, src.channels), np.float32)
    finally:
        src.close()
    return np.ascontiguousarray(audio, np.float32), src.rate


def _read_ffmpeg(path: Path, sf_error: UserError) -> tuple[np.ndarray, int]:
    if shutil.which("ffmpeg") is None:
        raise sf_error
    try:
        import stempeg
        info = stempeg.Info(str(path))
        rate = int(info.sample_rate(0))
        audio, rate = stempeg.read_stems(str(path), stem_id=0, dtype=np.float32, sample_rate=rate)
    except Exception as e:  # noqa: BLE001 - decoder failures become one user-facing line
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise UserError(f"cannot read audio file {path} ({msg}); expected a file soundfile or ffmpeg can decode") \
            from None
    audio = np.asarray(audio, np.float32)
    return (audio[:, None] if audio.ndim == 1 else audio), rate


def demo_audio() -> tuple[np.ndarray, int]:
    """The MUSDB18 preview mixture shipped with stempeg -> ((N, 2) float32, 44100)."""
    src = demo_source()
    return src.read(src.frames), src.rate


def write_audio(path: str | Path, audio: np.ndarray, rate: int) -> None:
    """(N, C) float32 -> a float WAV / FLAC at `path`, written to a temp file and renamed into place."""
    sink = FileSink(Path(path), rate, audio.shape[1])
    try:
        for i in range(0, audio.shape[0], WRITE_BLOCK):
            sink.write(np.ascontiguousarray(audio[i:i + WRITE_BLOCK], np.float32))
        sink.commit()
    except BaseException:
        sink.discard()
        raise


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


def tools_config(section: str) -> dict:
    """config.yaml `tools.<section>` as a plain dict."""
    return dict((model.load_config().get("tools") or {}).get(section) or {})


def write_json(path: str | Path, obj) -> None:
    """JSON (NaN written as null) to a temp file renamed into place."""
    import json
    import math

    def safe(x):
        if isinstance(x, dict):
            return {k: safe(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [safe(v) for v in x]
        return None if isinstance(x, float) and not math.isfinite(x) else x

    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(safe(obj), indent=2) + "\n")
    tmp.replace(path)
