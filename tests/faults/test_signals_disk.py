"""Faults that need real processes: stop signals mid-run and during start-up, SIGKILL, and a full disk.

Each asserts the exit contract of test_bad_inputs.py: exit code (130 / 143 / 129 for SIGINT / SIGTERM /
SIGHUP, 1 for a failed write), at most two stderr lines, no traceback, the pre-existing output
byte-identical and no temporary left. The full disk is RLIMIT_FSIZE in the child (writes past the limit
fail with EFBIG exactly where a full disk fails with ENOSPC); no root, no tmpfs needed.
"""
from __future__ import annotations

import resource
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from fault_helpers import RATE, assert_contract, cli, protect, stray_temporaries, wait_for

import model
from core.files import PendingFile


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory):
    """60 s of stereo noise (16-bit: 10 MB): several seconds of work for the tiny model."""
    path = tmp_path_factory.mktemp("long") / "long.wav"
    sf.write(path, (0.1 * np.random.default_rng(1).standard_normal((60 * RATE, 2))).astype(np.float32), RATE,
             subtype="PCM_16")
    return path


def _growing_temp(folder, minimum: int = 1 << 16):
    """True once a temporary of an output in `folder` holds `minimum` bytes: the run is mid-way."""
    return lambda: any(p.stat().st_size >= minimum for p in stray_temporaries(folder) if p.exists())


# Every scenario is a real `python -m ...` process. They run concurrently (a few at a time: each spends
# seconds importing torch), then one test per scenario checks its outcome.
@dataclass
class Outcome:
    rc: int
    err: str
    kept: dict[Path, bytes]
    folder: Path


SCENARIOS: dict = {}
FSIZE = 200_000   # bytes per file: the outputs below need more, the pre-existing ones are smaller


def scenario(fn):
    SCENARIOS[fn.__name__] = fn
    return fn


def _stop_mid_run(sig: signal.Signals):
    def run(w: Path, assets: Path, long_wav: Path) -> Outcome:
        kept = protect(w, ["out.wav", "stats.json"])
        proc = cli("streaming", "--no-compile", "--input", str(long_wav), "--output", str(w / "out.wav"), "--checkpoint",
                   str(assets / "tiny.ckpt"), "--stats-json", str(w / "stats.json"), "-q")
        wait_for(_growing_temp(w), proc=proc)
        proc.send_signal(sig)
        return Outcome(proc.wait(900), proc.communicate()[1], kept, w)
    return run


for _sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    SCENARIOS[f"streaming_{_sig.name}"] = _stop_mid_run(_sig)


@scenario
def streaming_sigkill(w: Path, assets: Path, long_wav: Path) -> Outcome:
    kept = protect(w, ["out.wav"])
    proc = cli("streaming", "--no-compile", "--input", str(long_wav), "--output", str(w / "out.wav"), "--checkpoint",
               str(assets / "tiny.ckpt"), "-q")
    wait_for(_growing_temp(w), proc=proc)
    proc.kill()
    return Outcome(proc.wait(900), proc.communicate()[1], kept, w)


@scenario
def start_up_sigint(w: Path, assets: Path, long_wav: Path) -> Outcome:
    kept = protect(w, ["out.wav"])
    proc = cli("streaming", "--no-compile", "--input", str(assets / "in.wav"), "--output", str(w / "out.wav"), "--checkpoint",
               str(assets / "tiny.ckpt"))

    def handlers_installed() -> bool:     # SIGHUP and SIGTERM caught: quiet_startup() ran, torch is loading
        status = Path(f"/proc/{proc.pid}/status").read_text()
        caught = int(next(ln for ln in status.splitlines() if ln.startswith("SigCgt:")).split()[1], 16)
        mask = (1 << (signal.SIGHUP - 1)) | (1 << (signal.SIGTERM - 1))
        return caught & mask == mask
    wait_for(handlers_installed, proc=proc)
    proc.send_signal(signal.SIGINT)
    return Outcome(proc.wait(900), proc.communicate()[1], kept, w)


@scenario
def separate_sigterm(w: Path, assets: Path, long_wav: Path) -> Outcome:
    kept = protect(w, ["sep/long/vocals.wav", "sep/long/accompaniment.wav"])
    proc = cli("tools.separate", str(long_wav), "--out", str(w / "sep"), "--checkpoint", str(assets / "tiny.ckpt"),
               "-q")
    wait_for(_growing_temp(w / "sep" / "long"), proc=proc)
    proc.send_signal(signal.SIGTERM)
    return Outcome(proc.wait(900), proc.communicate()[1], kept, w)


@scenario
def streaming_full_disk(w: Path, assets: Path, long_wav: Path) -> Outcome:
    kept = protect(w, ["out.wav"])
    proc = cli("streaming", "--no-compile", "--input", str(long_wav), "--output", str(w / "out.wav"), "--checkpoint",
               str(assets / "tiny.ckpt"), "-q", fsize=FSIZE)
    return Outcome(proc.wait(900), proc.communicate()[1], kept, w)


@scenario
def separate_full_disk(w: Path, assets: Path, long_wav: Path) -> Outcome:
    kept = protect(w, ["sep/earlier/vocals.wav"])
    proc = cli("tools.separate", str(long_wav), "--out", str(w / "sep"), "--checkpoint", str(assets / "tiny.ckpt"),
               "-q", fsize=FSIZE)
    return Outcome(proc.wait(900), proc.communicate()[1], kept, w)


@scenario
def export_full_disk(w: Path, assets: Path, long_wav: Path) -> Outcome:
    kept = protect(w, ["exp/step.pt"])
    proc = cli("tools.export", "--out", str(w / "exp"), "--preset", "tiny", "--formats", "torchscript",
               "--segment-seconds", "0.25", fsize=20_000)
    return Outcome(proc.wait(900), proc.communicate()[1], kept, w)


@pytest.fixture(scope="module")
def outcomes(assets, long_wav, tmp_path_factory) -> dict:
    """name -> Outcome (or the exception the scenario raised), all scenarios run 3 at a time."""
    with ThreadPoolExecutor(3) as pool:
        futures = {name: pool.submit(fn, tmp_path_factory.mktemp(name), assets, long_wav)
                   for name, fn in SCENARIOS.items()}
    return {name: f.exception() or f.result() for name, f in futures.items()}


def outcome(outcomes: dict, name: str) -> Outcome:
    o = outcomes[name]
    if isinstance(o, BaseException):
        raise o
    return o


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_streaming_stop_signal_mid_run(outcomes, sig):
    o = outcome(outcomes, f"streaming_{sig.name}")
    assert_contract(o.rc, o.err, 128 + sig, f"interrupted ({sig.name})", o.kept, o.folder)
    assert "not written" in o.err


def test_streaming_sigkill_keeps_the_output_and_the_next_run_removes_the_temporary(outcomes, assets):
    o = outcome(outcomes, "streaming_sigkill")
    out = o.folder / "out.wav"
    assert o.rc == -signal.SIGKILL and out.read_bytes() == o.kept[out]       # untouched
    assert len(stray_temporaries(o.folder)) == 1           # SIGKILL cannot be caught: one temporary left...
    from streaming.cli import main
    assert main(["--input", str(assets / "in.wav"), "--output", str(out), "--checkpoint",
                 str(assets / "tiny.ckpt"), "-q", "--no-compile"]) == 0
    assert not stray_temporaries(o.folder)                 # ...removed by the next write of that output
    assert sf.info(out).frames == sf.info(assets / "in.wav").frames


@pytest.mark.parametrize("name, rc, message", [
    pytest.param("start_up_sigint", 130, "interrupted", id="ctrl_c_during_start_up_is_one_line"),
    pytest.param("separate_sigterm", 143, "interrupted (SIGTERM)", id="separate_sigterm_mid_run_keeps_earlier_stems"),
    pytest.param("streaming_full_disk", 1, "cannot write", id="streaming_full_disk"),
    pytest.param("export_full_disk", 1, "File too large", id="export_full_disk_is_one_line_not_an_abort"),
])
def test_one_line_exit_keeps_earlier_outputs(outcomes, name, rc, message):
    o = outcome(outcomes, name)
    assert_contract(o.rc, o.err, rc, message, o.kept, o.folder)


def test_separate_full_disk_leaves_no_track_folder(outcomes):
    o = outcome(outcomes, "separate_full_disk")
    assert_contract(o.rc, o.err, 1, "cannot write", o.kept, o.folder)
    assert not (o.folder / "sep" / "long").exists()        # the failed track's folder is removed


def test_checkpoint_full_disk_keeps_the_previous_checkpoint(tmp_path):
    """The writer of training's last.ckpt / best.ckpt (model.checkpoint.atomic_torch_save), in this process
    under a soft RLIMIT_FSIZE that is put back at once."""
    path = tmp_path / "last.ckpt"
    model.save_checkpoint(model.build_separator("tiny"), path)
    before = path.read_bytes()
    big = model.build_separator("streaming")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) * 2, hard))
    try:
        with pytest.raises(OSError):
            model.save_checkpoint(big, path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert path.read_bytes() == before and not stray_temporaries(tmp_path)
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())     # a normal file mode, not 0600
    torch.testing.assert_close(model.load_checkpoint(path).state_dict()["net.head.bias"],
                               torch.load(path, weights_only=True)["state_dict"]["net.head.bias"])


def _umask() -> int:
    import os
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_pending_file_discard_and_commit(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    p = PendingFile(target)
    p.tmp.write_text("new")
    p.discard()
    assert target.read_text() == "old" and not stray_temporaries(tmp_path)
    p = PendingFile(target)
    p.tmp.write_text("new")
    p.commit()
    assert target.read_text() == "new" and not stray_temporaries(tmp_path)
