"""Speed of peer architectures with random weights (no downloads), for `python -m tools.bench`.

Open-Unmix (`openunmix`, umxhq size: 2049 bins, max_bin 1487 (16 kHz), hidden 512, 3-layer BLSTM) and
HTDemucs (`demucs`, default htdemucs hyper-parameters, 4 sources, 7.8 s segments through
`demucs.apply.apply_model`). Both are installed without their dependencies
(`pip install --no-deps openunmix demucs julius einops`): torchaudio has no build for this torch.
`openunmix` imports torchaudio at module import although its torch STFT path never uses it, so a bare
stand-in module is put into `sys.modules` for the import; every record says how it was run (`how`),
or why it could not run (`error`) instead of numbers.
"""
from __future__ import annotations

import importlib
import sys
import time
import types

import numpy as np
import torch

INSTALL_HINT = ".venv/bin/pip install --no-deps openunmix demucs julius einops"


def _clip(seconds: float, rate: int = 44100, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(1, 2, round(seconds * rate), generator=g)


def _import_with_torchaudio_standin(name: str) -> tuple[types.ModuleType, bool]:
    """Import `name`; if it fails only because torchaudio is missing, retry with an empty stand-in."""
    try:
        return importlib.import_module(name), False
    except ModuleNotFoundError as e:
        if e.name != "torchaudio":
            raise
    sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[mod]
    return importlib.import_module(name), True


def _record(name: str, how: str, params: int, seconds: float, compute_s: float, threads: int, **extra) -> dict:
    return {"preset": name, "mode": "offline", "device": "cpu", "threads": threads, "params": params,
            "latency_ms": extra.pop("latency_ms", None), "hop_ms": None, "step_ms_p50": None,
            "step_ms_p99": None, "rtf": round(compute_s / seconds, 4), "seconds": seconds,
            "compute_s": round(compute_s, 3), "how": how, **extra}


def _failed(name: str, why: str, threads: int) -> dict:
    return {"preset": name, "mode": "offline", "device": "cpu", "threads": threads, "params": None,
            "latency_ms": None, "hop_ms": None, "step_ms_p50": None, "step_ms_p99": None, "rtf": None,
            "error": why}


def bench_openunmix(seconds: float = 10.0, threads: int = 1) -> dict:
    """One umxhq-sized target model (STFT -> BLSTM -> mask -> iSTFT, no Wiener post-filter) on a clip."""
    name = "openunmix-umxhq"
    try:
        _, standin = _import_with_torchaudio_standin("openunmix")
        from openunmix.model import OpenUnmix, Separator
    except Exception as e:  # noqa: BLE001 - the reason becomes the record
        return _failed(name, f"cannot import openunmix ({type(e).__name__}: {e}); install: {INSTALL_HINT}", threads)
    try:
        torch.manual_seed(0)
        target = OpenUnmix(nb_bins=4096 // 2 + 1, nb_channels=2, hidden_size=512, max_bin=1487)
        sep = Separator({"vocals": target}, niter=0, n_fft=4096, n_hop=1024, nb_channels=2).eval()
        x = _clip(seconds)
        with torch.inference_mode():
            sep(x[..., :44100])                       # warm-up
            t = time.perf_counter()
            sep(x)
            dt = time.perf_counter() - t
    except Exception as e:  # noqa: BLE001
        return _failed(name, f"openunmix failed to run ({type(e).__name__}: {e})", threads)
    how = ("openunmix (pip --no-deps), random weights, umxhq size, 1 target (x4 for 4 stems), niter=0; "
           + ("imported with an empty torchaudio stand-in (torchaudio has no build for this torch)" if standin
              else "torchaudio present"))
    return _record(name, how, sum(p.numel() for p in target.parameters()), seconds, dt, threads,
                   latency_ms=None, per="target")


def bench_htdemucs(seconds: float = 10.0, threads: int = 1, segment: float = 7.8) -> dict:
    """HTDemucs, 4 sources, default hyper-parameters, split into `segment`-second chunks (overlap 0.25)."""
    name = "htdemucs"
    try:
        _, standin = _import_with_torchaudio_standin("demucs.htdemucs")
        from demucs.apply import apply_model
        from demucs.htdemucs import HTDemucs
    except Exception as e:  # noqa: BLE001
        return _failed(name, f"cannot import demucs ({type(e).__name__}: {e}); install: {INSTALL_HINT}", threads)
    try:
        torch.manual_seed(0)
        model = HTDemucs(sources=["drums", "bass", "other", "vocals"], samplerate=44100, segment=segment).eval()
        x = _clip(seconds)
        with torch.inference_mode():
            t = time.perf_counter()
            apply_model(model, x, shifts=0, split=True, overlap=0.25, progress=False, device="cpu", segment=segment)
            dt = time.perf_counter() - t
    except Exception as e:  # noqa: BLE001
        return _failed(name, f"htdemucs failed to run ({type(e).__name__}: {e})", threads)
    how = (f"demucs (pip --no-deps), random weights, default HTDemucs, 4 sources, {segment} s segments, "
           "overlap 0.25, shifts 0" + ("; torchaudio stand-in" if standin else ""))
    return _record(name, how, sum(p.numel() for p in model.parameters()), seconds, dt, threads,
                   latency_ms=round(1000 * segment, 1), per="4 stems")


def bench_peers(seconds: float, threads: int, segment: float = 7.8) -> list[dict]:
    np.random.seed(0)
    return [bench_openunmix(seconds, threads), bench_htdemucs(seconds, threads, segment)]
