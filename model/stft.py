"""STFT / iSTFT front end on `torch.stft` / `torch.istft`.

Two framings:

* offline (`causal=False`): the usual centred frames with reflect padding.
* causal (`causal=True`): frame m covers input samples [(m+1)*hop - n_fft, (m+1)*hop), i.e. it ends
  on a hop boundary and holds nothing from the future. It is computed with `center=True` on the
  input left-padded by n_fft/2 - hop zeros, so a streaming engine that frames the last n_fft samples
  every hop reproduces it exactly, and every output sample is normalised by the steady-state
  window-square envelope (which the engine can precompute).

Asymmetric windows (`synthesis_length=M < n_fft`, causal only): a long analysis window (n_fft samples:
frequency resolution) and a short synthesis window that is zero except on the last M samples of the
frame, so frame m only writes output samples [(m+1)*hop - M, (m+1)*hop) and an output sample is final M
samples after it entered: the algorithmic latency is M, not n_fft (Mauler & Martin, "A low delay,
variable resolution, perfect reconstruction spectral analysis-synthesis system", 2007). The pair is
built so that analysis x synthesis is a Hann window of length M scaled to overlap-add to exactly one
at the hop (see `window_pair`): identity masks reconstruct the input.
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


def window_pair(kind: str, n_fft: int, hop: int, synthesis_length: int | None = None) -> tuple[Tensor, Tensor]:
    """(analysis, synthesis) windows, each (n_fft,).

    Symmetric (`synthesis_length` None or n_fft): both `make_window(kind)`, normalised later by the
    window-square envelope (as torch.istft does). Asymmetric (M = synthesis_length < n_fft, a multiple
    of hop, >= 2 hop; hann only): the product analysis * synthesis is w = Hann(M) * 2 hop / M on the last M
    samples, which sums to one over the frames covering any sample. Analysis: the rising half of a
    sqrt-Hann of length 2 (n_fft - M/2), then the falling half of a sqrt-Hann of length M; synthesis:
    w / analysis on the last M samples (where analysis is >= its value at n_fft - M, i.e. well away
    from zero), 0 before."""
    if synthesis_length is None or synthesis_length == n_fft:
        w = make_window(kind, n_fft)
        return w, w.clone()   # two tensors: modules that register both must not share storage (tracing)
    m = synthesis_length
    assert kind == "hann" and m % hop == 0 and 2 * hop <= m < n_fft and m % 2 == 0, (kind, n_fft, hop, m)
    w = (torch.hann_window(m, periodic=True, dtype=torch.float64) * (2.0 * hop / m))
    rise = torch.hann_window(2 * (n_fft - m // 2), periodic=True, dtype=torch.float64)[: n_fft - m // 2].sqrt()
    fall = torch.hann_window(m, periodic=True, dtype=torch.float64)[m // 2:].sqrt()
    analysis = torch.cat([rise, fall])
    synthesis = torch.zeros(n_fft, dtype=torch.float64)
    synthesis[n_fft - m:] = w / analysis[n_fft - m:]
    return analysis.float(), synthesis.float()


class STFT(nn.Module):
    """Complex STFT of multichannel audio and its inverse.

    `forward(wav)`: (..., N) float -> (..., T, F) complex with F = n_fft // 2 + 1.
    `inverse(spec, length)`: (..., T, F) complex -> (..., length) float.
    """

    def __init__(self, n_fft: int, hop_length: int, window: str = "hann", causal: bool = False,
                 synthesis_length: int | None = None):
        super().__init__()
        assert hop_length <= n_fft // 2 or not causal, (n_fft, hop_length)
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.causal = causal
        self.synthesis_length = synthesis_length if synthesis_length is not None else n_fft
        self.asymmetric = self.synthesis_length < n_fft
        assert causal or not self.asymmetric, "asymmetric windows need the causal framing"
        analysis, synthesis = window_pair(window, n_fft, hop_length, synthesis_length)
        self.register_buffer("window", analysis, persistent=False)
        self.register_buffer("synthesis_window", synthesis, persistent=False)

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
        if self.asymmetric:
            return self._inverse_asymmetric(spec.reshape(-1, shape[-2], shape[-1]), length).reshape(*shape[:-2], length)
        s = spec.reshape(-1, shape[-2], shape[-1]).transpose(-1, -2)
        window = self.window.to(s.real.dtype)
        if self.causal:
            padded = self.left_pad + length + self._right_pad(length)
            wav = torch.istft(s, self.n_fft, self.hop_length, window=window, center=True, length=padded)
            wav = wav[..., self.left_pad:self.left_pad + length]
        else:
            wav = torch.istft(s, self.n_fft, self.hop_length, window=window, center=True, length=length)
        return wav.reshape(*shape[:-2], length)

    def _inverse_asymmetric(self, spec: Tensor, length: int) -> Tensor:
        """(B, T, F) complex -> (B, length): synthesis-windowed frames overlap-added (fold), frame m onto
        samples [(m+1)hop - n_fft, (m+1)hop), divided by the envelope (one, up to rounding)."""
        n_frames, hop, n_fft = spec.shape[-2], self.hop_length, self.n_fft
        frames = torch.fft.irfft(spec, n=n_fft) * self.synthesis_window.to(spec.real.dtype)   # (B, T, n_fft)
        total = (n_frames - 1) * hop + n_fft
        wav = nn.functional.fold(frames.transpose(1, 2), (1, total), (1, n_fft), stride=(1, hop))[:, 0, 0]
        # Fold position c holds original sample c - (n_fft - hop) (frame 0 ends at sample hop).
        start = n_fft - hop
        wav = nn.functional.pad(wav, (0, max(0, start + length - total)))[:, start:start + length]
        env = self.envelope().to(wav.dtype)
        index = torch.arange(length, device=wav.device) % hop
        return wav / env[index]

    def envelope(self) -> Tensor:
        """Steady-state overlap-add normaliser, (hop,) float64: env[r] = sum_j (analysis * synthesis)[r + j*hop].

        Sample s of a causal stream (frames ending on hop boundaries, n_fft a multiple of hop) is
        divided by env[s % hop], exactly as `torch.istft` divides it (symmetric: window squared);
        an asymmetric pair sums to one."""
        w2 = self.window.double() * self.synthesis_window.double()
        w2 = nn.functional.pad(w2, (0, -self.n_fft % self.hop_length))
        return w2.reshape(-1, self.hop_length).sum(0)
