"""Separator: waveform -> STFT -> TFSWA-UNet masks -> masked mixture -> iSTFT -> stems.

Masking is by magnitude ratio masks in [0, 1] applied to the complex mixture STFT (mixture phase);
see README "Why magnitude masks".
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import ModelConfig
from .stft import STFT
from .unet import TFSWAUNet


def _config_field(name: str, doc: str) -> property:
    """A read-only attribute of the separator: its ModelConfig's field `name`."""
    return property(lambda self: getattr(self.config, name), doc=doc)


class Separator(nn.Module):
    """`separator(wav)`: (B, C, N) float, C in {1, 2} -> (B, S, C, N) stems.

    Mono input is duplicated to stereo for the network and the stems are averaged back to mono.
    Attributes: `sample_rate`, `stems`, `n_fft`, `hop_length`, `causal`, `latency_samples`.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.stft = STFT(cfg.n_fft, cfg.hop_length, cfg.window, causal=cfg.causal, synthesis_length=cfg.synthesis_length)
        self.net = TFSWAUNet(cfg)

    # geometry ------------------------------------------------------------------------------------
    sample_rate = _config_field("sample_rate", "int: samples per second of the audio in and out")
    n_fft = _config_field("n_fft", "int: the STFT size")
    hop_length = _config_field("hop_length", "int: samples between frames (one streaming step)")
    causal = _config_field("causal", "bool: whether a frame sees only the past")
    audio_channels = _config_field("audio_channels", "int: channels the network takes (mono is duplicated)")

    @property
    def stems(self) -> tuple[str, ...]:
        return tuple(self.config.stems)

    @property
    def latency_samples(self) -> int:
        """Algorithmic latency of streaming this separator: the synthesis window's span (n_fft samples, or
        the shorter `synthesis_length` of an asymmetric pair).

        The newest frame ends on the newest hop boundary and writes output only to its last
        `synthesis_length` samples, so an output sample is complete once the frame synthesis_length - hop
        samples later has arrived, plus up to one hop of buffering to fill that frame. Streaming output
        sample i is offline output sample i - latency_samples."""
        if not self.causal:
            raise AttributeError("an offline (non-causal) separator has no streaming latency")
        return self.stft.synthesis_length

    @property
    def receptive_field_frames(self) -> int:
        return self.net.receptive_field_frames

    def num_parameters(self) -> int:
        return self.net.num_parameters()

    # pieces the streaming engine reuses ----------------------------------------------------------
    def features(self, spec: Tensor) -> Tensor:
        """Complex STFT (B, C, T, F+1) -> network input (B, C, T, F): log-compressed magnitudes."""
        return torch.log1p(spec[..., : self.config.n_freq].abs())

    def apply_masks(self, spec: Tensor, masks: Tensor) -> Tensor:
        """spec (B, C, T, F+1) complex, masks (B, S, C, T, F) -> stem spectrograms (B, S, C, T, F+1).

        The Nyquist bin takes the mask of the bin below it."""
        masks = torch.cat([masks, masks[..., -1:]], -1)
        return spec.unsqueeze(1) * masks

    def step_hop(self, spec: Tensor, state: list[Tensor], pos: Tensor) -> Tensor:
        """K consecutive STFT frames in their real view through the per-hop network step (state updated in
        place): spec (B, C, K, F+1, 2) (real, imaginary) -> stem spectra (B, S, C, K, F+1, 2), same view.

        Real arithmetic only (compilers handle it better than complex); features and masking are the
        ones of `features` / `apply_masks`. `pos`: absolute index of the first frame, 0-d int64 tensor."""
        n_freq = self.config.n_freq
        magnitude = torch.sqrt(spec[..., :n_freq, :].square().sum(-1))          # (B, C, K, F)
        feats = torch.log1p(magnitude).to(state[0].dtype)
        masks = self.net.step_hop(feats, state, pos).to(spec.dtype)              # (B, S, C, K, F)
        masks = torch.cat([masks, masks[..., -1:]], -1)
        return spec.unsqueeze(1) * masks.unsqueeze(-1)

    def to_network_channels(self, wav: Tensor) -> Tensor:
        """(B, 1 or C, N) -> (B, C, N): a mono input repeated on the network's C channels (a view)."""
        assert wav.dim() == 3 and wav.shape[1] in (1, self.audio_channels), \
            f"expected (B, C, N) with C in (1, {self.audio_channels}), got {tuple(wav.shape)}"
        return wav.expand(-1, self.audio_channels, -1) if wav.shape[1] == 1 else wav

    def masks(self, wav: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, N) -> (mixture STFT (B, C, T, F+1), masks (B, S, C, T, F))."""
        spec = self.stft(self.to_network_channels(wav))
        return spec, self.net(self.features(spec))

    def forward(self, wav: Tensor) -> Tensor:
        """(B, C, N) -> (B, S, C, N)."""
        n = wav.shape[-1]
        spec, masks = self.masks(wav)
        stems = self.stft.inverse(self.apply_masks(spec, masks), n)
        return stems.mean(2, keepdim=True) if wav.shape[1] == 1 else stems
