"""Chunked overlap-add: an identity network returns its input bit for bit; coverage and weights."""
from __future__ import annotations

import pytest
import torch

from streaming.engine.chunked import ChunkedStream, chunked_apply, segment_starts, segment_weights


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("length", [1, 777, 4096, 10001])
@pytest.mark.parametrize("segment,overlap", [(1024, 0.25), (1000, 0.5), (333, 0.0), (4096, 0.9)])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_identity_is_exact(channels, length, segment, overlap, batch_size):
    x = torch.randn(2, channels, length, generator=torch.Generator().manual_seed(length))
    y = chunked_apply(lambda w: torch.stack([w, -2.0 * w], 1), x, segment, overlap, batch_size)
    assert y.shape == (2, 2, channels, length)
    assert torch.equal(y[:, 0], x)
    assert torch.equal(y[:, 1], -2.0 * x)


@pytest.mark.parametrize("length", [10, 5000, 12345])
def test_segments_cover_the_signal(length):
    starts = segment_starts(length, 1000, 0.25)
    covered = torch.zeros(length, dtype=torch.bool)
    for s in starts:
        covered[s:s + 1000] = True
    assert bool(covered.all()) and starts == sorted(set(starts)) and starts[0] == 0
    assert all(s + 1000 <= max(length, 1000) for s in starts)


def test_weights_positive_and_symmetric():
    for n in (1, 2, 7, 1024):
        w = segment_weights(n)
        assert w.shape == (n,) and bool((w > 0).all()) and torch.equal(w, w.flip(0))


def test_segment_sized_fn_sees_fixed_shapes():
    seen = set()

    def fn(w):
        seen.add(tuple(w.shape))
        return w[:, None]

    chunked_apply(fn, torch.randn(1, 2, 2500), 1000, 0.25, batch_size=2)
    assert {s[-1] for s in seen} == {1000}


def test_separator_through_chunker_matches_whole_input(tiny_separator):
    """A causal model: one segment covering the input (zero-padded) equals the model on the input."""
    x = torch.randn(1, 2, 5000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = chunked_apply(tiny_separator, x, 8192, 0.25)
        b = tiny_separator(x)
    assert torch.allclose(a, b, atol=1e-5)


def _reference(fn, wav, segment, overlap, batch_size):
    """The whole-array overlap-add (the implementation before ChunkedStream), kept as the reference."""
    b, _, n = wav.shape
    starts = segment_starts(n, segment, overlap)
    weights = segment_weights(segment)
    out, norm = None, torch.zeros(n, dtype=torch.float64)
    for group in [starts[i:i + batch_size] for i in range(0, len(starts), batch_size)]:
        pieces = [wav[..., s:s + segment] for s in group]
        y = fn(torch.cat([torch.nn.functional.pad(p, (0, segment - p.shape[-1])) for p in pieces], 0))
        if out is None:
            out = torch.zeros(b, *y.shape[1:3], n, dtype=torch.float64)
        for j, s in enumerate(group):
            k = min(segment, n - s)
            out[..., s:s + k] += y[j * b:(j + 1) * b, ..., :k].double() * weights[:k]
            norm[s:s + k] += weights[:k]
    return (out / norm).to(wav.dtype)


def _nonlinear(w):
    """(B, C, L) -> (B, 3, C, L), position dependent: a wrong segment or weight changes the output."""
    ramp = torch.linspace(0.5, 1.5, w.shape[-1])
    return torch.stack([torch.tanh(3 * w) * ramp, w.cumsum(-1) * 1e-2, w.flip(-1)], 1)


@pytest.mark.parametrize("length", [1, 99, 100, 101, 1234])
@pytest.mark.parametrize("segment,overlap", [(100, 0.25), (128, 0.5), (7, 0.0), (100, 0.9)])
@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("chunks", [[10 ** 9], [1] * 40 + [10 ** 9], [17, 300, 5, 1000, 3]])
def test_stream_is_bit_identical_to_the_whole_array_overlap_add(length, segment, overlap, batch_size, chunks):
    x = torch.randn(1, 2, length, generator=torch.Generator().manual_seed(length + segment))
    stream = ChunkedStream(_nonlinear, segment, overlap, batch_size)
    parts, pos = [], 0
    for c in chunks:
        parts.append(stream.feed(x[..., pos:pos + c]))
        pos += c
        if pos >= length:
            break
    if pos < length:
        parts.append(stream.feed(x[..., pos:]))
    y = torch.cat([p for p in [*parts, stream.flush()] if p.shape[1]], -1)
    assert torch.equal(y, _reference(_nonlinear, x, segment, overlap, batch_size))


def test_stream_holds_only_the_overlap_window():
    """Memory does not grow with the input: after any feed at most segment + stride + one piece is held."""
    segment, piece = 1000, 777
    stream = ChunkedStream(_nonlinear, segment, 0.25)
    held = []
    for i in range(200):
        stream.feed(torch.randn(1, 2, piece))
        held.append(stream._in.shape[-1])
        assert stream._out is None or stream._out.shape[-1] <= segment + stream.stride + piece
    assert max(held) <= segment + stream.stride + piece and stream.emitted > 150_000
