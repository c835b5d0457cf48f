"""`hops_per_step: auto`: a live run's start-up probe times K = 1, 2, 4, ... and takes the first K whose p99 call
fits the budget (else the largest tried); a file -> file run takes K = 1; bad values are one-line errors.
Budgets of 1e-6 (nothing fits) and a largest K of 1 make the choice independent of this machine's speed."""
from __future__ import annotations

import pytest

from core.errors import UserError
from streaming.build import make_engine
from streaming.cli import build_parser
from streaming.plan import plan
from streaming.settings import load_separator, settings_from_args


def _engine(tmp_path, capsys, budget: float, most: int, *flags: str):
    cfg = tmp_path / "auto.yaml"
    cfg.write_text(f"streaming:\n  hops_per_step: auto\n  auto_hops_budget: {budget}\n  auto_hops_max: {most}\n")
    args = build_parser().parse_args(["--preset", "tiny", "--no-compile", "--config", str(cfg), *flags])
    settings = settings_from_args(args)
    sep, _ = load_separator(settings, None, "tiny")
    p = plan(settings, args, tuple(sep.stems))
    capsys.readouterr()
    engine = make_engine(p, sep)
    return engine, capsys.readouterr().err


def test_nothing_fits_takes_the_largest_k_tried(tmp_path, capsys):
    engine, err = _engine(tmp_path, capsys, 1e-6, 2, "--input", "mic")
    assert engine.hops_per_step == 2 and engine.step_times_ms.size == 0       # probed, then reset
    assert "hops per step auto: 2 (K=1: call p99" in err and "K=2: call p99" in err and "does not fit" in err


def test_the_first_k_that_fits_wins(tmp_path, capsys):
    engine, err = _engine(tmp_path, capsys, 1.0, 1, "--input", "mic")
    assert engine.hops_per_step == 1 and "hops per step auto: 1 (K=1: call p99" in err


def test_a_file_run_takes_one_hop(tmp_path, capsys):
    engine, err = _engine(tmp_path, capsys, 1e-6, 4, "--input", "demo", "--output", str(tmp_path / "o.wav"))
    assert engine.hops_per_step == 1 and "a file -> file run has no real-time deadline" in err


@pytest.mark.parametrize("value", ["0", "17", "fast", "2.5", "true"])
def test_bad_hops_per_step_in_the_config_is_one_line(tmp_path, value):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"streaming:\n  hops_per_step: {value}\n")
    args = build_parser().parse_args(["--config", str(cfg)])
    with pytest.raises(UserError, match="streaming.hops_per_step"):
        settings_from_args(args)


def test_the_flag_takes_an_integer_or_auto(capsys):
    assert build_parser().parse_args(["--hops-per-step", "auto"]).hops_per_step == "auto"
    assert build_parser().parse_args(["--hops-per-step", "3"]).hops_per_step == 3
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["--hops-per-step", "x"])
    assert e.value.code == 2 and "expected an integer from 1 to 16 or auto" in capsys.readouterr().err
