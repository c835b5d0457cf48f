"""The trained checkpoint that ships in the repository: loads, streams, and beats the mixture on real music."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

import model
from streaming import StreamingSeparator

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_checkpoint_loads_with_documented_metadata():
    path = model.DEFAULT_CHECKPOINT
    assert path.is_file(), f"the default checkpoint must ship at {path}"
    assert path.stat().st_size <= 20 * 2**20
    sep = model.load_checkpoint(path)
    assert sep.causal and sep.stems == ("vocals", "accompaniment") and sep.sample_rate == 44100
    for key in ("preset", "data", "steps", "hardware", "wall_time_s", "training_data"):
        assert key in sep.metadata, key


def test_shipped_checkpoint_streams_exactly():
    sep = model.load_checkpoint(model.DEFAULT_CHECKPOINT)
    x = 0.2 * torch.randn(1, 2, 30000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = sep(x)[0].numpy()
    engine = StreamingSeparator(sep, device="cpu")
    out = np.concatenate([engine.feed(x[0, :, :12345].numpy()), engine.feed(x[0, :, 12345:].numpy()), engine.flush()], -1)
    assert np.abs(out[..., engine.latency_samples:] - ref).max() < 1e-4


def test_shipped_checkpoint_beats_the_mixture_on_the_demo_clip(tmp_path):
    """Streaming mode, museval on the real MUSDB18 preview: both stems above the leave-it-alone baseline."""
    from tools import evaluate
    out = tmp_path / "demo.json"
    assert evaluate.main(["demo", "--streaming", "--baseline", "mixture", "--json", str(out), "--quiet"]) == 0
    agg = json.loads(out.read_text())["aggregate"]
    for stem in ("vocals", "accompaniment"):
        assert agg["model"][stem]["SDR"] > agg["mixture"][stem]["SDR"], (stem, agg)


def test_live_host_uses_the_shipped_checkpoint_by_default(tmp_path):
    out = tmp_path / "karaoke.wav"
    r = subprocess.run([sys.executable, "-m", "streaming", "--input", "demo", "--mute", "vocals", "--output", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert "RANDOM" not in r.stderr and str(model.DEFAULT_CHECKPOINT.name) in r.stderr
    audio, rate = sf.read(out)
    assert rate == 44100 and audio.shape[1] == 2 and np.isfinite(audio).all() and np.abs(audio).max() > 1e-3
