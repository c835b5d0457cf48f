"""TFSWA-UNet: a U-Net of TFSWA blocks that maps mixture magnitudes to bounded masks, one per stem.

`forward(features)`: (B, C, T, F) -> masks (B, S, C, T, F) in [0, 1].
`step(features, state, t0)`: the same for T new frames of a causal network, carrying cached state;
`forward` of a causal network is `step` over the whole input from `init_state` at t0 = 0.
`step_hop(features, state, pos)`: K new frames (B, C, K, F) from absolute frame `pos` (a 0-d int64
tensor), with the fixed-size ring-buffer state of `init_hop_state` updated in place: the static per-hop
path a streaming engine runs (and compiles), one hop (K = 1) or K hops per call. It equals `step` frame
by frame.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .attention import HopClock
from .blocks import TFSWABlock
from .config import ModelConfig


class PatchMerge(nn.Module):
    """Downsampling: non-overlapping (st x 2) patches -> LayerNorm -> linear (a conv with kernel = stride)."""

    def __init__(self, dim_in: int, dim_out: int, time_stride: int):
        super().__init__()
        self.st = time_stride
        self.norm = nn.LayerNorm(dim_in * time_stride * 2)
        self.proj = nn.Linear(dim_in * time_stride * 2, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        b, t, f, c = x.shape
        x = x.reshape(b, t // self.st, self.st, f // 2, 2, c).permute(0, 1, 3, 2, 4, 5).flatten(3)
        return self.proj(self.norm(x))


class PatchExpand(nn.Module):
    """Upsampling: linear to (st x 2) patches (a transposed conv with kernel = stride)."""

    def __init__(self, dim_in: int, dim_out: int, time_stride: int):
        super().__init__()
        self.st = time_stride
        self.dim_out = dim_out
        self.proj = nn.Linear(dim_in, dim_out * time_stride * 2)

    def forward(self, x: Tensor) -> Tensor:
        b, t, f, _ = x.shape
        x = self.proj(x).reshape(b, t, f, self.st, 2, self.dim_out).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(b, t * self.st, f * 2, self.dim_out)


class Stage(nn.Module):
    """A run of TFSWA blocks at one resolution; windows shift on every second block."""

    def __init__(self, dim: int, depth: int, cfg: ModelConfig):
        super().__init__()
        heads = dim // cfg.head_dim
        self.blocks = nn.ModuleList(
            TFSWABlock(dim, heads, cfg.mlp_ratio, cfg.tsa_window, cfg.swin_window, shifted=i % 2 == 1,
                       causal=cfg.causal, dropout=cfg.dropout, attn_dropout=cfg.attn_dropout)
            for i in range(depth))

    def forward(self, x: Tensor, state: list[Tensor], t0: int) -> tuple[Tensor, list[Tensor]]:
        out: list[Tensor] = []
        i = 0
        for block in self.blocks:
            x, s = block(x, state[i:i + block.n_state], t0)
            i += block.n_state
            out += s
        return x, out


class TFSWAUNet(nn.Module):
    """Encoder stages (widths, depths) with downsampling, a bottleneck, and a mirrored decoder with skips.

    Causal networks downsample along frequency only and keep every temporal operation causal; the
    offline network also halves time between stages (`time_stride`).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        ca, k, sf = cfg.audio_channels, cfg.stem_kernel, cfg.stem_stride_f
        self.n_stems = len(cfg.stems)
        self.n_freq0 = cfg.n_freq // sf
        levels = len(cfg.widths)
        self.align_f = sf * 2 ** levels
        self.align_t = cfg.time_stride ** levels
        self.stem = nn.Conv2d(ca, cfg.widths[0], (k, k), stride=(1, sf),
                              padding=(0 if cfg.causal else k // 2, k // 2))
        self.freq_embed = nn.Parameter(torch.zeros(1, 1, self._freq_at(0), cfg.widths[0]))
        widths = list(cfg.widths) + [cfg.bottleneck_width]
        self.encoder = nn.ModuleList(Stage(widths[i], cfg.depths[i], cfg) for i in range(levels))
        self.down = nn.ModuleList(PatchMerge(widths[i], widths[i + 1], cfg.time_stride) for i in range(levels))
        self.bottleneck = Stage(cfg.bottleneck_width, cfg.bottleneck_depth, cfg)
        self.up = nn.ModuleList(PatchExpand(widths[i + 1], widths[i], cfg.time_stride) for i in range(levels))
        self.skip = nn.ModuleList(nn.Linear(2 * widths[i], widths[i]) for i in range(levels))
        self.decoder = nn.ModuleList(Stage(widths[i], cfg.decoder_depths[levels - 1 - i], cfg)
                                     for i in range(levels))
        self.head_norm = nn.LayerNorm(widths[0])
        self.head = nn.Linear(widths[0], sf * self.n_stems * ca)
        self.apply(_init_weights)
        nn.init.trunc_normal_(self.freq_embed, std=0.02)

    # geometry ----------------------------------------------------------------------------------
    def _freq_at(self, level: int) -> int:
        padded = -(-self.cfg.n_freq // self.align_f) * self.align_f
        return padded // self.cfg.stem_stride_f // 2 ** level

    @property
    def stem_history(self) -> int:
        return self.cfg.stem_kernel - 1 if self.cfg.causal else 0

    def _stages(self) -> list[tuple[Stage, int]]:
        """Stateful stages in state order, with the frequency size each runs at."""
        levels = len(self.encoder)
        return ([(s, self._freq_at(i)) for i, s in enumerate(self.encoder)] + [(self.bottleneck, self._freq_at(levels))]
                + [(self.decoder[i], self._freq_at(i)) for i in reversed(range(levels))])

    @property
    def receptive_field_frames(self) -> int:
        """Frames of input (current one included) that one output frame depends on; causal networks only."""
        if not self.cfg.causal:
            return math.inf  # type: ignore[return-value]
        blocks = [b for stage, _ in self._stages() for b in stage.blocks]
        return 1 + self.stem_history + sum(b.lookback() for b in blocks)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # state ---------------------------------------------------------------------------------------
    def init_state(self, batch: int = 1, device: torch.device | str | None = None,
                   dtype: torch.dtype = torch.float32) -> list[Tensor]:
        """Zero state of a causal network: the stem's input tail, then each block's cached keys / values."""
        if not self.cfg.causal:
            return []
        shapes = [(batch, self.cfg.audio_channels, self.stem_history, self.cfg.n_freq + self._pad_f())]
        for stage, n_freq in self._stages():
            for block in stage.blocks:
                shapes += block.state_shapes(batch, n_freq)
        return [torch.zeros(s, device=device, dtype=dtype) for s in shapes]

    def init_hop_state(self, batch: int = 1, device: torch.device | str | None = None,
                       dtype: torch.dtype = torch.float32) -> list[Tensor]:
        """Zero state of the per-hop step: the stem's input tail, then each block's key / value ring buffers
        (TSA: W frames, Swin: wt frames). Also (re)builds the per-phase mask tables from the current weights,
        so call it again (or `build_hop_masks`) after the weights change."""
        assert self.cfg.causal, "the per-hop step needs a causal network"
        shapes = [(batch, self.cfg.audio_channels, self.stem_history, self.cfg.n_freq + self._pad_f())]
        for stage, n_freq in self._stages():
            for block in stage.blocks:
                shapes += block.hop_state_shapes(batch, n_freq)
        self.build_hop_masks()
        return [torch.zeros(s, device=device, dtype=dtype) for s in shapes]

    def build_hop_masks(self) -> None:
        """Per-phase attention mask tables of the per-hop step, from the current relative-position biases."""
        for stage, n_freq in self._stages():
            for block in stage.blocks:
                block.build_hop_masks(n_freq)

    def _pad_f(self) -> int:
        return -self.cfg.n_freq % self.align_f

    # forward -------------------------------------------------------------------------------------
    def forward(self, features: Tensor) -> Tensor:
        """(B, C, T, F) -> masks (B, S, C, T, F)."""
        state = self.init_state(features.shape[0], features.device, features.dtype)
        return self.step(features, state, 0)[0]

    def step_hop(self, features: Tensor, state: list[Tensor], pos: Tensor) -> Tensor:
        """K new frames (B, C, K, F), the first at absolute frame index `pos` (0-d int64 tensor) -> masks
        (B, S, C, K, F); `state` (from `init_hop_state`) is updated in place. Same shapes and ops on every hop.
        The K frames share every per-token layer (one batch); the attention rings advance frame by frame
        inside the step, so the result is exactly that of K one-frame steps."""
        return self.step(features, state, HopClock(pos, features.shape[2]))[0]

    def step(self, features: Tensor, state: list[Tensor], t0: int | Tensor | HopClock) -> tuple[Tensor, list[Tensor]]:
        """T new frames (B, C, T, F) starting at absolute frame t0 -> masks (B, S, C, T, F), next state.

        With a `HopClock` (see `step_hop`) the state is the ring-buffer state, updated in place."""
        b, c, n_frames, n_freq = features.shape
        assert c == self.cfg.audio_channels and n_freq == self.cfg.n_freq, (features.shape, self.cfg.n_freq)
        x = nn.functional.pad(features, (0, self._pad_f(), 0, -n_frames % self.align_t))
        new_state: list[Tensor] = []
        if self.cfg.causal:
            seq = torch.cat([state[0], x], 2)
            if isinstance(t0, HopClock):   # shift the stem's input tail in place
                state[0].copy_(seq[:, :, seq.shape[2] - self.stem_history:])
                new_state.append(state[0])
            else:
                new_state.append(seq[:, :, seq.shape[2] - self.stem_history:])
            x = seq
        x = self.stem(x).permute(0, 2, 3, 1) + self.freq_embed                   # (B, T, F0, C0)
        i = 1
        skips = []
        for stage, down in zip(self.encoder, self.down):
            x, s = stage(x, state[i:], t0)
            i += len(s)
            new_state += s
            skips.append(x)
            x = down(x)
        x, s = self.bottleneck(x, state[i:], t0)
        i += len(s)
        new_state += s
        for level in reversed(range(len(self.decoder))):
            x = self.skip[level](torch.cat([self.up[level](x), skips[level]], -1))
            x, s = self.decoder[level](x, state[i:], t0)
            i += len(s)
            new_state += s
        assert i == len(state) or not self.cfg.causal, (i, len(state))
        masks = torch.sigmoid(self.head(self.head_norm(x)))                       # (B, T, F0, sf*S*C)
        ca = self.cfg.audio_channels
        masks = masks.reshape(b, masks.shape[1], -1, self.n_stems, ca).permute(0, 3, 4, 1, 2)
        return masks[:, :, :, :n_frames, :n_freq], new_state


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
