"""Training losses and the fast validation SDR.

Shapes: estimated / target waveforms (B, S, C, N); spectrograms (B, S, C, T, F+1) complex.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import LossConfig


def spectrogram_l1(est_spec: Tensor, target_spec: Tensor, complex_l1: bool = False) -> Tensor:
    """L1 between masked-mixture and target spectrograms: on magnitudes, or on real and imaginary parts."""
    if complex_l1:
        return (torch.view_as_real(est_spec) - torch.view_as_real(target_spec)).abs().mean()
    return (est_spec.abs() - target_spec.abs()).abs().mean()


class MultiResolutionSTFTLoss(nn.Module):
    """Mean over resolutions of L1(|X|, |Y|) + L1(log |X|, log |Y|) of Hann-windowed STFTs.

    `resolutions`: (n_fft, hop) pairs, by default 2048/512, 1024/256, 512/128."""

    def __init__(self, resolutions=((2048, 512), (1024, 256), (512, 128)), eps: float = 1e-5):
        super().__init__()
        self.resolutions = [(int(n), int(h)) for n, h in resolutions]
        self.eps = eps
        for n, _ in self.resolutions:
            self.register_buffer(f"window_{n}", torch.hann_window(n), persistent=False)

    def _mag(self, x: Tensor, n_fft: int, hop: int) -> Tensor:
        flat = x.reshape(-1, x.shape[-1])
        if flat.shape[-1] <= n_fft // 2:  # reflect padding needs more samples than it pads
            flat = nn.functional.pad(flat, (0, n_fft // 2 + 1 - flat.shape[-1]))
        spec = torch.stft(flat, n_fft, hop, window=getattr(self, f"window_{n_fft}"), center=True, return_complex=True)
        return spec.abs().clamp_min(self.eps)

    def forward(self, est: Tensor, target: Tensor) -> Tensor:
        """est, target (..., N) -> scalar."""
        total = est.new_zeros(())
        for n_fft, hop in self.resolutions:
            x, y = self._mag(est, n_fft, hop), self._mag(target, n_fft, hop)
            total = total + (x - y).abs().mean() + (x.log() - y.log()).abs().mean()
        return total / len(self.resolutions)


class SeparationLoss(nn.Module):
    """Weighted sum of spectrogram L1, multi-resolution STFT and waveform L1 (weights from config).

    forward(est_spec, target_spec, est_wav, target_wav) -> (total, {name: value})."""

    def __init__(self, cfg: LossConfig):
        super().__init__()
        self.cfg = cfg
        self.mrstft = MultiResolutionSTFTLoss(cfg.mrstft_resolutions)

    def forward(self, est_spec: Tensor, target_spec: Tensor, est_wav: Tensor, target_wav: Tensor
                ) -> tuple[Tensor, dict[str, Tensor]]:
        parts: dict[str, Tensor] = {}
        if self.cfg.spec_l1 > 0:
            parts["spec_l1"] = spectrogram_l1(est_spec, target_spec, self.cfg.spec_l1_complex)
        if self.cfg.mrstft > 0:
            parts["mrstft"] = self.mrstft(est_wav, target_wav)
        if self.cfg.wave_l1 > 0:
            parts["wave_l1"] = (est_wav - target_wav).abs().mean()
        weights = {"spec_l1": self.cfg.spec_l1, "mrstft": self.cfg.mrstft, "wave_l1": self.cfg.wave_l1}
        total = sum(weights[k] * v for k, v in parts.items())
        return total, parts


def batch_sdr(est: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """Fast SDR in dB per item and stem, 10 log10(|s|^2 / |s - s_hat|^2) over channels and time
    (no projection, unlike BSSEval): (B, S, C, N) x2 -> (B, S)."""
    num = target.pow(2).sum((-1, -2))
    den = (target - est).pow(2).sum((-1, -2))
    return 10 * torch.log10((num + eps) / (den + eps))
