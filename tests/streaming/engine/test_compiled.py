"""The compiled streaming step (torch.compile of the static per-hop core): exactly the offline causal
output, in block mode and after reset, and never recompiled once warm."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from torch._dynamo.utils import counters

import core
import model
from streaming import StreamingSeparator
from streaming.engine import compiled
from tests.streaming.conftest import ROOT
from tests.streaming.engine.test_engine import stream

pytestmark = pytest.mark.skipif(not compiled.can_compile(torch.device("cpu"))[0],
                                reason="no C++ compiler for torch.compile's CPU backend (install g++)")


@pytest.fixture(scope="module")
def warm_engine(tiny):
    """A compiled tiny engine, warmed up (compiled) once for the module."""
    engine = StreamingSeparator(tiny, device="cpu", compile="on")
    engine.warm_up()
    assert engine.engine_kind == "compiled" and engine.compile_s > 0
    return engine


def offline(sep, x):
    with torch.no_grad():
        return sep(x)[0].numpy()


@pytest.mark.parametrize("channels", [1, 2])
def test_compiled_equals_offline_random_chunks_and_reset(tiny, warm_engine, channels):
    x = 0.3 * torch.randn(1, channels, 6001, generator=torch.Generator().manual_seed(channels))
    ref = offline(tiny, x)
    engine = warm_engine if channels == 2 else StreamingSeparator(tiny, device="cpu", channels=1, compile="on")
    engine.reset()
    rng = np.random.default_rng(5)
    for _ in range(2):  # a reset compiled engine behaves exactly like a new one
        out = stream(engine, x[0].numpy(), rng)
        lat = engine.latency_samples
        assert engine.engine_kind == "compiled"
        assert out.shape == (2, channels, 6001 + lat)
        assert np.abs(out[..., lat:] - ref).max() < 1e-4
        assert np.abs(out[..., :lat]).max() == 0.0
        engine.reset()


def test_compiled_block_mode_equals_eager(tiny, warm_engine):
    x = (0.3 * torch.randn(2, 256 * 37 + 5, generator=torch.Generator().manual_seed(8))).numpy()
    warm_engine.reset()
    got = np.concatenate([warm_engine.feed(x[:, :256 * 20]), warm_engine.feed(x[:, 256 * 20:]),
                          warm_engine.flush()], -1)     # 20 and 17 hops per call
    eager = StreamingSeparator(tiny, device="cpu", compile="off")
    want = np.concatenate([eager.feed(x), eager.flush()], -1)
    assert eager.engine_kind == "eager"
    assert np.abs(got - want).max() < 1e-5


def test_no_recompile_after_warm_up_over_many_hops_and_resets(warm_engine):
    """Once warm, any number of hops, chunk sizes and resets runs the same graph: with dynamo's
    fail_on_recompile stance a recompilation would raise, and its frame counters stay put."""
    before = dict(counters["frames"])
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((2, 256 * 600))).astype(np.float32)
    with torch.compiler.set_stance("fail_on_recompile"):
        for _ in range(3):
            stream(warm_engine, x, rng, sizes=(1, 100, 256, 257, 1024, 4096))
            warm_engine.reset()
    assert dict(counters["frames"]) == before
    assert warm_engine._steps == 0 and warm_engine.engine_kind == "compiled"


def test_streaming_preset_compiled_equals_offline():
    sep = model.build_separator("streaming").eval()
    x = 0.3 * torch.randn(1, 2, 12000, generator=torch.Generator().manual_seed(5))
    engine = StreamingSeparator(sep, device="cpu", compile="on")
    out = stream(engine, x[0].numpy(), np.random.default_rng(7), sizes=(1, 511, 512, 513, 2000, 4096))
    assert engine.engine_kind == "compiled"
    assert np.abs(out[..., engine.latency_samples:] - offline(sep, x)).max() < 1e-4


def test_compiled_k_hops_per_step_equals_offline_and_never_recompiles(tiny):
    """K = 2 hops per compiled call: one static graph of two frames, the offline output one hop later."""
    x = 0.3 * torch.randn(1, 2, 6001, generator=torch.Generator().manual_seed(12))
    engine = StreamingSeparator(tiny, device="cpu", compile="on", hops_per_step=2)
    engine.warm_up()
    assert engine.engine_kind == "compiled" and engine.latency_samples == 512 + 256
    before = dict(counters["frames"])
    rng = np.random.default_rng(3)
    with torch.compiler.set_stance("fail_on_recompile"):
        for _ in range(2):
            out = stream(engine, x[0].numpy(), rng)
            assert np.abs(out[..., engine.latency_samples:] - offline(tiny, x)).max() < 1e-4
            assert np.abs(out[..., :engine.latency_samples]).max() == 0.0
            engine.reset()
    assert dict(counters["frames"]) == before


def test_compile_settings():
    assert compiled.parse_setting(True) == "on" and compiled.parse_setting(False) == "off"
    assert compiled.parse_setting(None) == "auto" and compiled.parse_setting("Auto") == "auto"
    with pytest.raises(core.UserError, match="auto, on, off"):
        compiled.parse_setting("fast")
    assert compiled.wanted("auto", torch.device("cpu")) and not compiled.wanted("off", torch.device("cpu"))


def test_auto_falls_back_to_eager_with_one_warning_when_compiling_fails(capsys):
    """A real failing compiler (inductor's C++ compiler set to /bin/false) on a geometry nothing has compiled:
    compile=auto warns once and runs eager, still exact; compile=on is a one-line user error."""
    import dataclasses

    import torch._inductor.config as inductor_config

    cfg = dataclasses.replace(model.model_config("tiny"), tsa_window=5, name="tiny-fallback")
    sep = model.Separator(cfg).eval()
    x = 0.3 * torch.randn(1, 2, 3000, generator=torch.Generator().manual_seed(2))
    with inductor_config.patch({"cpp.cxx": ("/bin/false",), "fx_graph_cache": False}):
        engine = StreamingSeparator(sep, device="cpu", compile="auto")
        engine.warm_up()
        with pytest.raises(core.UserError, match="compiling the streaming step failed"):
            StreamingSeparator(sep, device="cpu", compile="on").warm_up()
    err = capsys.readouterr().err
    assert engine.engine_kind == "eager"
    assert err.count("warning: compiling the streaming step failed") == 1 and "Traceback" not in err
    out = np.concatenate([engine.feed(x[0].numpy()), engine.flush()], -1)
    assert np.abs(out[..., engine.latency_samples:] - offline(sep, x)).max() < 1e-4


def test_short_file_runs_stay_eager_unless_the_step_is_cached(tiny, warm_engine, tmp_path, monkeypatch):
    # tiny was compiled in this process (at the fixture's thread count, part of the build's key): an auto
    # engine of it finds the build and compiles (loads) as usual
    same = StreamingSeparator(tiny, device="cpu", compile="auto", threads=warm_engine.threads)
    assert not same.skip_compile_unless_cached() and same.compiles_on_warm_up
    monkeypatch.setenv("TFSWA_CACHE_DIR", str(tmp_path))        # an empty cache: nothing built for lowlatency
    low = model.build_separator("lowlatency").eval()
    auto = StreamingSeparator(low, device="cpu", compile="auto")
    assert auto.skip_compile_unless_cached() and auto.engine_kind == "eager" and not auto.compiles_on_warm_up
    forced = StreamingSeparator(low, device="cpu", compile="on")
    assert not forced.skip_compile_unless_cached() and forced.compiles_on_warm_up
    # the CLI: a 2 s file -> file run stays eager, says why, and writes the same length
    src, out, stats = tmp_path / "in.wav", tmp_path / "out.wav", tmp_path / "s.json"
    sf.write(src, 0.1 * np.random.default_rng(0).standard_normal((88200, 2)).astype(np.float32), 44100)
    r = subprocess.run([sys.executable, "-m", "streaming", "--input", str(src), "--output", str(out), "--preset",
                        "lowlatency", "--stats-json", str(stats)], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, check=False, env={**os.environ, "TFSWA_CACHE_DIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "eager step for this 2 s file" in r.stderr and "compiling the streaming step" not in r.stderr
    assert json.loads(stats.read_text())["engine"] == "eager" and sf.info(out).frames == 88200
    assert not any(tmp_path.glob("steps/*.bin"))                 # nothing was compiled
