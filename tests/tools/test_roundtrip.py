"""`tools.roundtrip` on a real JACK dummy server: the click delay measured through the live host agrees
with the host's computed breakdown (model + resampler + buffers) within one block; at the model's rate the
resampler is bypassed. Tiny pass-through model, compiled step as the CLI runs it (the eager step of even the
tiny model is not real time on a slow 2-core VM: every click then comes back dry), a few seconds of clicks."""
from __future__ import annotations

import shutil

import pytest

from tools import roundtrip


@pytest.mark.skipif(shutil.which("jackd") is None, reason="jackd (Debian package jackd2) is not installed")
@pytest.mark.parametrize(("rate", "block"), [(48000, 256), (44100, 128)])
def test_measured_round_trip_agrees_with_the_breakdown(tmp_path, rate, block):
    cfg = tmp_path / "host.yaml"
    cfg.write_text("host:\n  prefill_probe_s: 0.5\n  adaptive_headstart: false\n")   # a fixed latency to measure
    r = roundtrip.measure(preset="tiny", rate=rate, blocksize=block, seconds=3.0,
                          host_args=("--config", str(cfg)))
    assert r["blocksize"] == block and r["rate"] == rate
    assert r["clicks"] >= 10 and r["clicks_lost"] <= r["clicks"] // 4, r
    assert r["agree_within_block"], r
    assert abs(r["measured_ms"] - r["computed_ms"]) < 0.5, r     # in fact exact: prefill + model latency
    assert abs(r["computed_ms"] - (r["model_ms"] + r["resampler_ms"] + r["buffers_ms"])) < 1e-3
    assert r["headstart_blocks"] >= 1 and r["buffers_ms"] == pytest.approx(r["headstart_blocks"] * r["block_ms"], abs=0.01)
    if rate == 44100:
        assert r["resampler_ms"] == 0.0 and r["resample_quality"] == "bypassed"
    else:
        assert 0.0 < r["resampler_ms"] < 2.0 and r["resample_quality"] == "LD32"
    assert r["total_measured_ms"] == pytest.approx(r["measured_ms"] + r["device_ms"], abs=1e-3)
    assert "latency" in r["start_line"] and "= model" in r["start_line"]
