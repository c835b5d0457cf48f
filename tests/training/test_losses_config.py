from __future__ import annotations

import pytest
import torch

import core
from training.config import TrainConfig, train_config, with_overrides
from training.losses import MultiResolutionSTFTLoss, SeparationLoss, batch_sdr, spectrogram_l1


def test_default_training_section_parses():
    cfg = train_config(core.load_config())
    assert cfg.optimizer.grad_clip == 1.0
    assert cfg.loss.mrstft_resolutions == ((2048, 512), (1024, 256), (512, 128))


def test_cpu_defaults_apply_on_cpu_only_and_merge_nested_keys():
    config = {"training": {"batch_size": 8, "segment_seconds": 6.0, "validation": {"segment_seconds": 6.0, "batch_size": 3},
                           "cpu": {"batch_size": 2, "validation": {"segment_seconds": 2.0}}}}
    cpu, gpu = train_config(config, "cpu"), train_config(config, "cuda")
    assert (cpu.batch_size, cpu.segment_seconds, cpu.validation.segment_seconds, cpu.validation.batch_size) == (2, 6.0, 2.0, 3)
    assert (gpu.batch_size, gpu.validation.segment_seconds) == (8, 6.0)
    shipped = train_config(core.load_config(), "cpu")
    assert shipped.batch_size * shipped.segment_seconds <= 4.0  # the 3-minute smoke run's budget (config.yaml)
    with pytest.raises(core.ConfigError):
        with_overrides(cpu, {"batch_size": 0})
    assert with_overrides(cpu, {"optimizer.lr": 1e-3, "num_workers": "auto"}).optimizer.lr == 1e-3


@pytest.mark.parametrize("bad", [{"bogus": 1}, {"amp": "fp8"}, {"optimizer": {"lr": -1.0}}, {"loss": {"nope": 1}},
                                 {"num_workers": "many"}, {"num_workers": -1}, {"micro_batch": -2},
                                 {"cpu_amp": "fp16"}])
def test_bad_training_section_is_a_config_error(bad):
    with pytest.raises(core.ConfigError):
        TrainConfig.from_dict(bad)


def test_mrstft_is_zero_for_equal_signals_and_grows_with_error():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 2, 2, 8000, generator=g)
    loss = MultiResolutionSTFTLoss()
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    small, big = loss(x + 0.01 * torch.randn_like(x), x).item(), loss(x + 0.5 * torch.randn_like(x), x).item()
    assert 0 < small < big


@pytest.mark.parametrize("complex_l1", [False, True])
def test_separation_loss_parts_and_weights(complex_l1):
    from training.config import LossConfig

    g = torch.Generator().manual_seed(1)
    wav = torch.randn(1, 2, 2, 4000, generator=g)
    spec = torch.stft(wav.reshape(-1, 4000), 256, 64, window=torch.hann_window(256), return_complex=True)
    cfg = LossConfig(spec_l1=2.0, spec_l1_complex=complex_l1, mrstft=0.5, wave_l1=1.0, mrstft_resolutions=((512, 128),))
    total, parts = SeparationLoss(cfg)(spec * 0.5, spec, wav * 0.5, wav)
    assert set(parts) == {"spec_l1", "mrstft", "wave_l1"}
    assert total.item() == pytest.approx(2 * parts["spec_l1"].item() + 0.5 * parts["mrstft"].item() + parts["wave_l1"].item(), rel=1e-5)
    assert parts["spec_l1"].item() == pytest.approx(spectrogram_l1(spec * 0.5, spec, complex_l1).item())


def test_batch_sdr():
    x = torch.randn(3, 2, 2, 1000)
    assert torch.allclose(batch_sdr(torch.zeros_like(x), x), torch.zeros(3, 2), atol=1e-4)
    assert torch.allclose(batch_sdr(0.9 * x, x), torch.full((3, 2), 20.0), atol=1e-3)  # error 0.1 x -> 20 dB
