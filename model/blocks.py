"""TFSWA building blocks: TSA, FSA and SW-MSA branches run in parallel and fused by a 1x1 projection.

Tokens are channels-last: x is (B, T, F, C). Every branch is a pre-norm transformer layer
(LayerNorm -> attention -> residual, LayerNorm -> MLP -> residual).

Causal branches take `(x, state, t0)`: x holds T new frames whose first absolute frame index is t0,
`state` the cached keys / values of the frames before them. The offline forward of a causal
network is the same call with an all-zero state and t0 = 0.

The per-hop streaming step passes a `HopClock` instead of an int t0: K new frames (one hop, or K hops
per call), a state of fixed-size ring buffers (TSA: the last W frames' keys / values, Swin: the last wt)
updated in place frame by frame at slot pos mod period, and attention masks read from per-phase tables
(`build_hop_masks`) by a tensor index. Same modules, same weights; its shapes and control flow never
change from hop to hop, so it compiles to one static graph.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .attention import (
    HopClock,
    MultiHeadAttention,
    block_positions,
    hop_positions,
    region_mask,
    time_blocks,
    window_regions,
)

NEG_INF = float("-inf")


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


class Branch(nn.Module):
    """Pre-norm attention + MLP layer; subclasses define `mix` (the attention over some token groups)."""

    n_state = 0

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float, attn_dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads, attn_dropout, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, round(dim * mlp_ratio), dropout)

    def forward(self, x: Tensor, state: list[Tensor], t0: int | Tensor | HopClock) -> tuple[Tensor, list[Tensor]]:
        y, state = self.mix(self.norm1(x), state, t0)
        x = x + y
        return x + self.mlp(self.norm2(x)), state

    def mix(self, x: Tensor, state: list[Tensor], t0: int | Tensor | HopClock) -> tuple[Tensor, list[Tensor]]:
        """Attention over x (B, T, F, C) -> (B, T, F, C), next state. With a HopClock: K new frames against
        the ring-buffer state, which is updated in place (frame by frame) and returned."""
        raise NotImplementedError

    def state_shapes(self, batch: int, n_freq: int) -> list[tuple[int, ...]]:
        return []

    def hop_state_shapes(self, batch: int, n_freq: int) -> list[tuple[int, ...]]:
        return []

    def build_hop_masks(self, n_freq: int) -> None:
        """(Re)build the per-phase additive mask table of the per-hop step from the current weights."""

    def _store_hop_masks(self, table: Tensor) -> None:
        # In place when the shape allows, so a compiled or graph-captured step keeps reading the same tensor.
        table = table.detach().to(self.rel_bias.dtype)
        if self.hop_masks.shape == table.shape:
            self.hop_masks.copy_(table)
        else:
            self.hop_masks = table

    def _hop_frame(self, clock: HopClock, j: int, period: int, state: list[Tensor], k: Tensor, v: Tensor) -> Tensor:
        """Frame j of a per-hop step: its keys / values (index j of dim 3 of k, v) into its ring slot
        (pos + j) mod `period` of state[0], state[1], in place; returns its phase's mask from the hop_masks table."""
        c = clock.frame(j)
        slot = c.slot(period)
        state[0].index_copy_(3, slot, k[:, :, :, j:j + 1])
        state[1].index_copy_(3, slot, v[:, :, :, j:j + 1])
        return self.hop_masks.index_select(0, c.phase(period))[0]


def _roll_history(hist: Tensor, new: Tensor, keep: int, dim: int) -> tuple[Tensor, Tensor]:
    """Concatenate cached and new frames along `dim`; also return the last `keep` frames (the next cache)."""
    seq = torch.cat([hist, new], dim)
    return seq, seq.narrow(dim, seq.shape[dim] - keep, keep)


def _pad_frames(x: Tensor, n: int, dim: int) -> Tensor:
    if n == 0:
        return x
    shape = list(x.shape)
    shape[dim] = n
    return torch.cat([x, x.new_zeros(shape)], dim)


def _finish(bias: Tensor, idx: Tensor, blocked: Tensor, expand: bool = False) -> Tensor:
    """Additive mask: learned bias gathered at `idx`, -inf where `blocked`."""
    gathered = bias[:, idx]
    return (gathered[None] if expand else gathered).masked_fill(blocked, NEG_INF)


def _from_start(t0: int | Tensor, n_frames: int) -> bool:
    """True for the multi-frame call at t0 = 0 that the offline forward of a causal network makes.

    There every key before frame 0 is masked, so the cached state cannot change the output and the
    frames can be laid out in whole windows with one mask shared by all of them (no history copies)."""
    return not isinstance(t0, Tensor) and t0 == 0 and n_frames > 1


def _tail(state: Tensor, new: Tensor, keep: int, dim: int) -> Tensor:
    """The last `keep` frames of cat(state, new) along `dim` (the next cache), copying only those."""
    n = new.shape[dim]
    if n >= keep:
        return new.narrow(dim, n - keep, keep)
    return torch.cat([state.narrow(dim, n, keep - n), new], dim)


class _Geometry:
    """Index and mask tensors of one layout, built once per (geometry, device) and reused every step.

    They hold no parameters: the learned bias is gathered from them on every call, so gradients reach
    it as usual (and under torch.compile the cache is bypassed: the tensors become constants)."""

    bypass_when_compiling = True

    def __init__(self, limit: int = 16):
        self.limit = limit
        self.items: dict[tuple, tuple[Tensor, ...]] = {}

    def get(self, key: tuple, make) -> tuple[Tensor, ...] | Tensor:
        if self.bypass_when_compiling and torch.compiler.is_compiling():
            return make()
        hit = self.items.get(key)
        if hit is None:
            hit = make()
            if len(self.items) >= self.limit:
                self.items.pop(next(iter(self.items)))
            self.items[key] = hit
        return hit


class _MaskCache(_Geometry):
    """Attention masks memoised for inference, keyed by geometry, device and the bias parameter's
    version (an optimiser step or a weight load changes it, so stale masks are never reused)."""

    bypass_when_compiling = False


class TemporalAttention(Branch):
    """TSA: attention along time, each frequency bin independently.

    Offline: every frame sees the whole segment. Causal: frame t sees frames t-W+1 .. t (W =
    `window`), with a learned bias per head and lag; the state holds the last W-1 keys and values.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float, window: int | None, causal: bool,
                 dropout: float = 0.0, attn_dropout: float = 0.0):
        super().__init__(dim, heads, mlp_ratio, dropout, attn_dropout)
        self.causal = causal
        self.window = window
        if causal:
            assert window is not None and window >= 1, window
            self.n_state = 2
            self.rel_bias = nn.Parameter(torch.zeros(heads, window))
            nn.init.trunc_normal_(self.rel_bias, std=0.02)
            self._masks = _MaskCache(limit=64)
            self.register_buffer("hop_masks", torch.zeros(0), persistent=False)
            self._geometry = _Geometry()

    def state_shapes(self, batch: int, n_freq: int) -> list[tuple[int, ...]]:
        if not self.causal:
            return []
        shape = (batch, n_freq, self.attn.heads, self.window - 1, self.attn.head_dim)
        return [shape, shape]

    def hop_state_shapes(self, batch: int, n_freq: int) -> list[tuple[int, ...]]:
        if not self.causal:
            return []
        shape = (batch, n_freq, self.attn.heads, self.window, self.attn.head_dim)   # ring of W frames
        return [shape, shape]

    def build_hop_masks(self, n_freq: int) -> None:
        """Table (2W-1, h, 1, W): per phase, the bias of each ring slot's lag, -inf for unwritten slots."""
        if not self.causal:
            return
        with torch.no_grad():
            pos, kframe = hop_positions(self.window, self.rel_bias.device)
            lag = pos[:, None] - kframe                                           # (2W-1, W) in [0, W)
            table = self.rel_bias[:, lag].permute(1, 0, 2).masked_fill((kframe < 0)[:, None], NEG_INF)
            self._store_hop_masks(table[:, :, None, :])

    def _hop(self, x: Tensor, state: list[Tensor], clock: HopClock) -> tuple[Tensor, list[Tensor]]:
        """x (B, K, F, C): K new frames; each writes its keys / values to its ring slot and then attends to
        the ring through its phase's mask, in order, as K one-frame steps would."""
        q, k, v = (t.permute(0, 2, 3, 1, 4) for t in self.attn.qkv(x))  # (B, F, h, K, d)
        outs = []
        for j in range(clock.frames):
            mask = self._hop_frame(clock, j, self.window, state, k, v)  # (h, 1, W)
            outs.append(self.attn.attend(q[:, :, :, j:j + 1], state[0], state[1], mask))   # (B, F, h, 1, d)
        o = outs[0] if len(outs) == 1 else torch.cat(outs, 3)
        return self.attn.merge(o.permute(0, 3, 1, 2, 4)), state

    def mix(self, x: Tensor, state: list[Tensor], t0: int | Tensor | HopClock) -> tuple[Tensor, list[Tensor]]:
        if isinstance(t0, HopClock):
            return self._hop(x, state, t0)
        n_frames = x.shape[1]
        q, k, v = (t.permute(0, 2, 3, 1, 4) for t in self.attn.qkv(x))  # (B, F, h, T, d)
        if not self.causal:
            o = self.attn.attend(q, k, v)
            return self.attn.merge(o.permute(0, 3, 1, 2, 4)), []
        if _from_start(t0, n_frames):
            return self._mix_from_start(q, k, v, state)
        hist = self.window - 1
        block = min(n_frames, self.window)
        n_blocks = -(-n_frames // block)
        pad = n_blocks * block - n_frames
        ks, k_next = _roll_history(state[0], k, hist, 3)
        vs, v_next = _roll_history(state[1], v, hist, 3)
        qb = _pad_frames(q, pad, 3).unflatten(3, (n_blocks, block))           # (B, F, h, nb, b, d)
        kb = time_blocks(_pad_frames(ks, pad, 3), hist, block, 3)               # (B, F, h, nb, H+b, d)
        vb = time_blocks(_pad_frames(vs, pad, 3), hist, block, 3)
        o = self.attn.attend(qb, kb, vb, self._mask(t0, n_blocks, block, x.device))
        o = o.flatten(3, 4)[:, :, :, :n_frames]                                 # (B, F, h, T, d)
        return self.attn.merge(o.permute(0, 3, 1, 2, 4)), [k_next, v_next]

    def _mix_from_start(self, q: Tensor, k: Tensor, v: Tensor, state: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """All frames from t0 = 0 (q, k, v (B, F, h, T, d)): blocks of W queries see their own block and
        the block before it (2W keys, concatenated views instead of an unfold copy)."""
        n_frames, w = q.shape[3], self.window
        n_blocks = -(-n_frames // w)
        pad = n_blocks * w - n_frames
        qb = _pad_frames(q, pad, 3).unflatten(3, (n_blocks, w))                   # (B, F, h, nb, W, d)

        def keys(t: Tensor) -> Tensor:                                            # (B, F, h, nb, 2W, d)
            cur = _pad_frames(t, pad, 3).unflatten(3, (n_blocks, w))
            prev = F.pad(cur[:, :, :, :-1], (0, 0, 0, 0, 1, 0))
            return torch.cat([prev, cur], 4)

        lag, blocked = self._geometry.get((n_blocks, str(q.device)), lambda: self._from_start_geometry(n_blocks, q.device))
        mask = self.rel_bias[:, lag].masked_fill(blocked, NEG_INF)               # (h, nb, W, 2W)
        o = self.attn.attend(qb, keys(k), keys(v), mask).flatten(3, 4)[:, :, :, :n_frames]
        hist = w - 1
        return self.attn.merge(o.permute(0, 3, 1, 2, 4)), [_tail(state[0], k, hist, 3), _tail(state[1], v, hist, 3)]

    def _from_start_geometry(self, n_blocks: int, device) -> tuple[Tensor, Tensor]:
        """Bias index (1, W, 2W) by lag and blocked (nb, W, 2W): lag in [0, W), no keys before frame 0."""
        w = self.window
        i = torch.arange(w, device=device)[:, None]
        j = torch.arange(2 * w, device=device)[None, :]
        lag = w + i - j
        ok = (lag >= 0) & (lag < w)
        first = torch.arange(n_blocks, device=device)[:, None, None] == 0
        blocked = ~ok | (first & (j < w))
        return lag.clamp(0, w - 1)[None], blocked

    def _mask(self, t0: int, n_blocks: int, block: int, device) -> Tensor:
        """Additive mask (h, nb, b, H+b): lag in [0, W), keys before the first frame blocked."""
        hist = self.window - 1

        def make() -> tuple[Tensor, Tensor]:
            qpos, kpos = block_positions(t0, n_blocks, block, hist, device)
            lag = qpos[:, :, None] - kpos[:, None, :]
            ok = (lag >= 0) & (lag < self.window) & ((kpos[:, None, :] >= 0) | (lag == 0))
            return lag.clamp(0, self.window - 1), ~ok

        if self.training or torch.is_grad_enabled() or isinstance(t0, Tensor):
            # t0 as a 0-d Tensor (traced / exported step): masks from tensor arithmetic, never memoised.
            lag, blocked = make()
            return self.rel_bias[:, lag].masked_fill(blocked, NEG_INF)
        key = (min(t0, hist), n_blocks, block, str(device), self.rel_bias._version, self.rel_bias.data_ptr())
        return self._masks.get(key, lambda: _finish(self.rel_bias, *make()))


class FrequencyAttention(Branch):
    """FSA: attention along frequency, each frame independently (no state: it never looks across time)."""

    def mix(self, x: Tensor, state: list[Tensor], t0: int) -> tuple[Tensor, list[Tensor]]:
        q, k, v = (t.transpose(2, 3) for t in self.attn.qkv(x))  # (B, T, h, F, d)
        o = self.attn.attend(q, k, v)
        return self.attn.merge(o.transpose(2, 3)), []


class WindowAttention(Branch):
    """SW-MSA: attention inside local (frames x bins) windows, shifted by half a window on alternate blocks.

    Frequency: Swin's cyclic shift with a region mask (see `attention.window_regions`), padding
    masked. Time, offline: the same cyclic shift and mask. Time, causal: windows are aligned to the
    absolute frame index, shifted by zero padding (window id = floor((t + shift) / wt)), never
    rolled, and a frame sees only itself and earlier frames of its window; the state holds the
    last wt-1 frames of keys and values.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float, window: tuple[int, int], shifted: bool,
                 causal: bool, dropout: float = 0.0, attn_dropout: float = 0.0):
        super().__init__(dim, heads, mlp_ratio, dropout, attn_dropout)
        self.causal = causal
        self.wt, self.wf = window
        self.st, self.sf = (self.wt // 2, self.wf // 2) if shifted else (0, 0)
        lags = self.wt if causal else 2 * self.wt - 1
        self.rel_bias = nn.Parameter(torch.zeros(heads, lags * (2 * self.wf - 1)))
        nn.init.trunc_normal_(self.rel_bias, std=0.02)
        self._masks = _MaskCache(limit=64)
        self._geometry = _Geometry()
        self._regions: dict[tuple, tuple[int, Tensor]] = {}
        if causal:
            self.n_state = 2
            self.register_buffer("hop_masks", torch.zeros(0), persistent=False)

    def _window_regions(self, length: int, window: int, shift: int, device) -> tuple[int, Tensor]:
        key = (length, window, shift, str(device))
        if key not in self._regions:
            self._regions[key] = window_regions(length, window, shift, device)
        return self._regions[key]

    def state_shapes(self, batch: int, n_freq: int) -> list[tuple[int, ...]]:
        if not self.causal:
            return []
        padded = -(-n_freq // self.wf) * self.wf
        shape = (batch, padded // self.wf, self.attn.heads, self.wt - 1, self.wf, self.attn.head_dim)
        return [shape, shape]

    def hop_state_shapes(self, batch: int, n_freq: int) -> list[tuple[int, ...]]:
        if not self.causal:
            return []
        padded = -(-n_freq // self.wf) * self.wf
        shape = (batch, padded // self.wf, self.attn.heads, self.wt, self.wf, self.attn.head_dim)  # ring of wt frames
        return [shape, shape]

    def build_hop_masks(self, n_freq: int) -> None:
        """Table (2wt-1, nFw, h, wf, wt*wf): per phase, the bias of each (ring slot, bin) key for each bin
        of the new frame; -inf for unwritten slots, frames of another (shifted) time window, and keys
        of another frequency region."""
        if not self.causal:
            return
        with torch.no_grad():
            device = self.rel_bias.device
            _, f_ids = self._window_regions(n_freq, self.wf, self.sf, device)
            pos, kframe = hop_positions(self.wt, device)                         # (R,), (R, wt)
            lag = pos[:, None] - kframe
            same = torch.div(kframe + self.st, self.wt, rounding_mode="floor") == \
                torch.div(pos[:, None] + self.st, self.wt, rounding_mode="floor")
            t_ok = same & (kframe >= 0)                                           # (R, wt)
            f_ok = region_mask(f_ids, self.wf)                                    # (nFw, wf, wf)
            ok = t_ok[:, None, None, :, None] & f_ok[None, :, :, None, :]        # (R, nFw, wf, wt, wf)
            bias = self.rel_bias[:, self._bias_index(lag[:, None, :])]            # (h, R, wf, wt*wf)
            table = bias.permute(1, 0, 2, 3)[:, None].masked_fill(~ok.flatten(3, 4)[:, :, None], NEG_INF)
            self._store_hop_masks(table)

    def mix(self, x: Tensor, state: list[Tensor], t0: int | HopClock) -> tuple[Tensor, list[Tensor]]:
        n_freq = x.shape[2]
        f_pad, f_ids = self._window_regions(n_freq, self.wf, self.sf, x.device)
        x = _pad_frames(x, f_pad - n_freq, 2)
        if self.sf:
            x = torch.roll(x, -self.sf, 2)
        if isinstance(t0, HopClock):
            o, state = self._hop(x, state, t0)
        elif self.causal and _from_start(t0, x.shape[1]):
            o, state = self._causal_from_start(x, state, f_ids, n_freq)
        elif self.causal:
            o, state = self._causal(x, state, t0, f_ids)
        else:
            o = self._offline(x, f_ids)
        if self.sf:
            o = torch.roll(o, self.sf, 2)
        return self.attn.merge(o[:, :, :n_freq]), state

    def _hop(self, x: Tensor, state: list[Tensor], clock: HopClock) -> tuple[Tensor, list[Tensor]]:
        """x (B, K, Fp, C) rolled and padded -> (B, K, Fp, h, d); each new frame's keys / values go to ring slot
        (pos + j) mod wt and its queries attend to the whole ring through its phase's mask, frame by frame."""
        batch, n_frames, f_pad, _ = x.shape
        n_fw, wf = f_pad // self.wf, self.wf
        q, k, v = (t.unflatten(2, (n_fw, wf)).permute(0, 2, 4, 1, 3, 5) for t in self.attn.qkv(x))
        # q, k, v: (B, nFw, h, K, wf, d); state: (B, nFw, h, wt, wf, d)
        outs = []
        for j in range(clock.frames):
            mask = self._hop_frame(clock, j, self.wt, state, k, v)        # (nFw, h, wf, wt*wf)
            outs.append(self.attn.attend(q[:, :, :, j], state[0].flatten(3, 4), state[1].flatten(3, 4), mask))
        o = torch.stack(outs, 3)                                              # (B, nFw, h, K, wf, d)
        o = o.permute(0, 3, 1, 4, 2, 5).reshape(batch, n_frames, f_pad, self.attn.heads, self.attn.head_dim)
        return o, state

    def _bias_index(self, lag: Tensor) -> Tensor:
        """Flat bias-table index for time-table indices `lag` (..., Lq_t, Lk_t) -> (..., Lq_t*wf, Lk_t*wf)."""
        wf = self.wf
        df = torch.arange(wf, device=lag.device)
        df = df[:, None] - df[None, :] + wf - 1                                   # (wf, wf)
        idx = lag[..., :, None, :, None] * (2 * wf - 1) + df[:, None, :]         # (..., Lq, wf, Lk, wf)
        return idx.flatten(-4, -3).flatten(-2, -1)

    def _causal(self, x: Tensor, state: list[Tensor], t0: int, f_ids: Tensor) -> tuple[Tensor, list[Tensor]]:
        batch, n_frames, f_pad, _ = x.shape
        n_fw, wf, hist = f_pad // self.wf, self.wf, self.wt - 1
        q, k, v = (t.unflatten(2, (n_fw, wf)).permute(0, 2, 4, 1, 3, 5) for t in self.attn.qkv(x))
        # q, k, v: (B, nFw, h, T, wf, d)
        block = min(n_frames, self.wt)
        n_blocks = -(-n_frames // block)
        pad = n_blocks * block - n_frames
        ks, k_next = _roll_history(state[0], k, hist, 3)
        vs, v_next = _roll_history(state[1], v, hist, 3)
        qb = _pad_frames(q, pad, 3).unflatten(3, (n_blocks, block)).flatten(4, 5)     # (B,nFw,h,nb,b*wf,d)
        kb = time_blocks(_pad_frames(ks, pad, 3), hist, block, 3).flatten(4, 5)       # (B,nFw,h,nb,(H+b)*wf,d)
        vb = time_blocks(_pad_frames(vs, pad, 3), hist, block, 3).flatten(4, 5)
        o = self.attn.attend(qb, kb, vb, self._causal_mask(t0, n_blocks, block, f_ids))
        o = o.unflatten(4, (block, wf)).flatten(3, 4)[:, :, :, :n_frames]            # (B,nFw,h,T,wf,d)
        o = o.permute(0, 3, 1, 4, 2, 5).reshape(batch, n_frames, f_pad, self.attn.heads, self.attn.head_dim)
        return o, [k_next, v_next]

    def _causal_from_start(self, x: Tensor, state: list[Tensor], f_ids: Tensor, n_freq: int) -> tuple[Tensor, list[Tensor]]:
        """All frames from t0 = 0, x (B, T, F', C) (F' = n_freq padded) -> (B, T, F', h, d), next state.

        Causal windows are aligned to the absolute frame: window id floor((t + st) / wt). Frames are
        laid out in whole windows: the first (partial, when shifted) window's wt - st frames come
        first and zero frames fill it up *after* them, so every padding key is in the future of every
        real query and the causal mask hides it. All windows then share one (nFw, h, L, L) mask,
        L = wt * wf: no history keys, no per-block masks."""
        batch, n_frames, f_pad, _ = x.shape
        wt, wf, heads = self.wt, self.wf, self.attn.heads
        n_fw = f_pad // wf
        head = min(n_frames, wt - self.st) if self.st else 0                     # frames of the first window
        rest = n_frames - head
        parts = [x[:, :head], x.new_zeros(batch, wt - head, f_pad, x.shape[3])] if self.st else []
        parts += [x[:, head:], x.new_zeros(batch, -rest % wt, f_pad, x.shape[3])]
        xw = torch.cat(parts, 1)
        n_tw = xw.shape[1] // wt
        qkv = self.attn.qkv(xw)                                                   # three (B, Tw, F', h, d)
        q, k, v = (t.reshape(batch, n_tw, wt, n_fw, wf, heads, -1).permute(0, 1, 3, 5, 2, 4, 6).flatten(4, 5)
                   for t in qkv)                                                  # (B, nTw, nFw, h, L, d)
        idx, blocked = self._geometry.get((n_freq, str(f_ids.device)), lambda: self._from_start_geometry(f_ids))
        mask = self.rel_bias[:, idx][None].masked_fill(blocked, NEG_INF)          # (nFw, h, L, L)
        o = self.attn.attend(q, k, v, mask).unflatten(4, (wt, wf)).permute(0, 1, 4, 2, 5, 3, 6)
        o = o.reshape(batch, n_tw * wt, f_pad, heads, -1)
        off = wt if self.st else 0                                                # where frame `head` landed
        o = torch.cat([o[:, :head], o[:, off:off + rest]], 1) if head else o[:, :rest]
        return o, [self._state_tail(state[0], qkv[1], head, off, rest), self._state_tail(state[1], qkv[2], head, off, rest)]

    def _state_tail(self, cached: Tensor, t: Tensor, head: int, off: int, rest: int) -> Tensor:
        """Next cache (B, nFw, h, wt-1, wf, d) from keys / values (B, Tw, F', h, d) in window layout."""
        keep = self.wt - 1
        if rest >= keep:
            real = t[:, off + rest - keep:off + rest]
        else:
            real = torch.cat([t[:, :head], t[:, off:off + rest]], 1)
        real = real.unflatten(2, (-1, self.wf)).permute(0, 2, 4, 1, 3, 5)           # (B, nFw, h, n, wf, d)
        return _tail(cached, real, keep, 3)

    def _from_start_geometry(self, f_ids: Tensor) -> tuple[Tensor, Tensor]:
        """Bias index (L, L) and blocked (nFw, 1, L, L) of a window in the from-start layout."""
        t = torch.arange(self.wt, device=f_ids.device)
        lag = t[:, None] - t[None, :]
        idx = self._bias_index(lag.clamp(0, self.wt - 1))                         # (L, L)
        t_ok = lag >= 0
        f_ok = region_mask(f_ids, self.wf)                                        # (nFw, wf, wf)
        ok = t_ok[None, :, None, :, None] & f_ok[:, None, :, None, :]
        return idx, ~ok.flatten(3, 4).flatten(1, 2)[:, None]

    def _causal_mask(self, t0: int, n_blocks: int, block: int, f_ids: Tensor) -> Tensor:
        """Additive mask (nFw, h, nb, b*wf, (H+b)*wf)."""
        hist, wt = self.wt - 1, self.wt

        def make() -> tuple[Tensor, Tensor]:
            qpos, kpos = block_positions(t0, n_blocks, block, hist, f_ids.device)
            qp, kp = qpos[:, :, None], kpos[:, None, :]
            lag = qp - kp
            same = torch.div(qp + self.st, wt, rounding_mode="floor") == torch.div(kp + self.st, wt, rounding_mode="floor")
            t_ok = same & (lag >= 0) & ((kp >= 0) | (lag == 0))                    # (nb, b, H+b)
            f_ok = region_mask(f_ids, self.wf)                                        # (nFw, wf, wf)
            ok = t_ok[None, :, :, None, :, None] & f_ok[:, None, None, :, None, :]
            ok = ok.flatten(4, 5).flatten(2, 3)                                       # (nFw, nb, b*wf, (H+b)*wf)
            return self._bias_index(lag.clamp(0, wt - 1)), ~ok[:, None]

        if self.training or torch.is_grad_enabled() or isinstance(t0, Tensor):
            idx, blocked = make()
            return self.rel_bias[:, idx][None].masked_fill(blocked, NEG_INF)
        phase = t0 % wt if t0 >= hist else t0 - wt * (1 << 20)  # masks repeat with period wt once warm
        key = (phase, n_blocks, block, f_ids.shape[0], str(f_ids.device), self.rel_bias._version,
               self.rel_bias.data_ptr())
        return self._masks.get(key, lambda: _finish(self.rel_bias, *make(), expand=True))

    def _offline(self, x: Tensor, f_ids: Tensor) -> Tensor:
        batch, n_frames, f_pad, _ = x.shape
        t_pad, t_ids = self._window_regions(n_frames, self.wt, self.st, x.device)
        x = _pad_frames(x, t_pad - n_frames, 1)
        if self.st:
            x = torch.roll(x, -self.st, 1)
        n_tw, n_fw, wt, wf = t_pad // self.wt, f_pad // self.wf, self.wt, self.wf
        q, k, v = (t.reshape(batch, n_tw, wt, n_fw, wf, self.attn.heads, -1).permute(0, 1, 3, 5, 2, 4, 6)
                   .flatten(4, 5) for t in self.attn.qkv(x))                         # (B,nTw,nFw,h,wt*wf,d)
        o = self.attn.attend(q, k, v, self._offline_mask(t_ids, f_ids))
        o = o.unflatten(4, (wt, wf)).permute(0, 1, 4, 2, 5, 3, 6).reshape(batch, t_pad, f_pad, self.attn.heads, -1)
        if self.st:
            o = torch.roll(o, self.st, 1)
        return o[:, :n_frames]

    def _offline_mask(self, t_ids: Tensor, f_ids: Tensor) -> Tensor:
        """Additive mask (nTw, nFw, h, wt*wf, wt*wf), or just the bias where no window is split."""

        def make() -> tuple[Tensor, Tensor]:
            t = torch.arange(self.wt, device=t_ids.device)
            idx = self._bias_index(t[:, None] - t[None, :] + self.wt - 1)
            t_ok = region_mask(t_ids, self.wt)                                        # (nTw, wt, wt)
            f_ok = region_mask(f_ids, self.wf)                                        # (nFw, wf, wf)
            ok = t_ok[:, None, :, None, :, None] & f_ok[None, :, None, :, None, :]
            return idx, ~ok.flatten(4, 5).flatten(2, 3)[:, :, None]

        idx, blocked = make()
        bias = self.rel_bias[:, idx]
        return bias.masked_fill(blocked, NEG_INF) if bool(blocked.any()) else bias


class TFSWABlock(nn.Module):
    """Input projection -> TSA | FSA | SW-MSA in parallel -> concat -> 1x1 fusion -> residual.

    `forward(x, state, t0)`: x (B, T, F, C) -> (B, T, F, C), next state.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float, tsa_window: int | None,
                 swin_window: tuple[int, int], shifted: bool, causal: bool,
                 dropout: float = 0.0, attn_dropout: float = 0.0):
        super().__init__()
        self.proj_in = nn.Linear(dim, dim)
        self.tsa = TemporalAttention(dim, heads, mlp_ratio, tsa_window, causal, dropout, attn_dropout)
        self.fsa = FrequencyAttention(dim, heads, mlp_ratio, dropout, attn_dropout)
        self.swa = WindowAttention(dim, heads, mlp_ratio, swin_window, shifted, causal, dropout, attn_dropout)
        self.fuse = nn.Linear(3 * dim, dim)
        self.n_state = self.tsa.n_state + self.swa.n_state

    def state_shapes(self, batch: int, n_freq: int) -> list[tuple[int, ...]]:
        return self.tsa.state_shapes(batch, n_freq) + self.swa.state_shapes(batch, n_freq)

    def hop_state_shapes(self, batch: int, n_freq: int) -> list[tuple[int, ...]]:
        return self.tsa.hop_state_shapes(batch, n_freq) + self.swa.hop_state_shapes(batch, n_freq)

    def build_hop_masks(self, n_freq: int) -> None:
        self.tsa.build_hop_masks(n_freq)
        self.swa.build_hop_masks(n_freq)

    def lookback(self) -> int:
        """Past frames one block adds to the receptive field."""
        if not self.tsa.causal:
            return 0
        return max(self.tsa.window - 1, self.swa.wt - 1)

    def forward(self, x: Tensor, state: list[Tensor], t0: int | Tensor | HopClock) -> tuple[Tensor, list[Tensor]]:
        n = self.tsa.n_state
        h = self.proj_in(x)
        a, s_tsa = self.tsa(h, state[:n], t0)
        b, _ = self.fsa(h, [], t0)
        c, s_swa = self.swa(h, state[n:], t0)
        return x + self.fuse(torch.cat([a, b, c], -1)), s_tsa + s_swa
