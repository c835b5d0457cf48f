"""The one way this project writes a file, and the checks on output paths made before any work.

Every output (audio, stems, checkpoints, exports, JSON, plots, MIDI maps) is written to a temporary
file beside its target, `.<name>.<pid>-<n>.partial<suffix>`, flushed and fsynced, and renamed over the
target only when complete (`atomic_output`). A failure, an exception or a stop signal (see
`core.signals`) removes the temporary, so the previous file stays byte for byte as it was and no
stray temporary is left. Only SIGKILL (or a power cut) can leave a temporary behind; the next write
of the same target removes temporaries whose process is gone. Files get the usual mode (0666 minus
the umask, 0644 typically), not mkstemp's 0600.

`check_output_file` / `check_output_dir` are called by the CLIs before they load a model or read an
input: a folder given as a file, a missing or unwritable folder, or an output that is one of the
inputs is one line and exit 2, instead of an error after the whole job has run.
"""
from __future__ import annotations

import errno
import glob
import itertools
import json
import math
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from .errors import UserError

PARTIAL = ".partial"
_counter = itertools.count()


def temp_path(target: Path) -> Path:
    """The temporary a write of `target` goes through (same folder: the rename is atomic)."""
    return target.with_name(f".{target.name}.{os.getpid()}-{next(_counter)}{PARTIAL}{target.suffix}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(target: Path) -> list[Path]:
    """Remove temporaries of `target` left by processes that no longer exist (killed with SIGKILL)."""
    removed = []
    for p in target.parent.glob(f".{glob.escape(target.name)}.*{PARTIAL}*"):
        pid = p.name[len(target.name) + 2:].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _fsync_path(path: Path, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if not directory or e.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


class PendingFile:
    """A write of `target` in progress: write to `tmp`, then `commit()` (fsync, rename over `target`) or
    `discard()` (remove `tmp`; `target` untouched). For outputs written over a whole run (audio sinks)."""

    def __init__(self, target: str | Path):
        self.target = Path(target)
        remove_stale_temps(self.target)
        self.tmp = temp_path(self.target)
        os.close(os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))   # umask applies: usually 0644
        self.done = False

    def commit(self) -> None:
        _fsync_path(self.tmp)
        os.replace(self.tmp, self.target)
        self.done = True
        _fsync_path(self.target.parent, directory=True)

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)
        self.done = True


@contextmanager
def atomic_output(target: str | Path) -> Iterator[Path]:
    """Yield the temporary path to write `target` through; on a normal exit it is fsynced and renamed
    over `target`, on any exception (a signal included) it is removed and `target` is untouched."""
    pending = PendingFile(target)
    try:
        yield pending.tmp
        pending.commit()
    except BaseException:
        pending.discard()
        raise


@contextmanager
def atomic_open(target: str | Path, mode: str = "wb", **kwargs: Any) -> Iterator[IO]:
    """`open()` for writing through `atomic_output`: the file is closed, then renamed into place."""
    with atomic_output(target) as tmp:
        try:
            with open(tmp, mode, **kwargs) as f:
                yield f
        except OSError as e:      # name the output, not its temporary
            raise OSError(e.errno, e.strerror or str(e), str(target)) from None


def write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_open(target, "wb") as f:
        f.write(data)


def write_text(target: str | Path, text: str) -> None:
    with atomic_open(target, "w", encoding="utf-8") as f:
        f.write(text)


def json_safe(x: Any) -> Any:
    """NaN and infinities -> None (JSON has no such numbers), recursively."""
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return None if isinstance(x, float) and not math.isfinite(x) else x


def write_json(target: str | Path, obj: Any) -> None:
    """Pretty JSON (NaN / inf written as null) through `atomic_output`."""
    write_text(target, json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n")


# -- checks before any work --------------------------------------------------------------------------
def _probe(folder: Path, what: str, shown: Path) -> None:
    """Create and remove a file in `folder`: the only check that also holds for root and odd file systems."""
    probe = folder / f".{os.getpid()}-{next(_counter)}.probe"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as e:
        raise UserError(f"{what} {shown}: cannot write in {folder} ({e.strerror}); expected a writable folder") \
            from None
    probe.unlink(missing_ok=True)


def same_file(a: str | Path, b: str | Path) -> bool:
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_output_file(path: str | Path, what: str, inputs: Iterable[str | Path] = ()) -> Path:
    """Before any work: `path` can be written as a file (its folder exists and is writable, it is not a
    folder) and is none of `inputs`. Returns it as a Path; raises UserError naming `what` (the flag)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path}: is a folder; expected a file name")
    folder = path.absolute().parent
    if not folder.is_dir():
        raise UserError(f"{what} {path}: folder {folder} does not exist; expected an existing folder")
    for src in inputs:
        if same_file(path, src):
            raise UserError(f"{what} {path}: is also the input {src}; expected another file name "
                            "(the input would be overwritten)")
    _probe(folder, what, path)
    return path


def check_output_dir(path: str | Path, what: str) -> Path:
    """Before any work: `path` is a writable folder or can be created as one (mkdir -p)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path}: is a file; expected a folder")
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{what} {path}: {existing} is a file; expected a folder")
    _probe(existing, what, path)
    return path
