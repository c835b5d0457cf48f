"""tools.bench_chains times the host's own effects, built through the run plan as `python -m streaming` builds them."""
from __future__ import annotations

import pytest

from core.errors import UserError
from tools.bench_chains import measure


def test_it_times_the_planned_chains_with_their_latency():
    plain = measure([], None, 256, 0.3)
    keyed = measure(["vocals=reverb:room_size=0.5", "accompaniment=highpass:cutoff_frequency_hz=60"], 2.0, 256, 0.3)
    assert plain["latency_ms"] == 0.0 and plain["blocks"] > 0
    assert keyed["fx"] == 2 and keyed["latency_ms"] > 40.0          # the key shifter's window delays every stem
    assert keyed["ms_p99"] >= keyed["ms_p50"] > 0


def test_a_bad_effect_is_the_plans_one_line_error():
    with pytest.raises(UserError, match="room_size"):
        measure(["vocals=reverb:room_size=3"], None, 256, 0.1)
