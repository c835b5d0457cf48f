"""Compiled execution of the per-hop streaming step: policy, on-disk caches, CUDA graphs.

`torch.compile` (inductor) turns the static per-hop step (one frame, ring-buffer state updated in
place, mask tables indexed by a position tensor) into one graph of fused kernels: C++/OpenMP on the
CPU, Triton on CUDA, where the whole hop (FFT, network, inverse FFT) is also captured once in a CUDA
graph and replayed. Compilation happens before a stream opens; its artifacts are cached on disk in a
user cache folder, so a second start loads them instead of compiling again.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import torch

from core.errors import UserError

COMPILE_SETTINGS = ("auto", "on", "off")


def cache_dir() -> Path:
    """Where compiled artifacts live: $TFSWA_CACHE_DIR, else $XDG_CACHE_HOME/tfswa-live, else ~/.cache/tfswa-live."""
    env = os.environ.get("TFSWA_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tfswa-live"


def use_cache_dir() -> Path:
    """Point inductor's caches (compiled kernels, FX graphs, autotuning) at our cache folder."""
    path = cache_dir() / "inductor"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR", ""))   # unwritable: inductor's default
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(path))
    return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])


def parse_setting(value) -> str:
    """config `streaming.compile` / --compile / --no-compile -> auto | on | off."""
    if value is True:
        return "on"
    if value is False or value is None:
        return "off" if value is False else "auto"
    value = str(value).strip().lower()
    if value not in COMPILE_SETTINGS:
        raise UserError(f"streaming.compile: expected one of {', '.join(COMPILE_SETTINGS)}, got {value!r}")
    return value


def can_compile(device: torch.device) -> tuple[bool, str]:
    """Whether inductor can build code for `device` here, and why not."""
    if device.type == "cuda":
        try:
            import triton  # noqa: F401 - inductor's CUDA backend
        except ImportError:
            return False, "Triton is not installed"
        return True, ""
    if device.type != "cpu":
        return False, f"no compiled path for device {device.type}"
    cxx = os.environ.get("CXX") or "c++"
    if shutil.which(cxx) is None and shutil.which("g++") is None:
        return False, "no C++ compiler found (install g++)"
    return True, ""


def wanted(setting: str, device: torch.device) -> bool:
    """Resolve auto | on | off for `device`; `on` where compiling is impossible is a UserError."""
    ok, why = can_compile(device)
    if setting == "on" and not ok:
        raise UserError(f"--compile: cannot compile for {device.type} ({why}); expected a C++ compiler (CPU) "
                        "or CUDA with Triton, or --no-compile")
    return setting == "on" or (setting == "auto" and ok)


SOURCES = ("model/attention.py", "model/blocks.py", "model/unet.py", "model/separator.py", "model/config.py",
           "streaming/engine/separator.py", "streaming/engine/compiled.py")   # code a compiled step is made of
_LOADED: dict[str, object] = {}    # key -> compiled step, shared by the engines of one process


def run_core(core: torch.nn.Module, spec: torch.Tensor) -> torch.Tensor:
    """The function that is compiled: the core module is an argument, so its weights and state stay
    the module's own tensors (read at every call) and one compiled step serves any weights."""
    return core(spec)


def step_key(core: torch.nn.Module, example: torch.Tensor) -> str:
    """What a compiled step depends on: the network geometry, dtype, device, threads, the source code of
    the modules it compiles, torch, Python and the CPU; a change to any of them compiles afresh."""
    import hashlib
    import json
    import platform

    root = Path(__file__).resolve().parents[2]   # the repository: streaming/engine/compiled.py
    h = hashlib.sha256()
    cfg = core.separator.config.to_dict()
    cfg.pop("name", None)
    h.update(json.dumps(cfg, sort_keys=True).encode())
    h.update(repr((str(example.dtype), tuple(example.shape), example.device.type, str(core.state()[0].dtype),
                   torch.get_num_threads(), torch.__version__, sys.version, platform.machine())).encode())
    for name in SOURCES:
        h.update((root / name).read_bytes())
    try:
        flags = [line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")]
        h.update(flags[0].encode() if flags else b"")
    except OSError:
        pass
    return h.hexdigest()[:24]


def compile_step(core: torch.nn.Module, example: torch.Tensor):
    """`core(spec)` compiled ahead of time into one static graph (torch.compile, fullgraph, inductor; on CPU
    with a C++ wrapper so a hop is one native call), saved in the cache folder and loaded from there on
    later starts (no tracing). Guards are not evaluated per call: the engine always passes the same
    shapes, dtypes and grad mode. Returns fn(spec) -> core(spec). Call under torch.inference_mode()."""
    import torch._inductor.config

    use_cache_dir()
    key = step_key(core, example)
    fn = _LOADED.get(key)
    if fn is None:
        path = cache_dir() / "steps" / f"{key}.bin"
        with torch._inductor.config.patch(cpp_wrapper=example.device.type == "cpu"):
            fn = _load(path)
            if fn is None:
                fn = torch.compile(run_core, fullgraph=True, dynamic=False).aot_compile(((core, example), {}))
                _save(fn, path)
        fn.disable_guard_check()
        _LOADED[key] = fn
    return lambda spec: fn(core, spec)


def is_cached(core: torch.nn.Module, example: torch.Tensor) -> bool:
    """Whether a start would load this step (in this process or from the cache folder) instead of compiling."""
    key = step_key(core, example)
    return key in _LOADED or (cache_dir() / "steps" / f"{key}.bin").is_file()


def _load(path: Path):
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as f:
            return torch.compiler.load_compiled_function(f, f_globals=run_core.__globals__)
    except Exception as e:  # noqa: BLE001 - a stale or damaged artifact is rebuilt, never fatal
        warn(f"ignoring the cached compiled step {path.name} ({type(e).__name__}); compiling it again")
        path.unlink(missing_ok=True)
        return None


def _save(fn, path: Path) -> None:
    """Atomically (temp file + rename); an unwritable cache only costs the next start a compilation."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fn.save_compiled_function(str(tmp))
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        warn(f"could not cache the compiled step in {path.parent} ({e.strerror}); the next start compiles again")


class CudaGraphHop:
    """Capture `fn(static_in) -> out` once in a CUDA graph and replay it: `__call__(x)` copies x into the
    static input, replays every kernel of the hop with one launch, and returns the static output (valid
    until the next call). `fn` must keep all its state in tensors it updates in place."""

    def __init__(self, fn, example: torch.Tensor, warmup: int = 3):
        self.static_in = example.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):       # first calls allocate, pick kernels and build FFT plans
            for _ in range(warmup):
                fn(self.static_in)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_out = fn(self.static_in)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.static_in.copy_(x, non_blocking=True)
        self.graph.replay()
        return self.static_out


def warn(message: str) -> None:
    print(f"streaming: warning: {message}", file=sys.stderr, flush=True)
