"""Resolve `--input` / `--output`: sound devices (default, index, name substring), audio files, `demo`.

Shapes: audio is (N, C) frames-major float32, the layout of soundfile and sounddevice.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import UserError
from core.files import PendingFile

OUTPUT_FILE_TYPES = {".wav": "WAV", ".flac": "FLAC"}
DEVICE_WORDS_IN = ("mic", "default")
DEVICE_WORDS_OUT = ("speakers", "default")


@dataclass
class Endpoint:
    """An input or output: kind is 'device' or 'file' (or 'demo' or 'jack' for input; `spec` of 'jack' is its pattern). A device endpoint from
    `parse_input` / `parse_output` holds the user's `spec`; `find_device` resolves it to an index."""

    kind: str
    device: int | None = None     # sounddevice index (None until found)
    name: str = ""
    path: Path | None = None
    spec: str = ""


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


def parse_input(spec: str) -> Endpoint:
    """`--input` -> Endpoint, touching no device: a file (checked to exist), `demo`, `jack:PATTERN` (another
    program's JACK output ports, followed by the host's own JACK client), or a device spec."""
    if spec.startswith("jack:"):
        pattern = spec[len("jack:"):].strip()
        if not pattern:
            raise UserError("--input jack:PATTERN: expected a client or port name (or part of one) after 'jack:', "
                            "e.g. jack:mpv or jack:Firefox (see --list-ports)")
        return Endpoint("jack", name=f"JACK ports matching {pattern!r}", spec=pattern)
    if spec == "demo":
        return Endpoint("demo", name="demo (MUSDB18 preview shipped with stempeg)", spec=spec)
    if spec not in DEVICE_WORDS_IN and not spec.isdigit():
        path = Path(spec)
        if path.is_file():
            return Endpoint("file", path=path, name=str(path), spec=spec)
        if _looks_like_path(spec):
            raise UserError(f"input file not found: {path} (expected an audio file, a device, 'mic' or 'demo')")
    return Endpoint("device", name=spec, spec=spec)


def parse_output(spec: str) -> Endpoint:
    """`--output` -> Endpoint, touching no device: a .wav / .flac file in an existing folder, or a device spec."""
    suffix = Path(spec).suffix.lower()
    if Path(spec).is_dir():
        raise UserError(f"--output {spec}: is a folder; expected a .wav / .flac file name or an output device")
    if not suffix and ("/" in spec or "\\" in spec):
        raise UserError(f"--output {spec}: expected a .wav / .flac file name or an output device")
    if suffix:
        if suffix not in OUTPUT_FILE_TYPES:
            raise UserError(f"unsupported output file type {suffix!r}; expected one of {sorted(OUTPUT_FILE_TYPES)}")
        parent = Path(spec).resolve().parent
        if not parent.is_dir():
            raise UserError(f"output folder does not exist: {parent}")
        return Endpoint("file", path=Path(spec), name=spec, spec=spec)
    return Endpoint("device", name=spec, spec=spec)


def parse_channels(spec: str | None) -> tuple[int, ...]:
    """`--channels 1,2` -> 0-based input columns (one or two); None / empty -> ()."""
    if not spec:
        return ()
    try:
        chans = tuple(int(c) - 1 for c in spec.split(","))
    except ValueError:
        raise UserError(f"--channels: expected 1-based channel numbers like 1,2, got {spec!r}") from None
    if not 1 <= len(chans) <= 2 or min(chans) < 0 or len(set(chans)) != len(chans):
        raise UserError(f"--channels: expected one or two distinct channels >= 1, got {spec!r}")
    return chans


def find_device(endpoint: Endpoint, want: str) -> Endpoint:
    """A device endpoint (want 'input' | 'output') -> the same with its sounddevice index and name."""
    assert endpoint.kind == "device", endpoint
    idx = _find_device(endpoint.spec, want)
    return Endpoint("device", device=idx, name=_sd().query_devices(idx)["name"], spec=endpoint.spec)


# ----------------------------------------------------------------------------------------------------
# File sources

def wav_header_frames(path: Path) -> int | None:
    """The frame count a RIFF/WAVE header promises (its `data` chunk size / block align), or None when the
    file is not a plain WAV or does not say (streamed WAVs write 0 or 0xFFFFFFFF)."""
    import struct
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            align = None
            for _ in range(64):
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"fmt ":
                    fmt = f.read(size + (size & 1))
                    align = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else None
                elif cid == b"data":
                    return size // align if align and 0 < size < 0xFFFFFFFF else None
                else:
                    f.seek(size + (size & 1), 1)
    except OSError:
        return None
    return None


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


class ChannelsError(UserError):
    """A file has more channels than the engine takes, or --channels names one it lacks."""


def pick_channels(name: str, available: int, channels: tuple[int, ...] = ()) -> tuple[int, ...]:
    """0-based columns to read from a file of `available` channels: `channels` (from --channels), or all
    of a mono / stereo file; a file with more channels needs --channels."""
    if channels:
        if max(channels) >= available:
            raise ChannelsError(f"--channels {','.join(str(c + 1) for c in channels)}: {name} has only {available} "
                            f"channel{'s' if available > 1 else ''}")
        return tuple(channels)
    if available > 2:
        raise ChannelsError(f"{name} has {available} channels; expected mono or stereo, or pick one or two of them "
                        "with --channels (e.g. --channels 1,2)")
    return ()


class FileSource:
    """Reads an audio file block by block: `read(n)` -> (k <= n, C) float32, k == 0 at the end.

    `channels`: 0-based columns to keep (a multichannel file needs them). A file shorter than its header
    promises (a truncated WAV) or that stops decoding part-way (a truncated FLAC) is read up to where it
    breaks, with one warning giving the real length (`warn`, default: a line on stderr)."""

    def __init__(self, path: Path, channels: tuple[int, ...] = (), warn=_warn):
        import soundfile as sf
        try:
            self._f = sf.SoundFile(str(path))
        except Exception as e:  # noqa: BLE001 - libsndfile errors become one user-facing line
            raise UserError(f"cannot read audio file {path} ({str(e).splitlines()[0][:120]}); "
                            "expected a WAV, FLAC, OGG or MP3 file") from None
        self.name = str(path)
        self.rate = int(self._f.samplerate)
        self.file_channels = int(self._f.channels)
        try:
            self._cols = pick_channels(self.name, self.file_channels, channels)
        except UserError:
            self._f.close()
            raise
        self.channels = len(self._cols) or self.file_channels
        self.frames = int(self._f.frames)
        self.read_frames = 0
        self._warn = warn
        self.truncated = False
        promised = wav_header_frames(Path(path)) or 0
        if promised > self.frames:
            self.truncated = True
            warn(f"{self.name}: its header promises {promised / self.rate:.2f} s but the file holds "
                 f"{self.frames / self.rate:.2f} s (truncated?); processing the {self.frames / self.rate:.2f} s it holds")

    def read(self, n: int) -> np.ndarray:
        if self.truncated and self.read_frames >= self.frames:
            return np.zeros((0, self.channels), np.float32)
        try:
            x = self._f.read(n, dtype="float32", always_2d=True)
        except RuntimeError as e:  # LibsndfileError: the decoder lost sync (a truncated or damaged file)
            self.truncated = True
            self.frames = self.read_frames
            self._warn(f"{self.name}: unreadable after {self.read_frames / self.rate:.2f} s "
                       f"({str(e).splitlines()[0][:80]}; truncated or damaged?); processing the "
                       f"{self.read_frames / self.rate:.2f} s before that")
            return np.zeros((0, self.channels), np.float32)
        if self._cols:
            x = np.ascontiguousarray(x[:, self._cols])
        self.read_frames += x.shape[0]
        return x

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


def open_source(endpoint: Endpoint, channels: tuple[int, ...] = ()) -> FileSource | ArraySource:
    """A file or the demo clip; `channels` (0-based) picks columns of a multichannel file."""
    if endpoint.kind == "demo":
        src = demo_source()
        pick_channels(src.name, src.channels, channels)
        return src if not channels else ArraySource(src.read(src.frames)[:, list(channels)], src.rate, src.name)
    return FileSource(endpoint.path, channels)


class FileSink:
    """Writes (n, C) float32 blocks to a temporary beside `path` (core.files); `commit()` renames it into
    place, `discard()` removes it, so a failed or interrupted run never leaves a half file under the output
    name, nor a stray temporary. A write error (disk full, file too large) is an OSError naming the file."""

    def __init__(self, path: Path, rate: int, channels: int):
        import soundfile as sf
        self.path = Path(path)
        fmt = OUTPUT_FILE_TYPES.get(self.path.suffix.lower(), "WAV")
        subtype = "FLOAT" if fmt == "WAV" else "PCM_24"
        self._pending = PendingFile(self.path)
        try:
            self._f = sf.SoundFile(str(self._pending.tmp), "w", samplerate=int(rate), channels=channels, format=fmt,
                                   subtype=subtype)
        except Exception as e:  # noqa: BLE001 - libsndfile errors become one user-facing line
            self._pending.discard()
            raise UserError(f"cannot write {self.path} ({str(e).splitlines()[0][:120]})") from None
        self.frames = 0

    def _failed(self, e: Exception) -> OSError:
        self.discard()
        return OSError(f"cannot write {self.path} ({str(e).splitlines()[0][:80]}; is the disk full?)")

    def write(self, block: np.ndarray) -> None:
        if block.shape[0]:
            try:
                self._f.write(block)
            except RuntimeError as e:   # LibsndfileError "System error." (ENOSPC, EFBIG, EIO)
                raise self._failed(e) from None
            self.frames += block.shape[0]

    def finish(self) -> None:
        """Write the header and close (the temporary is complete); `commit()` does this if needed."""
        if not self._f.closed:
            try:
                self._f.close()
            except RuntimeError as e:
                raise self._failed(e) from None

    def commit(self) -> None:
        self.finish()
        try:
            self._pending.commit()
        except BaseException:
            self._pending.discard()
            raise

    def discard(self) -> None:
        if not self._f.closed:
            try:
                self._f.close()
            except RuntimeError:
                pass
        self._pending.discard()
