"""Offline long-file inference: fixed-length segments, overlap-added with normalised weights.

`chunked_apply(fn, wav, segment, overlap)` runs `fn` ((B, C, L) -> (B, S, C, L), L = segment) on
overlapping segments of a (B, C, N) signal and returns (B, S, C, N). Each segment's output is weighted
by a triangle of positive integers and the sum is divided by the summed weights, accumulated in
float64: the products w * y and their sums are exact there, so an identity `fn` returns its input
bit for bit (see tests/tools/test_chunked.py).

`ChunkedStream` does the same on a stream (what `tools.separate` uses, so memory does not grow with the
file): `feed` pieces of any length, get back the output samples no later segment can change, `flush`
at the end. It runs the very segments of `chunked_apply` (same starts, batches and float64 sums, in the
same order), so the result is identical; `chunked_apply` is one feed and one flush.
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


class ChunkedStream:
    """Chunked overlap-add over a stream. `feed(x)` (B, C, n) -> (B, S, C, m) output samples that are
    final, `flush()` -> the rest; in total exactly `chunked_apply` of the concatenated input.

    Segment starts are multiples of `stride` below N - segment, plus a last one at N - segment (N, the
    total length, is known only at `flush`). A regular segment runs once more than `segment` samples
    have arrived (so it is certain to be below N - segment); an output sample is final once every
    segment that covers it has run: before the next regular start and before received - segment (where
    the last segment could still begin). Only that window of input and float64 sums is kept."""

    def __init__(self, fn: Callable[[Tensor], Tensor], segment: int, overlap: float = 0.25, batch_size: int = 1):
        assert segment > 0 and 0.0 <= overlap < 1.0 and batch_size >= 1, (segment, overlap, batch_size)
        self.fn, self.segment, self.overlap, self.batch_size = fn, segment, overlap, batch_size
        self.stride = max(1, round(segment * (1.0 - overlap)))
        self.weights: Tensor | None = None
        self._in: Tensor | None = None        # input from sample `_base` on
        self._out: Tensor | None = None       # float64 weighted sums from `_base` on (B, S, C, L)
        self._norm: Tensor | None = None      # float64 summed weights from `_base` on (L,)
        self._base = 0                        # absolute index of the first sample held
        self.received = 0
        self.emitted = 0
        self._next = 0                        # next regular segment start

    def _append(self, x: Tensor) -> None:
        self._in = x if self._in is None else torch.cat([self._in, x], -1)
        self.received += x.shape[-1]
        if self.weights is None:
            self.weights = segment_weights(self.segment).to(x.device)

    def _run(self, starts: list[int]) -> None:
        """Run `fn` on the segments at `starts` (one batch) and add them into the sums."""
        seg, n = self.segment, self.received
        b, c = self._in.shape[:2]
        pieces = [self._in[..., s - self._base:min(s + seg, n) - self._base] for s in starts]
        pieces = [torch.nn.functional.pad(p, (0, seg - p.shape[-1])) for p in pieces]
        y = self.fn(torch.cat(pieces, 0))
        assert y.dim() == 4 and y.shape[0] == b * len(starts) and y.shape[-1] == seg, \
            f"fn: expected ({b * len(starts)}, S, {c}, {seg}), got {tuple(y.shape)}"
        need = max(s + seg for s in starts) - self._base
        if self._out is None:
            self._out = torch.zeros(b, y.shape[1], y.shape[2], 0, dtype=torch.float64, device=self._in.device)
            self._norm = torch.zeros(0, dtype=torch.float64, device=self._in.device)
        if self._out.shape[-1] < need:
            grow = need - self._out.shape[-1]
            self._out = torch.cat([self._out, self._out.new_zeros(*self._out.shape[:3], grow)], -1)
            self._norm = torch.cat([self._norm, self._norm.new_zeros(grow)])
        for j, s in enumerate(starts):
            k = min(seg, n - s)
            a = s - self._base
            self._out[..., a:a + k] += y[j * b:(j + 1) * b, ..., :k].double() * self.weights[:k]
            self._norm[a:a + k] += self.weights[:k]

    def _emit(self, upto: int, dtype: torch.dtype) -> Tensor:
        """Final output [emitted, upto), then drop what no later segment needs."""
        if self._out is None:                 # no segment has run yet: S is not known
            b, c = self._in.shape[:2]
            return torch.zeros(b, 0, c, 0, dtype=dtype, device=self._in.device)
        a, z = self.emitted - self._base, max(upto, self.emitted) - self._base
        out = (self._out[..., a:z] / self._norm[a:z]).to(dtype)
        self.emitted = max(upto, self.emitted)
        keep = min(self.emitted, max(0, self.received - self.segment), self._next) - self._base
        if keep > 0:
            self._in, self._out, self._norm = self._in[..., keep:], self._out[..., keep:], self._norm[keep:]
            self._base += keep
        return out

    def feed(self, x: Tensor) -> Tensor:
        """x (B, C, n) -> (B, S, C, m): the output samples that became final (m may be 0; before the first
        segment has run, S is 0 too)."""
        assert x.dim() == 3, f"expected (B, C, n), got {tuple(x.shape)}"
        self._append(x)
        ready = []
        while self._next + self.segment < self.received:
            ready.append(self._next)
            self._next += self.stride
        # whole batches only, so that batches are exactly chunked_apply's
        full = len(ready) - len(ready) % self.batch_size
        for i in range(0, full, self.batch_size):
            self._run(ready[i:i + self.batch_size])
        if full < len(ready):
            self._next = ready[full]
        upto = max(self.emitted, min(self._next, self.received - self.segment))
        return self._emit(upto, x.dtype)

    def flush(self) -> Tensor:
        """The rest of the output: the remaining regular segments and the last one (at N - segment, which
        no feed can have run: a regular segment ran only when it ended before the samples received)."""
        assert self._in is not None, "flush() before any feed()"
        starts = segment_starts(self.received, self.segment, self.overlap)
        rest = [s for s in starts[:-1] if s >= self._next] + starts[-1:]
        for i in range(0, len(rest), self.batch_size):
            self._run(rest[i:i + self.batch_size])
        self._next = self.received
        return self._emit(self.received, self._in.dtype)


@torch.no_grad()
def chunked_apply(fn: Callable[[Tensor], Tensor], wav: Tensor, segment: int, overlap: float = 0.25,
                  batch_size: int = 1, progress: bool = False, desc: str = "") -> Tensor:
    """wav (B, C, N) -> (B, S, C, N): `fn` on segments of exactly `segment` samples (the last one, or a
    signal shorter than a segment, is zero-padded), overlap-added with normalised triangle weights.

    `fn` maps (B', C, segment) -> (B', S, C, segment); `batch_size` segments go through it per call."""
    assert wav.dim() == 3, f"expected (B, C, N), got {tuple(wav.shape)}"
    stream = ChunkedStream(fn, segment, overlap, batch_size)
    n = wav.shape[-1]
    step = max(n, 1) if not progress else max(segment, 1)
    starts = range(0, max(n, 1), step)
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc=desc or "segments", unit="segment", leave=False)
    parts = [stream.feed(wav[..., s:s + step]) for s in starts]
    return torch.cat([p for p in [*parts, stream.flush()] if p.shape[1]], -1)
