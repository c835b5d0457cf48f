"""Resolve `--input` / `--output`: sound devices (default, index, name substring), audio files, `demo`.

Shapes: audio is (N, C) frames-major float32, the layout of soundfile and sounddevice.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.errors import UserError

OUTPUT_FILE_TYPES = {".wav": "WAV", ".flac": "FLAC"}
DEVICE_WORDS_IN = ("mic", "default")
DEVICE_WORDS_OUT = ("speakers", "default")


@dataclass
class Endpoint:
    """A resolved input or output: kind is 'device' or 'file' (or 'demo' for input)."""

    kind: str
    device: int | None = None     # sounddevice index
    name: str = ""
    path: Path | None = None


def _sd():
    try:
        import sounddevice as sd
    except OSError as e:  # PortAudio missing
        raise UserError(f"PortAudio is not available ({e}); expected the libportaudio2 system package") from None
    return sd


def list_devices() -> str:
    sd = _sd()
    return str(sd.query_devices())


def _find_device(spec: str, want: str) -> int:
    """want 'input' | 'output'; spec: default word, index or name substring -> device index."""
    sd = _sd()
    devices = sd.query_devices()
    key = f"max_{want}_channels"
    usable = [(i, d["name"]) for i, d in enumerate(devices) if d[key] > 0]
    if spec in (DEVICE_WORDS_IN if want == "input" else DEVICE_WORDS_OUT):
        idx = sd.default.device[0 if want == "input" else 1]
        if idx is None or idx < 0:
            idx = usable[0][0] if usable else -1
        if idx < 0:
            raise UserError(f"no {want} audio device found; expected a sound card or a running JACK server "
                            "(see --list-devices)")
        return int(idx)
    if spec.isdigit():
        idx = int(spec)
        if not any(i == idx for i, _ in usable):
            raise UserError(f"no {want} device with index {idx}; expected one of "
                            f"{[i for i, _ in usable]} (see --list-devices)")
        return idx
    hits = [i for i, n in usable if spec.lower() in n.lower()]
    if not hits:
        names = ", ".join(repr(n) for _, n in usable) or "none"
        raise UserError(f"no {want} device matches {spec!r}; expected an index or a name substring "
                        f"(devices: {names})")
    return hits[0]


def _looks_like_path(spec: str) -> bool:
    return "/" in spec or "\\" in spec or Path(spec).suffix != "" or Path(spec).exists()


def resolve_input(spec: str) -> Endpoint:
    if spec == "demo":
        return Endpoint("demo", name="demo (MUSDB18 preview shipped with stempeg)")
    if spec not in DEVICE_WORDS_IN and not spec.isdigit():
        path = Path(spec)
        if path.is_file():
            return Endpoint("file", path=path, name=str(path))
        if _looks_like_path(spec):
            raise UserError(f"input file not found: {path} (expected an audio file, a device, 'mic' or 'demo')")
    idx = _find_device(spec, "input")
    return Endpoint("device", device=idx, name=_sd().query_devices(idx)["name"])


def resolve_output(spec: str) -> Endpoint:
    suffix = Path(spec).suffix.lower()
    if suffix:
        if suffix not in OUTPUT_FILE_TYPES:
            raise UserError(f"unsupported output file type {suffix!r}; expected one of {sorted(OUTPUT_FILE_TYPES)}")
        parent = Path(spec).resolve().parent
        if not parent.is_dir():
            raise UserError(f"output folder does not exist: {parent}")
        return Endpoint("file", path=Path(spec), name=spec)
    idx = _find_device(spec, "output")
    return Endpoint("device", device=idx, name=_sd().query_devices(idx)["name"])


# ----------------------------------------------------------------------------------------------------
# File sources

class FileSource:
    """Reads an audio file block by block: `read(n)` -> (k <= n, C) float32, k == 0 at the end."""

    def __init__(self, path: Path):
        import soundfile as sf
        try:
            self._f = sf.SoundFile(str(path))
        except Exception as e:  # noqa: BLE001 - libsndfile errors become one user-facing line
            raise UserError(f"cannot read audio file {path} ({str(e).splitlines()[0][:120]}); "
                            "expected a WAV, FLAC, OGG or MP3 file") from None
        self.rate = int(self._f.samplerate)
        self.channels = int(self._f.channels)
        self.frames = int(self._f.frames)
        self.name = str(path)

    def read(self, n: int) -> np.ndarray:
        return self._f.read(n, dtype="float32", always_2d=True)

    def close(self) -> None:
        self._f.close()


class ArraySource:
    """An in-memory (N, C) clip with the FileSource interface."""

    def __init__(self, audio: np.ndarray, rate: int, name: str):
        self._audio = np.ascontiguousarray(audio, np.float32)
        self.rate, self.channels, self.frames, self.name = int(rate), self._audio.shape[1], self._audio.shape[0], name
        self._pos = 0

    def read(self, n: int) -> np.ndarray:
        out = self._audio[self._pos:self._pos + n]
        self._pos += out.shape[0]
        return out

    def close(self) -> None:
        pass


def demo_source() -> ArraySource:
    """The real 7 s MUSDB18 preview that ships inside stempeg (mixture stream), decoded by ffmpeg."""
    try:
        import stempeg
        path = stempeg.example_stem_path()
        audio, rate = stempeg.read_stems(path, stem_id=0)
    except ImportError:
        raise UserError("the demo input needs the stempeg package; expected `pip install stempeg`") from None
    except Exception as e:  # noqa: BLE001 - ffmpeg / stempeg failures become one user-facing line
        raise UserError(f"cannot decode the demo clip ({str(e).splitlines()[0][:120]}); expected ffmpeg on PATH") from None
    audio = np.asarray(audio, np.float32)
    if audio.ndim == 1:
        audio = audio[:, None]
    return ArraySource(audio, int(rate), f"demo: {Path(path).name}")


def open_source(endpoint: Endpoint) -> FileSource | ArraySource:
    return demo_source() if endpoint.kind == "demo" else FileSource(endpoint.path)


class FileSink:
    """Writes (n, C) float32 blocks to a temp file beside `path`; `commit()` renames it into place,
    `discard()` removes it, so an interrupted run never leaves a half file under the output name."""

    def __init__(self, path: Path, rate: int, channels: int):
        import soundfile as sf
        self.path = Path(path)
        self._tmp = self.path.with_name(f".{self.path.name}.partial{self.path.suffix}")
        fmt = OUTPUT_FILE_TYPES[self.path.suffix.lower()]
        subtype = "FLOAT" if fmt == "WAV" else "PCM_24"
        try:
            self._f = sf.SoundFile(str(self._tmp), "w", samplerate=int(rate), channels=channels, format=fmt,
                                   subtype=subtype)
        except Exception as e:  # noqa: BLE001 - libsndfile errors become one user-facing line
            raise UserError(f"cannot write {self.path} ({str(e).splitlines()[0][:120]})") from None
        self.frames = 0

    def write(self, block: np.ndarray) -> None:
        if block.shape[0]:
            self._f.write(block)
            self.frames += block.shape[0]

    def commit(self) -> None:
        self._f.close()
        self._tmp.replace(self.path)

    def discard(self) -> None:
        if not self._f.closed:
            self._f.close()
        self._tmp.unlink(missing_ok=True)
