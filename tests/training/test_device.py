"""Device choice without a GPU: the string handling of --device, and what a CPU-only machine says."""
from __future__ import annotations

import pytest
import torch

from training.__main__ import main
from training.device import DeviceError, choose_device
from training.trainer import resolve_workers


@pytest.mark.parametrize("want,kwargs,expected", [
    (None, {"cuda_count": 0}, "cpu"),
    (None, {"cuda_count": 2}, "cuda:0"),
    ("cpu", {"cuda_count": 2}, "cpu"),
    (" CPU ", {"cuda_count": 0}, "cpu"),
    ("cuda", {"cuda_count": 1}, "cuda:0"),                       # the crash of issue 11: no index given
    ("cuda", {"cuda_count": 4, "local_rank": 2, "world": 4}, "cuda:2"),
    (None, {"cuda_count": 4, "local_rank": 3, "world": 4}, "cuda:3"),
    ("cuda:1", {"cuda_count": 2}, "cuda:1"),
    ("cpu", {"cuda_count": 4, "local_rank": 1, "world": 2}, "cpu"),
])
def test_device_choice(want, kwargs, expected):
    device = choose_device(want, **kwargs)
    assert device == torch.device(expected)
    assert device.type == "cpu" or device.index is not None  # torch.cuda.set_device needs the index


@pytest.mark.parametrize("want,kwargs,message", [
    ("cuda", {"cuda_count": 0}, "torch sees none"),
    ("cuda:0", {"cuda_count": 0}, "torch sees none"),
    ("cuda:2", {"cuda_count": 2}, "below 2"),
    ("cuda", {"cuda_count": 2, "local_rank": 3, "world": 4}, "cuda:3"),
    ("cuda:1", {"cuda_count": 2, "local_rank": 0, "world": 2}, "LOCAL_RANK"),
    ("gpu", {"cuda_count": 1}, "expected cpu, cuda or cuda:N"),
    ("cuda:x", {"cuda_count": 1}, "expected cpu, cuda or cuda:N"),
])
def test_bad_device_requests_are_user_errors(want, kwargs, message):
    with pytest.raises(DeviceError, match=message):
        choose_device(want, **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_cli_cuda_on_a_cpu_machine_is_one_line(tmp_path, config_path, capsys):
    code = main(["--config", str(config_path), "--preset", "tiny", "--data", "synthetic", "--out", str(tmp_path / "r"),
                 "--device", "cuda"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--device cuda" in err and "use --device cpu" in err


def test_workers_auto():
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert resolve_workers(3, gpu, 1) == 3 and resolve_workers(0, cpu, 1) == 0
    assert resolve_workers("auto", cpu, 1) in (0, 1)
    assert 1 <= resolve_workers("auto", gpu, 1) <= 8 and resolve_workers("auto", gpu, 64) == 1
