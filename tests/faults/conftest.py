"""Fixtures of the fault suite: broken and hostile inputs, written once per session (the checks of the
exit contract are in fault_helpers.py)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from fault_helpers import RATE

import model


def _noise(n: int, channels: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal((n, channels))).astype(np.float32)


def _truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


@pytest.fixture(scope="session")
def assets(tmp_path_factory) -> Path:
    """One folder of inputs every case may use (never written by a case)."""
    a = tmp_path_factory.mktemp("fault-assets")
    sf.write(a / "in.wav", _noise(RATE // 2, 2), RATE, subtype="FLOAT")
    sf.write(a / "six.wav", _noise(RATE // 4, 6), RATE, subtype="FLOAT")
    sf.write(a / "trunc.wav", _noise(5 * RATE, 2), RATE, subtype="PCM_16")
    _truncate(a / "trunc.wav", 1 / 3)
    sf.write(a / "trunc.flac", _noise(5 * RATE, 2), RATE)
    _truncate(a / "trunc.flac", 1 / 3)
    nan = _noise(RATE // 2, 2)
    nan[1000:1010] = np.nan
    sf.write(a / "nan.wav", nan, RATE, subtype="FLOAT")
    (a / "junk.wav").write_bytes(os.urandom(3000))
    (a / "empty.wav").write_bytes(b"")
    for d in ("x", "y"):
        (a / d).mkdir()
        sf.write(a / d / "song.wav", _noise(RATE // 4, 2, seed=ord(d)), RATE, subtype="FLOAT")
    # checkpoints: a good tiny one, one whose config says sample_rate -5, one of junk bytes
    torch.manual_seed(0)
    model.save_checkpoint(model.build_separator("tiny").eval(), a / "tiny.ckpt")
    ckpt = torch.load(a / "tiny.ckpt", weights_only=True)
    ckpt["config"]["sample_rate"] = -5
    torch.save(ckpt, a / "rate.ckpt")
    ckpt["config"]["sample_rate"] = 44100
    ckpt["config"]["n_fft"] = "abc"
    torch.save(ckpt, a / "nfft.ckpt")
    (a / "junk.ckpt").write_bytes(b"PK\x03\x04" + os.urandom(500))
    # configs
    configs = {
        "block0": {"host": {"file_block": 0}},
        "blockneg": {"host": {"file_block": -4096}},
        "blockabc": {"host": {"file_block": "abc"}},
        "loud": {"mixer": {"limiter_ceiling_db": "loud"}},
        "threads": {"streaming": {"threads": -3}},
        "compile": {"streaming": {"compile": "sometimes"}},
        "keyfft": {"key": {"n_fft": "big"}},
        "micblocks": {"mic": {"prefill_blocks": 0}},
        "chains": {"chains": {"vocals": [{"effect": "flanger9000"}]}},
        "section": {"bogus": {"a": 1}},
        "hostkey": {"host": {"blok_size": 256}},
        "limiter": {"mixer": {"limiter_threshold_db": -0.05, "limiter_ceiling_db": -0.1}},
        "quality": {"host": {"file_resample_quality": "best"}},
        "midiapi": {"midi": {"api": "coremidi"}},
        "batch": {"training": {"batch_size": "abc"}},
        "lr": {"training": {"optimizer": {"lr": -1}}},
        "preset": {"presets": {"tiny": {"n_fft": 100000}}},
        "separate": {"tools": {"separate": {"overlap": 1.5}}},
    }
    for name, body in configs.items():
        (a / f"{name}.yaml").write_text(yaml.safe_dump(body))
    (a / "notyaml.yaml").write_text("host: [unclosed\n")
    (a / "list.yaml").write_text("- 1\n- 2\n")
    (a / "binary.yaml").write_bytes(b"\xff\xfe\x00garbage")
    _bad_data_folder(a / "data")
    return a


def _bad_data_folder(root: Path) -> None:
    """Four tracks, each broken differently: lengths, rates, channels, a junk stem file."""
    def track(name: str, stems: dict[str, tuple[int, int, int]]) -> None:   # stem -> (frames, rate, channels)
        (root / name).mkdir(parents=True)
        for stem, (n, rate, ch) in stems.items():
            sf.write(root / name / f"{stem}.wav", _noise(n, ch), rate, subtype="FLOAT")
    track("lengths", {"vocals": (8000, RATE, 2), "drums": (4000, RATE, 2), "bass": (8000, RATE, 2), "other": (8000, RATE, 2)})
    track("rates", {"vocals": (8000, 22050, 2), "drums": (8000, RATE, 2), "bass": (8000, 48000, 2), "other": (8000, RATE, 2)})
    track("channels", {"vocals": (8000, RATE, 1), "drums": (8000, RATE, 2), "bass": (8000, RATE, 2), "other": (8000, RATE, 2)})
    track("junk", {"vocals": (8000, RATE, 2), "drums": (8000, RATE, 2), "bass": (8000, RATE, 2)})
    (root / "junk" / "other.wav").write_bytes(os.urandom(2000))
