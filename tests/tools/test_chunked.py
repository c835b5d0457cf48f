"""Chunked overlap-add: an identity network returns its input bit for bit; coverage and weights."""
from __future__ import annotations

import pytest
import torch

from tools.chunked import chunked_apply, segment_starts, segment_weights


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
