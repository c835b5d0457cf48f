"""Helpers of the tools tests (a module of its own: `from conftest import` resolves to whichever
conftest.py pytest imported first)."""
from __future__ import annotations

import numpy as np

RATE = 44100


def stem_signals(seconds: float = 3.0, seed: int = 0) -> dict[str, np.ndarray]:
    """Four distinct stereo (N, 2) signals: tones, noise bursts, a low sine, filtered noise."""
    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    t = np.arange(n) / RATE
    env = (np.sin(2 * np.pi * 0.7 * t) > -0.2).astype(np.float32)
    out = {
        "vocals": 0.2 * np.sin(2 * np.pi * (440 + 40 * np.sin(2 * np.pi * 3 * t)) * t) * env,
        "drums": 0.3 * rng.standard_normal(n) * (np.mod(t, 0.25) < 0.03),
        "bass": 0.25 * np.sin(2 * np.pi * 82.4 * t),
        "other": 0.05 * np.convolve(rng.standard_normal(n), np.ones(8) / 8, mode="same"),
    }
    return {k: np.stack([v, 0.8 * v + 0.01 * rng.standard_normal(n)], 1).astype(np.float32) for k, v in out.items()}


def one_line_error(capsys, code: int) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(err) == 1 and "error" in err[0] and "Traceback" not in err[0], err
    return err[0]
