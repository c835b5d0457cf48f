"""tools.export: TorchScript / ONNX streaming step and offline separator == eager within 1e-4, on
step counts, frame indices and lengths not used for the export."""
from __future__ import annotations

import pytest
import torch

from tools.export import (
    TOLERANCE,
    check_segment,
    check_step,
    onnx_segment,
    onnx_step,
    step_inputs,
    torchscript_segment,
    torchscript_step,
)

SEGMENT = 6000          # offline export length (samples); checks run at other lengths through the chunker
LENGTHS = (2345, 14001)


@pytest.fixture
def sep(tiny_separator):
    return tiny_separator


def _later_step_diff(sep, fn, t0: int) -> float:
    """One step at a later frame index t0 from a random state: exported vs eager."""
    feats, _, *state = step_inputs(sep, t0, seed=7)
    with torch.no_grad():
        got = fn(feats, torch.tensor(t0), *state)
        want_masks, want_state = sep.net.step(feats, list(state), t0)
    diffs = [(got[0] - want_masks).abs().max()] + [(a - b).abs().max() for a, b in zip(got[1:], want_state)]
    assert len(got) == 1 + len(want_state)
    return float(max(diffs))


def test_torchscript_step(sep, tmp_path):
    fn = torchscript_step(sep, tmp_path / "step.pt", t0=5)
    assert check_step(sep, fn, frames=20) <= TOLERANCE         # from frame 0: warm-up frames included
    for t0 in (0, 3, 100, 1001):
        assert _later_step_diff(sep, fn, t0) <= TOLERANCE


def test_onnx_step(sep, tmp_path):
    pytest.importorskip("onnxruntime")
    fn = onnx_step(sep, tmp_path / "step.onnx", t0=5)
    assert fn is not None
    assert check_step(sep, fn, frames=20) <= TOLERANCE
    for t0 in (1, 257):
        assert _later_step_diff(sep, fn, t0) <= TOLERANCE


def test_torchscript_offline(sep, tmp_path):
    fn = torchscript_segment(sep, SEGMENT, tmp_path / "offline.pt")
    assert check_segment(sep, fn, SEGMENT, LENGTHS) <= TOLERANCE


def test_onnx_offline(sep, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    fn = onnx_segment(sep, SEGMENT, tmp_path / "offline.onnx")
    assert check_segment(sep, fn, SEGMENT, LENGTHS) <= TOLERANCE


def test_check_detects_a_wrong_export(sep, tmp_path):
    """The equality check can fail: a step exported from other weights is caught."""
    other = type(sep)(sep.config).eval()
    fn = torchscript_step(other, tmp_path / "other.pt")
    assert check_step(sep, fn, frames=6) > TOLERANCE
