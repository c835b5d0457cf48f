"""Offline long-file inference: fixed-length segments, overlap-added with normalised weights.

`chunked_apply(fn, wav, segment, overlap)` runs `fn` ((B, C, L) -> (B, S, C, L), L = segment) on
overlapping segments of a (B, C, N) signal and returns (B, S, C, N). Each segment's output is weighted
by a triangle of positive integers and the sum is divided by the summed weights, accumulated in
float64: the products w * y and their sums are exact there, so an identity `fn` returns its input
bit for bit (see tests/tools/test_chunked.py).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def segment_weights(segment: int) -> Tensor:
    """(segment,) float64 triangle 1, 2, ..., peak, ..., 2, 1: every sample has a positive weight."""
    half = segment // 2
    return torch.cat([torch.arange(1, half + 1), torch.arange(segment - half, 0, -1)]).double()


def segment_starts(length: int, segment: int, overlap: float) -> list[int]:
    """Start sample of every segment needed to cover `length` samples with the given overlap fraction."""
    assert segment > 0 and 0.0 <= overlap < 1.0, (segment, overlap)
    stride = max(1, round(segment * (1.0 - overlap)))
    if length <= segment:
        return [0]
    starts = list(range(0, length - segment, stride))
    return starts + [length - segment] if starts[-1] != length - segment else starts


@torch.no_grad()
def chunked_apply(fn: Callable[[Tensor], Tensor], wav: Tensor, segment: int, overlap: float = 0.25,
                  batch_size: int = 1, progress: bool = False, desc: str = "") -> Tensor:
    """wav (B, C, N) -> (B, S, C, N): `fn` on segments of exactly `segment` samples (the last one, or a
    signal shorter than a segment, is zero-padded), overlap-added with normalised triangle weights.

    `fn` maps (B', C, segment) -> (B', S, C, segment); `batch_size` segments go through it per call."""
    assert wav.dim() == 3, f"expected (B, C, N), got {tuple(wav.shape)}"
    b, c, n = wav.shape
    starts = segment_starts(n, segment, overlap)
    weights = segment_weights(segment).to(wav.device)
    out: Tensor | None = None
    norm = torch.zeros(n, dtype=torch.float64, device=wav.device)
    groups = [starts[i:i + batch_size] for i in range(0, len(starts), batch_size)]
    if progress:
        from tqdm import tqdm
        groups = tqdm(groups, desc=desc or "segments", unit="batch", leave=False)
    for group in groups:
        pieces = [wav[..., s:s + segment] for s in group]
        pieces = [torch.nn.functional.pad(p, (0, segment - p.shape[-1])) for p in pieces]
        y = fn(torch.cat(pieces, 0))
        assert y.dim() == 4 and y.shape[0] == b * len(group) and y.shape[-1] == segment, \
            f"fn: expected ({b * len(group)}, S, {c}, {segment}), got {tuple(y.shape)}"
        if out is None:
            out = torch.zeros(b, y.shape[1], y.shape[2], n, dtype=torch.float64, device=wav.device)
        for j, s in enumerate(group):
            k = min(segment, n - s)
            out[..., s:s + k] += y[j * b:(j + 1) * b, ..., :k].double() * weights[:k]
            norm[s:s + k] += weights[:k]
    assert out is not None
    return (out / norm).to(wav.dtype)
