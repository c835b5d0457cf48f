"""`python -m tools.export --out DIR`: TorchScript and ONNX exports of the separator, checked against eager.

Two artefacts per format:

* the streaming step (causal models): `StreamingStep`, one hop of the network with its state passed in
  and out: inputs `features` (1, C, 1, F) (log1p magnitudes of the newest frame, `Separator.features`),
  `t0` (0-d int64, the absolute frame index) and the state tensors `state_0..K-1`; outputs `masks`
  (1, S, C, 1, F) and `state_out_0..K-1`. The rolling STFT and overlap-add around it stay with the host
  (streaming/engine/separator.py), exactly as in the eager engine.
* the offline separator: `SegmentSeparator`, the whole separator (STFT -> network -> masks -> iSTFT) on a
  fixed segment of `segment` samples, (B, C, segment) -> (B, S, C, segment). Any length runs through the
  chunked overlap-add (streaming.engine.chunked) around it. The ONNX offline file is the network on one segment's
  features, (1, C, T, F) -> masks (1, S, C, T, F) (dynamo exporter, needs onnxscript), with the STFT and
  inverse STFT in torch around it.

DIR/export.json records shapes, names and the measured max |exported - eager| of every artefact.

    python -m tools.export --out exported [--checkpoint PATH] [--formats torchscript,onnx]
"""
from __future__ import annotations

import argparse
import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

import model
from core.errors import OneLineParser, UserError, run_main
from core.files import atomic_output, check_output_dir, write_bytes
from streaming.engine.chunked import chunked_apply

from .audio_io import load_separator, write_json
from .settings import SeparateConfig

TOLERANCE = 1e-4


class StreamingStep(nn.Module):
    """forward(features (1, C, 1, F), t0 0-d int64, *state) -> (masks (1, S, C, 1, F), *next_state)."""

    def __init__(self, separator: model.Separator):
        super().__init__()
        assert separator.causal, "the streaming step needs a causal separator"
        self.net = separator.net

    def forward(self, features: Tensor, t0: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        masks, next_state = self.net.step(features, list(state), t0)
        return (masks, *next_state)


class SegmentSeparator(nn.Module):
    """forward(wav (B, C, segment)) -> stems (B, S, C, segment): the whole separator on one segment."""

    def __init__(self, separator: model.Separator):
        super().__init__()
        self.separator = separator

    def forward(self, wav: Tensor) -> Tensor:
        return self.separator(wav)


class SegmentMasks(nn.Module):
    """forward(features (B, C, T, F)) -> masks (B, S, C, T, F): the network on one segment's features."""

    def __init__(self, separator: model.Separator):
        super().__init__()
        self.net = separator.net

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features)


def step_inputs(sep: model.Separator, t0: int, seed: int = 0) -> tuple[Tensor, ...]:
    """Example inputs of StreamingStep: random features at frame t0 and a random (warm-looking) state."""
    g = torch.Generator().manual_seed(seed)
    feats = torch.rand(1, sep.audio_channels, 1, sep.config.n_freq, generator=g)
    state = [0.1 * torch.randn(s.shape, generator=g) for s in sep.net.init_state(1)]
    return (feats, torch.tensor(t0, dtype=torch.int64), *state)


def run_steps(step_fn, sep: model.Separator, frames: Tensor) -> Tensor:
    """Run per-hop steps over features (1, C, T, F) from a zero state -> masks (1, S, C, T, F)."""
    state = sep.net.init_state(1)
    out = []
    for t in range(frames.shape[2]):
        res = step_fn(frames[:, :, t:t + 1], torch.tensor(t, dtype=torch.int64), *state)
        out.append(res[0])
        state = list(res[1:])
    return torch.cat(out, 3)


def eager_steps(sep: model.Separator, frames: Tensor) -> Tensor:
    """The same with the eager network and Python-int t0 (the engine's own path)."""
    state = sep.net.init_state(1)
    out = []
    for t in range(frames.shape[2]):
        m, state = sep.net.step(frames[:, :, t:t + 1], state, t)
        out.append(m)
    return torch.cat(out, 3)


# -- TorchScript -----------------------------------------------------------------------------------
def torchscript_step(sep: model.Separator, path: Path, t0: int = 5) -> torch.jit.ScriptModule:
    """Trace StreamingStep at frame t0 (t0 stays an input) and save it."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(StreamingStep(sep).eval(), step_inputs(sep, t0), check_trace=False)
    return _save_script(traced, path)


def torchscript_segment(sep: model.Separator, segment: int, path: Path) -> torch.jit.ScriptModule:
    wav = 0.1 * torch.randn(1, sep.audio_channels, segment, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(SegmentSeparator(sep).eval(), wav, check_trace=False)
    return _save_script(traced, path)


def _save_script(module: torch.jit.ScriptModule, path: Path) -> torch.jit.ScriptModule:
    """Serialise in memory, write through core.files (TorchScript's own file writer aborts the process
    on a full disk) and load back what was written."""
    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    write_bytes(path, buffer.getvalue())
    return torch.jit.load(io.BytesIO(buffer.getvalue()))


# -- ONNX ------------------------------------------------------------------------------------------
def onnx_step(sep: model.Separator, path: Path, t0: int = 5):
    """Export StreamingStep to ONNX (TorchScript-based exporter, opset 17, t0 an input); returns an onnxruntime
    session's run function with the StreamingStep signature, or None when onnxruntime is missing."""
    inputs = step_inputs(sep, t0)
    k = len(inputs) - 2
    names_in = ["features", "t0"] + [f"state_{i}" for i in range(k)]
    names_out = ["masks"] + [f"state_out_{i}" for i in range(k)]
    with torch.no_grad(), warnings.catch_warnings(), atomic_output(path) as tmp:
        warnings.simplefilter("ignore")
        torch.onnx.export(StreamingStep(sep).eval(), inputs, str(tmp), input_names=names_in,
                          output_names=names_out, opset_version=17, dynamo=False)
    return _ort_fn(path, names_in)


def onnx_segment(sep: model.Separator, segment: int, path: Path):
    """Export SegmentMasks for one segment's frames (batch 1); returns (1, C, segment) -> (1, S, C, segment)
    that runs the STFT in torch and the network in onnxruntime, or None without onnxruntime."""
    n_frames = sep.stft.n_frames(segment)
    feats = torch.rand(1, sep.audio_channels, n_frames, sep.config.n_freq, generator=torch.Generator().manual_seed(2))
    # The dynamo exporter (onnxscript): the TorchScript one cannot size the blocked-attention unfold.
    # Grad mode keeps the attention masks out of the inference-time memo (which keys on data pointers).
    import logging
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with torch.enable_grad(), warnings.catch_warnings(), atomic_output(path) as tmp:
        warnings.simplefilter("ignore")
        torch.onnx.export(SegmentMasks(sep).eval(), (feats,), str(tmp), input_names=["features"],
                          output_names=["masks"], dynamo=True, verbose=False)
    run = _ort_fn(path, ["features"])
    if run is None:
        return None

    def separate(wav: Tensor) -> Tensor:
        spec = sep.stft(sep.to_network_channels(wav))
        masks = run(sep.features(spec))[0]
        stems = sep.stft.inverse(sep.apply_masks(spec, masks), wav.shape[-1])
        return stems.mean(2, keepdim=True) if wav.shape[1] == 1 else stems

    return separate


def _ort_fn(path: Path, names: list[str]):
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wanted = {i.name for i in sess.get_inputs()}  # unused inputs are pruned by the exporter

    def run(*args: Tensor) -> tuple[Tensor, ...]:
        feed = {n: a.detach().cpu().numpy() for n, a in zip(names, args) if n in wanted}
        return tuple(torch.from_numpy(np.asarray(o)) for o in sess.run(None, feed))

    return run


# -- checks ----------------------------------------------------------------------------------------
def check_step(sep: model.Separator, step_fn, frames: int = 24, seed: int = 3) -> float:
    """max |exported - eager| of masks over `frames` steps from a zero state (warm-up included)."""
    g = torch.Generator().manual_seed(seed)
    feats = torch.rand(1, sep.audio_channels, frames, sep.config.n_freq, generator=g)
    with torch.no_grad():
        return float((run_steps(step_fn, sep, feats) - eager_steps(sep, feats)).abs().max())


def check_segment(sep: model.Separator, seg_fn, segment: int, lengths: tuple[int, ...], overlap: float = 0.25) -> float:
    """max |exported - eager| of stems through the chunked overlap-add at lengths other than `segment`."""
    worst = 0.0
    with torch.no_grad():
        for i, n in enumerate(lengths):
            wav = 0.1 * torch.randn(1, sep.audio_channels, n, generator=torch.Generator().manual_seed(10 + i))
            a = chunked_apply(seg_fn, wav, segment, overlap)
            b = chunked_apply(sep, wav, segment, overlap)
            worst = max(worst, float((a - b).abs().max()))
    return worst


def export_all(sep: model.Separator, out: Path, segment: int, formats: tuple[str, ...]) -> dict:
    """Write every artefact into `out`, check each against eager; returns the manifest."""
    sep = sep.cpu().eval()
    out.mkdir(parents=True, exist_ok=True)
    lengths = (segment // 3 + 7, 2 * segment + 1001)
    manifest: dict = {"stems": list(sep.stems), "sample_rate": sep.sample_rate, "n_fft": sep.n_fft,
                      "hop_length": sep.hop_length, "causal": sep.causal, "segment_samples": segment,
                      "tolerance": TOLERANCE, "artefacts": {}}
    if sep.causal:
        manifest["state_shapes"] = [list(s.shape) for s in sep.net.init_state(1)]
    arts = manifest["artefacts"]
    if "torchscript" in formats:
        if sep.causal:
            fn = torchscript_step(sep, out / "step.pt")
            arts["step.pt"] = {"kind": "streaming step", "max_abs_diff": check_step(sep, fn)}
        fn = torchscript_segment(sep, segment, out / "offline.pt")
        arts["offline.pt"] = {"kind": "offline separator segment", "max_abs_diff": check_segment(sep, fn, segment, lengths)}
    if "onnx" in formats:
        if sep.causal:
            arts["step.onnx"] = _onnx_artefact("streaming step", lambda: onnx_step(sep, out / "step.onnx"),
                                               lambda fn: check_step(sep, fn))
        arts["offline.onnx"] = _onnx_artefact(
            "offline network on one segment's features (STFT / iSTFT in torch)",
            lambda: onnx_segment(sep, segment, out / "offline.onnx"), lambda fn: check_segment(sep, fn, segment, lengths))
    manifest["checked_lengths"] = list(lengths)
    return manifest


def _onnx_artefact(kind: str, export, check) -> dict:
    """Export and check one ONNX artefact; an exporter failure is recorded in one line, not raised
    (a failed write, e.g. a full disk, is raised: it is not the exporter's)."""
    try:
        fn = export()
    except OSError:
        raise
    except Exception as e:  # noqa: BLE001 - the ONNX exporter's errors carry whole graphs: keep the first line
        return {"kind": kind, "max_abs_diff": None, "note": f"export failed: {str(e).splitlines()[0][:200]}"}
    if fn is None:
        return {"kind": kind, "max_abs_diff": None, "note": "onnxruntime not installed: not checked"}
    return {"kind": kind, "max_abs_diff": check(fn), "note": None}


def run(args) -> int:
    from core.config import resolve_config
    from tools import COMMAND
    config = resolve_config(command=COMMAND)
    formats = tuple(f for f in args.formats.split(",") if f)
    bad = [f for f in formats if f not in ("torchscript", "onnx")]
    if bad or not formats:
        raise UserError(f"--formats: expected torchscript and/or onnx, got {args.formats!r}")
    seconds = args.segment_seconds if args.segment_seconds is not None else \
        SeparateConfig.from_config(config).segment_seconds
    if not 0 < seconds <= 600:
        raise UserError(f"--segment-seconds: expected a number of seconds in (0, 600], got {seconds}")
    out = check_output_dir(args.out, "--out")
    sep, where = load_separator(args.checkpoint, args.preset)
    segment = max(sep.n_fft, round(seconds * sep.sample_rate))
    manifest = export_all(sep, out, segment, formats)
    manifest["model"] = where
    write_json(out / "export.json", manifest)
    print(f"# {where}; segment {segment} samples; checked at lengths {manifest['checked_lengths']}")
    for name, a in manifest["artefacts"].items():
        d = a["max_abs_diff"]
        ok = "ok" if d is not None and d <= TOLERANCE else ("not checked" if d is None else "MISMATCH")
        print(f"{name:14s} {a['kind']:70s} max|diff| {d if d is None else f'{d:.2e}'}  {ok}")
    bad = [n for n, a in manifest["artefacts"].items() if a["max_abs_diff"] is not None and a["max_abs_diff"] > TOLERANCE]
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m tools.export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--checkpoint")
    p.add_argument("--preset", help="a config.yaml preset with random weights instead of a checkpoint")
    p.add_argument("--formats", default="torchscript,onnx", help="comma list: torchscript,onnx")
    p.add_argument("--segment-seconds", type=float, default=None,
                   help="offline segment length (default: tools.separate.segment_seconds)")
    return run_main(p, run, argv)


if __name__ == "__main__":
    from core.signals import exit_fast
    exit_fast(main())
