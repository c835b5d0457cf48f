"""Attention primitives: multi-head attention, shifted-window regions, causal local attention.

Shape vocabulary: B batch, T frames, F frequency bins, C channels, h heads, d head width.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PAD_REGION = -(1 << 30)  # region id of padding tokens: never equal to a real region


class MultiHeadAttention(nn.Module):
    """QKV projection, head split / merge, scaled dot-product attention with dropout, output projection.

    The caller arranges tokens into groups; `qkv(x)` splits heads, `attend(q, k, v, mask)` runs the
    attention (additive float mask, -inf = blocked), `merge(o)` joins heads and projects.
    """

    def __init__(self, dim: int, heads: int, attn_dropout: float = 0.0, proj_dropout: float = 0.0):
        super().__init__()
        assert dim % heads == 0, (dim, heads)
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv_proj = nn.Linear(dim, 3 * dim)
        self.out_proj = nn.Linear(dim, dim)
        self.attn_dropout = attn_dropout
        self.scale = self.head_dim ** -0.5
        self.proj_drop = nn.Dropout(proj_dropout) if proj_dropout > 0 else nn.Identity()

    def qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(..., C) -> three (..., h, d)."""
        q, k, v = self.qkv_proj(x).unflatten(-1, (3, self.heads, self.head_dim)).unbind(-3)
        return q, k, v

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        """q (..., Lq, d), k/v (..., Lk, d), mask broadcastable to (..., Lq, Lk) -> (..., Lq, d)."""
        if self.training:
            return self._attend_train(q, k, v, mask)
        # Inference: the same arithmetic in four ops (SDPA's CPU fallback for masked 6-D inputs uses ~10).
        scores = torch.matmul(q * self.scale, k.transpose(-1, -2))
        if mask is not None:
            scores = scores + mask
        return torch.matmul(scores.softmax(-1), v)

    def _attend_train(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        """Training: PyTorch's fused kernels where they apply (CUDA: flash / memory-efficient with
        the additive mask as a bias that receives gradients; CPU: flash without a mask). A masked
        CPU call does the arithmetic itself: SDPA's CPU math path would also scan every row for -inf."""
        if q.is_cuda or mask is None:
            return _fused_attention(q, k, v, mask, self.attn_dropout)
        scores = torch.matmul(q * self.scale, k.transpose(-1, -2)) + mask
        probs = scores.softmax(-1)
        if self.attn_dropout > 0:
            probs = F.dropout(probs, self.attn_dropout)
        return torch.matmul(probs, v)

    def merge(self, o: Tensor) -> Tensor:
        """(..., h, d) -> (..., C), projected."""
        return self.proj_drop(self.out_proj(o.flatten(-2)))


def _fused_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout: float) -> Tensor:
    """SDPA on 4-D views: the fused kernels take (batch, heads, L, d) only. The mask's leading dims
    (aligned to the right of q's batch dims) become the head dim, so it broadcasts over the batch."""
    lead, lq, lk = q.shape[:-2], q.shape[-2], k.shape[-2]
    m = 0 if mask is None else mask.dim() - 2
    heads = math.prod(lead[len(lead) - m:]) if m else 1
    q4, k4, v4 = (t.reshape(-1, heads, t.shape[-2], t.shape[-1]) for t in (q, k, v))
    mask4 = None if mask is None else mask.expand(*lead[len(lead) - m:], lq, lk).reshape(1, heads, lq, lk).to(q4.dtype)
    o = F.scaled_dot_product_attention(q4, k4, v4, attn_mask=mask4, dropout_p=dropout)
    return o.reshape(*lead, lq, v.shape[-1])


def window_regions(length: int, window: int, shift: int, device=None) -> tuple[int, Tensor]:
    """Window partition of one axis with a cyclic shift, as in Swin.

    The axis is padded to a multiple of `window` and rolled by -shift; the returned region ids are in
    that rolled order. Two tokens may attend to each other only when their ids are equal: the id is
    floor((p - shift) / window) in original coordinates, so tokens that the roll wrapped around from
    the start of the axis never mix with tokens from its end, and padding (PAD_REGION) mixes with
    nothing real. Returns (padded length, ids of shape (padded length,)).
    """
    padded = -(-length // window) * window
    pos = torch.arange(padded, device=device)
    ids = torch.div(pos - shift, window, rounding_mode="floor")
    ids = torch.where(pos < length, ids, torch.full_like(ids, PAD_REGION))
    return padded, torch.roll(ids, -shift) if shift else ids


def region_mask(ids: Tensor, window: int) -> Tensor:
    """Rolled region ids (L,) -> (L // window, window, window) bool: may token i attend to token j."""
    w = ids.view(-1, window)
    return w[:, :, None] == w[:, None, :]


def time_blocks(x: Tensor, hist: int, block: int, dim: int) -> Tensor:
    """Key windows for blocked local attention along `dim`.

    `x` holds `hist` past frames followed by the new frames along `dim` (already padded so the new
    frames fill whole blocks). Returns, for each block of `block` new frames, the `hist + block`
    frames that end with it: shape with `dim` replaced by (n_blocks, hist + block).
    """
    n_blocks = (x.shape[dim] - hist) // block
    if n_blocks == 1:  # the per-hop case: the whole sequence is the one window, no copy
        return x.unsqueeze(dim)
    win = x.unfold(dim, hist + block, block)  # (..., n_blocks, ..., window) with window last
    win = win.movedim(-1, dim + 1).contiguous()
    assert win.shape[dim] == n_blocks, (x.shape, hist, block)
    return win


class HopClock:
    """The absolute frame index of the first of the `frames` new frames of a per-hop step, as a 0-d int64
    tensor (never a Python int, so a compiled step sees the same graph on every hop), and what branches
    derive from it: the ring-buffer slot a period-`p` cache writes a frame to (pos mod p), and the row of a
    per-phase mask table (pos while the cache is still filling, i.e. pos < p - 1; then p - 1 + pos mod p).
    A step of K frames (`frames` = K) advances the rings frame by frame: `frame(j)` is the clock of its
    frame j (pos + j), so K frames do exactly what K one-frame steps do."""

    def __init__(self, pos: Tensor, frames: int = 1):
        assert pos.dim() == 0 and not pos.is_floating_point(), f"expected a 0-d integer position, got {pos}"
        assert frames >= 1, frames
        self.pos = pos
        self.frames = frames
        self._derived: dict[tuple[str, int], Tensor] = {}
        self._frames: dict[int, HopClock] = {0: self}

    def frame(self, j: int) -> HopClock:
        """The one-frame clock of new frame j (0 <= j < frames): position pos + j."""
        assert 0 <= j < self.frames, (j, self.frames)
        if j not in self._frames:
            self._frames[j] = HopClock(self.pos + j)
        return self._frames[j]

    def slot(self, period: int) -> Tensor:
        """(1,) int64: ring slot of the (first) new frame in a cache of `period` frames."""
        key = ("slot", period)
        if key not in self._derived:
            self._derived[key] = torch.remainder(self.pos, period).reshape(1)
        return self._derived[key]

    def phase(self, period: int) -> Tensor:
        """(1,) int64: row of a (2 * period - 1)-row mask table (see `hop_positions`) for the (first) new frame."""
        key = ("phase", period)
        if key not in self._derived:
            warm = self.pos < period - 1
            self._derived[key] = torch.where(warm, self.pos, period - 1 + torch.remainder(self.pos, period)).reshape(1)
        return self._derived[key]


def hop_positions(period: int, device=None) -> tuple[Tensor, Tensor]:
    """For each row of a per-phase mask table (see `HopClock.phase`): a representative query frame
    (2p-1,) and the absolute frame held by each ring slot (2p-1, p), negative = not yet written."""
    rows = torch.arange(2 * period - 1, device=device)
    pos = torch.where(rows < period - 1, rows, rows + 1)        # rows >= p-1 stand for pos = p + (pos mod p)
    slots = torch.arange(period, device=device)
    lag = torch.remainder(pos[:, None] - slots[None, :], period)  # (2p-1, p): how old each slot's frame is
    return pos, pos[:, None] - lag


def block_positions(t0: int, n_blocks: int, block: int, hist: int, device=None) -> tuple[Tensor, Tensor]:
    """Absolute frame indices of queries (n_blocks, block) and keys (n_blocks, hist + block)."""
    start = t0 + block * torch.arange(n_blocks, device=device)[:, None]
    q = start + torch.arange(block, device=device)
    k = start - hist + torch.arange(hist + block, device=device)
    return q, k
