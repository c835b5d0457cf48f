"""core.schema: config sections are checked from the dataclasses that consume them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

import core
from core.schema import build, replace, setting


@dataclass(frozen=True)
class Inner:
    rate: float = setting(0.5, ge=0, le=1)


@dataclass(frozen=True)
class Example:
    count: int = setting(4, ge=1)
    mode: Literal["a", "b"] = "a"
    word: str = setting("x", choices=("x", "y"))
    pair: tuple[float, float] = setting((0.1, 0.2), gt=0)
    maybe: int | None = setting(None, ge=0)
    latency: str | float = setting("low", choices=("low", "high"), gt=0)
    names: tuple[str, ...] = ()
    table: dict[str, int] = setting(default_factory=dict, ge=0)  # noqa: RUF009 - setting() is a field()
    inner: Inner = field(default_factory=Inner)
    flag: bool = False


def test_defaults_and_conversions():
    e = build(Example, {"pair": [1, 2], "names": ["p", "q"], "inner": {"rate": 1}, "latency": 0.05,
                        "table": {"k": 3}, "count": 2.0}, "config ex")
    assert e == Example(count=2, pair=(1.0, 2.0), names=("p", "q"), inner=Inner(1.0), latency=0.05, table={"k": 3})
    assert build(Example, None, "config ex") == Example()
    assert build(Example, {"pair": ["1e-3", 2]}, "config ex").pair == (0.001, 2.0)   # PyYAML reads 1e-3 as a string


@pytest.mark.parametrize("data,message", [
    ({"count": 0}, "config ex.count: expected an integer >= 1, got 0"),
    ({"count": "abc"}, "config ex.count: expected an integer >= 1, got 'abc' (a string)"),
    ({"count": True}, "config ex.count: expected an integer >= 1, got true"),
    ({"count": 1.5}, "got 1.5"),
    ({"mode": "c"}, "config ex.mode: expected one of a, b, got 'c'"),
    ({"word": "z"}, "config ex.word: expected one of x, y"),
    ({"pair": [1]}, "config ex.pair: expected a list of 2 items, each a number > 0"),
    ({"pair": [1, -1]}, "config ex.pair"),
    ({"pair": [1, float("nan")]}, "config ex.pair"),
    ({"maybe": -1}, "config ex.maybe: expected an integer >= 0 or null, got -1"),
    ({"latency": "fast"}, "expected one of low, high or a number > 0, got 'fast'"),
    ({"latency": -1}, "config ex.latency"),
    ({"table": {"k": -1}}, "config ex.table.k: expected an integer >= 0, got -1"),
    ({"table": [1]}, "config ex.table: expected a mapping"),
    ({"inner": {"rate": 2}}, "config ex.inner.rate: expected a number in [0, 1], got 2"),
    ({"inner": {"rat": 2}}, "config ex.inner: unknown key 'rat'; expected one of rate"),
    ({"bogus": 1}, "config ex: unknown key 'bogus'; expected one of count, mode"),
    ({"flag": "yes"}, "config ex.flag: expected true or false, got 'yes'"),
    (["a"], "config ex: expected a mapping with keys count"),
])
def test_errors_name_the_key_the_value_and_the_expectation(data, message):
    with pytest.raises(core.ConfigError) as e:
        build(Example, data, "config ex")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_new_field_is_all_it_takes():
    @dataclass(frozen=True)
    class Grown(Example):
        threads: int = setting(1, ge=0, le=64)
    assert build(Grown, {"threads": 8}, "config g").threads == 8
    with pytest.raises(core.ConfigError, match="config g.threads: expected an integer in"):
        build(Grown, {"threads": 65}, "config g")


def test_cli_overrides_are_checked_and_named_by_their_flag():
    e = replace(Example(), {"count": "--count"}, count=3)
    assert e.count == 3
    with pytest.raises(core.ConfigError, match="--count: expected an integer >= 1, got -2"):
        replace(Example(), {"count": "--count"}, count=-2)


