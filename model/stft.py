"""STFT / iSTFT front end on `torch.stft` / `torch.istft`.

Two framings:

* offline (`causal=False`): the usual centred frames with reflect padding.
* causal (`causal=True`): frame m covers input samples [(m+1)*hop - n_fft, (m+1)*hop), i.e. it ends
  on a hop boundary and holds nothing from the future. It is computed with `center=True` on the
  input left-padded by n_fft/2 - hop zeros, so a streaming engine that frames the last n_fft samples
  every hop reproduces it exactly, and every output sample is normalised by the steady-state
  window-square envelope (which the engine can precompute).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def make_window(kind: str, n_fft: int) -> Tensor:
    """Periodic analysis/synthesis window of length n_fft."""
    if kind == "hann":
        return torch.hann_window(n_fft, periodic=True)
    if kind == "sqrt_hann":
        return torch.hann_window(n_fft, periodic=True).sqrt()
    if kind == "hamming":
        return torch.hamming_window(n_fft, periodic=True)
    raise ValueError(f"unknown window {kind!r}")


class STFT(nn.Module):
    """Complex STFT of multichannel audio and its inverse.

    `forward(wav)`: (..., N) float -> (..., T, F) complex with F = n_fft // 2 + 1.
    `inverse(spec, length)`: (..., T, F) complex -> (..., length) float.
    """

    def __init__(self, n_fft: int, hop_length: int, window: str = "hann", causal: bool = False):
        super().__init__()
        assert hop_length <= n_fft // 2 or not causal, (n_fft, hop_length)
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.causal = causal
        self.register_buffer("window", make_window(window, n_fft), persistent=False)

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def left_pad(self) -> int:
        """Zeros put before the signal so that `center=True` frames end on hop boundaries (causal)."""
        return self.n_fft // 2 - self.hop_length if self.causal else 0

    def n_frames(self, length: int) -> int:
        """Frames produced for a signal of `length` samples."""
        if self.causal:
            return (self.left_pad + length + self._right_pad(length)) // self.hop_length + 1
        return length // self.hop_length + 1

    def _right_pad(self, length: int) -> int:
        # Enough zeros that every frame touching sample length-1 exists, rounded up to whole hops.
        need = self.n_fft // 2 + self.hop_length
        total = self.left_pad + length + need
        return need + (-total) % self.hop_length

    def forward(self, wav: Tensor) -> Tensor:
        shape = wav.shape
        x = wav.reshape(-1, shape[-1])
        if self.causal:
            x = nn.functional.pad(x, (self.left_pad, self._right_pad(shape[-1])))
        spec = torch.stft(x, self.n_fft, self.hop_length, window=self.window.to(x.dtype), center=True,
                          pad_mode=self._pad_mode(shape[-1]), return_complex=True)
        return spec.transpose(-1, -2).reshape(*shape[:-1], spec.shape[-1], spec.shape[-2])

    def _pad_mode(self, length: int) -> str:
        # Reflect padding needs more samples than it pads; very short offline inputs get zeros.
        return "reflect" if not self.causal and length > self.n_fft // 2 else "constant"

    def inverse(self, spec: Tensor, length: int) -> Tensor:
        shape = spec.shape
        s = spec.reshape(-1, shape[-2], shape[-1]).transpose(-1, -2)
        window = self.window.to(s.real.dtype)
        if self.causal:
            padded = self.left_pad + length + self._right_pad(length)
            wav = torch.istft(s, self.n_fft, self.hop_length, window=window, center=True, length=padded)
            wav = wav[..., self.left_pad:self.left_pad + length]
        else:
            wav = torch.istft(s, self.n_fft, self.hop_length, window=window, center=True, length=length)
        return wav.reshape(*shape[:-2], length)

    def envelope(self) -> Tensor:
        """Steady-state iSTFT normaliser, (hop,) float64: env[r] = sum_j window[r + j*hop]^2.

        Sample s of a causal stream (frames ending on hop boundaries, n_fft a multiple of hop) is
        divided by env[s % hop], exactly as `torch.istft` divides it."""
        w2 = self.window.double() ** 2
        w2 = nn.functional.pad(w2, (0, -self.n_fft % self.hop_length))
        return w2.reshape(-1, self.hop_length).sum(0)
