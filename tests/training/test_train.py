"""The training loop: it learns, resumes exactly, survives being killed, and its checkpoints load."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import core
import model
from training.__main__ import main
from training.config import train_config, with_overrides
from training.trainer import RunSpec, Trainer

ROOT = Path(__file__).resolve().parents[2]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return model.load_checkpoint(path).state_dict()


def _run(config: Path, out: Path, *extra: str) -> int:
    return main(["--config", str(config), "--preset", "tiny", "--data", "synthetic", "--out", str(out), "--device", "cpu", *extra])


def test_overfits_a_small_synthetic_batch(tmp_path, make_config):
    """tiny on one fixed batch of 2 x 0.1 s synthetic segments: the loss falls by 3x within 80 steps on CPU."""
    config = core.load_config(make_config(**{"optimizer.lr": 1e-2, "optimizer.warmup_steps": 1,
                                              "optimizer.min_lr_ratio": 1.0}))
    spec = RunSpec("tiny", ("vocals", "accompaniment"), ["synthetic"], tmp_path / "run", 80, device="cpu",
                   merges=model.stem_merges(config))
    trainer = Trainer(spec, config)
    items = [trainer.train_set[k] for k in range(2)]
    batch = [torch.stack([it[j] for it in items]) for j in range(4)]
    losses = [trainer.train_step(batch)["loss"] for _ in range(80)]
    assert np.isfinite(losses).all()
    assert min(losses[-5:]) < losses[0] / 3, f"loss {losses[0]:.3f} -> {losses[-5:]}"


def test_resume_continues_exactly_and_writes_loadable_checkpoints(tmp_path, config_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert _run(config_path, straight, "--steps", "6") == 0
    assert _run(config_path, split, "--steps", "6", "--stop-at", "3") == 0
    assert model.load_checkpoint(split / "last.ckpt").metadata["steps"] == 3
    assert main(["--resume", str(split), "--device", "cpu"]) == 0
    a, b = _weights(straight / "last.ckpt"), _weights(split / "last.ckpt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    # the run really trained: weights moved away from the initialisation
    torch.manual_seed(0)
    init = model.build_separator("tiny").state_dict()
    assert any(not torch.allclose(init[k], a[k]) for k in a if a[k].is_floating_point())
    # metrics.jsonl: one object per logged step plus validations, no duplicates after resume
    entries = [json.loads(line) for line in (split / "metrics.jsonl").read_text().splitlines()]
    train_steps = [e["step"] for e in entries if "loss" in e]
    assert train_steps == [1, 2, 3, 4, 5, 6]
    valid = [e for e in entries if "valid_loss" in e]
    assert [e["step"] for e in valid] == [2, 4, 6] and set(valid[0]["sdr"]) == {"vocals", "accompaniment"}
    assert {"step", "loss", "lr", "grad_norm"} <= set(entries[0])
    sep = model.load_checkpoint(split / "best.ckpt")
    meta = sep.metadata
    assert meta["preset"] == "tiny" and meta["data"] == ["synthetic"] and meta["stems"] == ["vocals", "accompaniment"]
    assert meta["hardware"]["device"] == "cpu" and meta["wall_time_s"] > 0
    assert sep(torch.zeros(1, 2, 1000)).shape == (1, 2, 2, 1000)


def test_a_run_killed_mid_step_leaves_a_loadable_last_ckpt(tmp_path, make_config):
    config = make_config(segment_seconds=0.2)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "training", "--config", str(config), "--preset", "tiny", "--data", "synthetic",
           "--out", str(out), "--steps", "100000", "--device", "cpu"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (out / "last.ckpt").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert (out / "last.ckpt").exists(), proc.stderr.read().decode() if proc.poll() is not None else "no checkpoint"
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    sep = model.load_checkpoint(out / "last.ckpt")
    assert sep.metadata["steps"] >= 1
    # and the run resumes from it
    step = sep.metadata["steps"]
    assert main(["--resume", str(out), "--device", "cpu", "--steps", str(step + 1)]) == 0
    assert model.load_checkpoint(out / "last.ckpt").metadata["steps"] == step + 1


@pytest.mark.parametrize("args,message", [
    (["--data", "folder:/nonexistent/path"], "does not exist"),
    (["--data", "synthetic", "--preset", "nope"], "unknown preset"),
    (["--data", "synthetic", "--stems", "vocals,piano"], "'piano' is not in dataset"),
    (["--data", "bogus:/x"], "expected musdb:PATH"),
    ([], "expected --data"),
    (["--data", "synthetic", "--steps", "0"], "expected --steps"),
])
def test_cli_errors_are_one_line_and_exit_2(tmp_path, config_path, capsys, args, message):
    code = main(["--config", str(config_path), "--out", str(tmp_path / "run"), "--device", "cpu", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err, err


def test_cli_errors_for_empty_dataset_and_bad_resume(tmp_path, config_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["--config", str(config_path), "--data", f"folder:{tmp_path / 'empty'}", "--out", str(tmp_path / "r"),
                 "--preset", "tiny", "--device", "cpu"]) == 2
    assert "no tracks" in capsys.readouterr().err
    assert main(["--resume", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "last.ckpt").write_bytes(b"not a checkpoint")
    assert main(["--resume", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "corrupt" in err or "not a tfswa-separator checkpoint" in err


def test_cli_subprocess_exit_code_2_without_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "training", "--data", "synthetic", "--preset", "nope", "--out", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_trained_tiny_checkpoint_streams_exactly_like_offline(tmp_path, config_path):
    streaming = pytest.importorskip("streaming")
    if not hasattr(streaming, "StreamingSeparator"):
        pytest.skip("streaming.StreamingSeparator is not there yet (streaming/engine/separator.py)")
    assert _run(config_path, tmp_path / "run", "--steps", "2") == 0
    sep = model.load_checkpoint(tmp_path / "run" / "best.ckpt")
    g = torch.Generator().manual_seed(3)
    x = 0.3 * torch.randn(2, 3000, generator=g)
    with torch.no_grad():
        offline = sep(x[None])[0].numpy()
    eng = streaming.StreamingSeparator(sep)
    rng = np.random.default_rng(0)
    outs, pos = [], 0
    while pos < x.shape[1]:
        n = int(rng.integers(1, 400))
        outs.append(eng.feed(x[:, pos:pos + n].numpy()))
        pos += n
    outs.append(eng.flush())
    stream = np.concatenate(outs, axis=-1)
    lat = eng.latency_samples
    assert stream.shape[-1] == x.shape[1] + lat
    np.testing.assert_allclose(stream[..., lat:], offline, atol=1e-4)


def test_tensorboard_event_file_and_examples(tmp_path, make_config):
    pytest.importorskip("tensorboard")
    config = make_config(**{"logging.tensorboard": True})
    assert _run(config, tmp_path / "run", "--steps", "2") == 0
    events = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 1000  # scalars, audio and images


def test_micro_batches_give_the_whole_batch_step(tmp_path, make_config):
    """A batch of 4 run as micro-batches of 1 (or 3 + 1) updates the weights like the whole batch."""
    config = core.load_config(make_config())
    weights = []
    for micro in (0, 1, 3):
        cfg = with_overrides(train_config(config), {"batch_size": 4, "micro_batch": micro})
        spec = RunSpec("tiny", ("vocals", "accompaniment"), ["synthetic"], tmp_path / f"m{micro}", 5, device="cpu",
                       merges=model.stem_merges(config))
        trainer = Trainer(spec, config, cfg)
        items = [trainer.train_set[k] for k in range(4)]
        batch = [torch.stack([it[j] for it in items]) for j in range(len(items[0]))]
        scalars = trainer.train_step(batch)
        weights.append((scalars, {k: v.clone() for k, v in trainer.separator.state_dict().items()}))
    (s0, w0), *others = weights
    for s, w in others:
        assert s["loss"] == pytest.approx(s0["loss"], rel=1e-5)
        for k in w0:
            # Micro-batches sum the gradient in another order; AdamW's first update, lr * g / (|g| + eps), turns
            # that rounding into a visible step on an element whose gradient is near eps (measured on one
            # machine: 1 of 1,024 freq_embed elements off by 1.3e-6). A real difference moves every element.
            assert torch.allclose(w[k], w0[k], atol=5e-6), k


def test_cli_knobs_reach_the_run_and_resume_refuses_to_change_the_math(tmp_path, config_path, capsys):
    out = tmp_path / "run"
    assert _run(config_path, out, "--steps", "2", "--batch-size", "3", "--segment-seconds", "0.15", "--lr", "0.002",
                "--val-every", "2", "--workers", "0", "--micro-batch", "2") == 0
    ckpt = torch.load(out / "last.ckpt", weights_only=False)
    cfg = ckpt["training"]["run"]["train_config"]
    assert (cfg["batch_size"], cfg["segment_seconds"], cfg["optimizer"]["lr"], cfg["steps_per_epoch"],
            cfg["num_workers"], cfg["micro_batch"]) == (3, 0.15, 0.002, 2, 0, 2)
    entries = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [e for e in entries if "loss" in e]
    assert [e["step"] for e in entries if "valid_loss" in e] == [2]
    # 2 steps x 3 segments x 0.15 s; every segment names the synthetic tracks its stems came from
    assert train[-1]["hours_seen"] == pytest.approx(2 * 3 * 0.15 / 3600, abs=1e-4)
    assert 1 <= train[-1]["tracks_seen"] <= 4 and 0 <= train[-1]["data_wait"] <= 1
    assert model.load_checkpoint(out / "last.ckpt").metadata["tracks_seen"] == train[-1]["tracks_seen"]
    capsys.readouterr()
    assert main(["--resume", str(out), "--device", "cpu", "--batch-size", "4", "--steps", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "batch_size cannot change" in err
    assert main(["--resume", str(out), "--device", "cpu", "--workers", "0", "--steps", "3"]) == 0
    assert main(["--config", str(config_path), "--data", "synthetic", "--out", str(tmp_path / "x"), "--workers", "many"]) == 2
    assert "--workers" in capsys.readouterr().err


def test_lowlatency_starts_from_streaming_weights_with_its_lags_resampled():
    """`--init` of the lowlatency preset (hop 128, W = 64) from streaming weights (hop 512, W = 32): every
    tensor is copied, and each TSA's bias per lag is read at the same age in seconds (lag d <- d / 4)."""
    from training.trainer import TrainingError, load_init_weights

    torch.manual_seed(3)
    src = model.build_separator("streaming")
    ckpt = {"config": {"hop_length": src.hop_length}, "state_dict": src.state_dict()}
    dst = model.build_separator("lowlatency")
    load_init_weights(dst, ckpt, "streaming.ckpt")
    a, b = src.state_dict(), dst.state_dict()
    lags = [k for k in a if k.endswith("tsa.rel_bias")]
    assert len(lags) == 5 and all(b[k].shape[1] == 2 * a[k].shape[1] for k in lags)
    for k in a:
        if k in lags:
            old, new = a[k], b[k]
            torch.testing.assert_close(new[:, 0:64:4], old[:, :16])                        # lag 4j <- lag j
            torch.testing.assert_close(new[:, 2:64:4], 0.5 * (old[:, :16] + old[:, 1:17]))  # halfway between
        else:
            assert torch.equal(a[k], b[k]), k
    bad = dict(ckpt, state_dict={**ckpt["state_dict"], lags[0]: torch.zeros(7, 32)})
    with pytest.raises(TrainingError, match="network shapes"):
        load_init_weights(dst, bad, "wrong.ckpt")
