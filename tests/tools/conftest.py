"""Fixtures of the tools tests: a folder of known stems, a tiny four-stem checkpoint."""
from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf
from tool_helpers import RATE, stem_signals

import model

STEMS = ("vocals", "drums", "bass", "other")


@pytest.fixture
def stem_folder(tmp_path: Path) -> Path:
    """folder/<track>/{mixture,vocals,drums,bass,other}.wav with mixture = sum of the stems."""
    root = tmp_path / "data"
    d = root / "song_a"
    d.mkdir(parents=True)
    stems = stem_signals(2.0)
    for name, audio in stems.items():
        sf.write(d / f"{name}.wav", audio, RATE, subtype="FLOAT")
    sf.write(d / "mixture.wav", sum(stems.values()), RATE, subtype="FLOAT")
    return root


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Path:
    """A tiny causal four-stem separator with random weights, saved as a checkpoint."""
    path = tmp_path / "tiny_four.ckpt"
    model.save_checkpoint(model.build_separator("tiny", stems="four").eval(), path)
    return path
