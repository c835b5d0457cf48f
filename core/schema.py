"""Declarative validation of configuration sections, derived from the frozen dataclasses that consume them.

A section's schema *is* its dataclass: the keys are the fields, the types come from the annotations
(int, float, str, bool, `X | None`, `Literal[...]`, `tuple[X, ...]`, `tuple[X, Y]`, `dict[K, V]`, nested
dataclasses, `Any`), and ranges / choices from the field metadata that `setting(...)` writes:

    @dataclass(frozen=True)
    class HostConfig:
        blocksize: int = setting(256, ge=0, le=16384)
        late_policy: str = setting("dry", choices=("dry", "silence"))

`build(HostConfig, section, "config host")` checks every key (unknown keys are refused with the list of
known ones, at every level; missing required keys too), converts YAML lists to tuples, and raises
`ConfigError` with one line naming the key, the value and what was expected, e.g.

    config host.file_block: expected an integer in [1, 1048576], got 0

Cross-field rules stay in the dataclass's `__post_init__` (raising ConfigError). Adding a field to a
dataclass is all it takes to accept and check a new key.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError

_SCHEMA = "schema"


def setting(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING,
            ge: float | None = None, gt: float | None = None, le: float | None = None, lt: float | None = None,
            choices: tuple | None = None, finite: bool = True) -> Any:
    """A dataclass field with validation metadata: numeric bounds (applied to every number inside the
    value, e.g. each element of a tuple), string choices, and whether infinities are allowed."""
    meta = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt), ("choices", choices)) if v is not None}
    if not finite:
        meta["finite"] = False
    return dataclasses.field(default=default, default_factory=default_factory, metadata={_SCHEMA: meta})


def limits_of(f: dataclasses.Field) -> dict[str, Any]:
    return dict(f.metadata.get(_SCHEMA, {}))


# -- describing values and expectations ----------------------------------------------------------------
def describe(value: Any) -> str:
    """A value as the error shows it: strings quoted, long things shortened, with its YAML kind."""
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", type(None): "null",
            list: "a list", tuple: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)
    text = repr(value) if isinstance(value, str) else ("null" if value is None else str(value))
    if isinstance(value, bool):
        text = "true" if value else "false"
    if len(text) > 60:
        text = text[:57] + "..."
    return text if kind in ("an integer", "a number", "null", "a boolean") else f"{text} ({kind})"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _range_text(lim: dict[str, Any]) -> str:
    lo = ("[", lim["ge"]) if "ge" in lim else ("(", lim["gt"]) if "gt" in lim else None
    hi = ("]", lim["le"]) if "le" in lim else (")", lim["lt"]) if "lt" in lim else None
    if lo and hi:
        return f" in {lo[0]}{_num(lo[1])}, {_num(hi[1])}{hi[0]}"
    if lo:
        return f" {'>=' if lo[0] == '[' else '>'} {_num(lo[1])}"
    if hi:
        return f" {'<=' if hi[0] == ']' else '<'} {_num(hi[1])}"
    return ""


def expectation(tp: Any, lim: dict[str, Any] | None = None) -> str:
    """What a value of type `tp` with limits `lim` must be, in words."""
    lim = lim or {}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is object:
        return "any value"
    if tp is type(None):
        return "null"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer" + _range_text(lim)
    if tp is float:
        return "a number" + _range_text(lim)
    if tp is str:
        return ("one of " + ", ".join(map(str, lim["choices"]))) if "choices" in lim else "a string"
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(expectation(a, lim) for a in args)
    if origin is tuple or tp is tuple:
        if not args:
            return "a list"
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of items, each {expectation(args[0], lim)}"
        if len(set(args)) == 1:
            return f"a list of {len(args)} items, each {expectation(args[0], lim)}"
        return "a list [" + ", ".join(expectation(a, lim) for a in args) + "]"
    if origin is list:
        return f"a list of items, each {expectation(args[0], lim)}" if args else "a list"
    if origin is dict or tp is dict:
        return f"a mapping of {expectation(args[1], lim)} by name" if args else "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping with keys " + ", ".join(f.name for f in dataclasses.fields(tp) if f.init)
    return getattr(tp, "__name__", str(tp))


# -- checking ------------------------------------------------------------------------------------------
class _Mismatch(Exception):
    pass


def _in_range(x: float, lim: dict[str, Any]) -> bool:
    return (("ge" not in lim or x >= lim["ge"]) and ("gt" not in lim or x > lim["gt"])
            and ("le" not in lim or x <= lim["le"]) and ("lt" not in lim or x < lim["lt"]))


def _convert(tp: Any, value: Any, where: str, lim: dict[str, Any]) -> Any:
    """`value` checked against `tp` and `lim` -> the value the dataclass receives; raises _Mismatch
    (the caller names the whole expectation) or ConfigError (a nested key, already named)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is object:
        return _freeze(value)
    if tp is type(None):
        if value is None:
            return None
        raise _Mismatch
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and _in_range(value, lim):
            return value
        raise _Mismatch
    if tp is float:
        if isinstance(value, str):       # PyYAML reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise _Mismatch from None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            x = float(value)
            if not math.isnan(x) and (math.isfinite(x) or lim.get("finite") is False) and _in_range(x, lim):
                return x
        raise _Mismatch
    if tp is str:
        if isinstance(value, str) and ("choices" not in lim or value in lim["choices"]):
            return value
        raise _Mismatch
    if origin is typing.Literal:
        if value in args and not isinstance(value, bool):
            return value
        raise _Mismatch
    if origin in (typing.Union, types.UnionType):
        for a in args:
            try:
                return _convert(a, value, where, lim)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is tuple or tp is tuple or origin is list:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        if not args:
            return _freeze(value)
        if len(args) == 2 and args[1] is Ellipsis or origin is list:
            items = [_convert(args[0], v, where, lim) for v in value]
        else:
            if len(value) != len(args):
                raise _Mismatch
            items = [_convert(a, v, where, lim) for a, v in zip(args, value)]
        return list(items) if origin is list else tuple(items)
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise _Mismatch
        if not args:
            return dict(value)
        out = {}
        for k, v in value.items():
            key = _convert(args[0], k, where, {})
            try:
                out[key] = _convert(args[1], v, f"{where}.{k}", lim)
            except _Mismatch:
                raise ConfigError(f"{where}.{k}: expected {expectation(args[1], lim)}, got {describe(v)}") from None
        return out
    if dataclasses.is_dataclass(tp):
        return build(tp, value, where)
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _Mismatch
    return value


def _freeze(value: Any) -> Any:
    """YAML lists -> tuples, recursively (frozen dataclasses hold tuples)."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def check_value(tp: Any, value: Any, where: str, lim: dict[str, Any] | None = None) -> Any:
    """One value against a type and limits -> converted value; ConfigError naming `where` otherwise."""
    lim = lim or {}
    try:
        return _convert(tp, value, where, lim)
    except _Mismatch:
        raise ConfigError(f"{where}: expected {expectation(tp, lim)}, got {describe(value)}") from None


def field_types(cls: type) -> dict[str, tuple[Any, dict[str, Any], dataclasses.Field]]:
    """name -> (resolved annotation, limits, field) of every init field of a dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: (hints[f.name], limits_of(f), f) for f in dataclasses.fields(cls) if f.init}


def build(cls: type, data: Any, where: str) -> Any:
    """A mapping -> an instance of the dataclass `cls`, every key checked (see the module docstring)."""
    fields = field_types(cls)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping with keys {', '.join(fields)}, got {describe(data)}")
    unknown = [k for k in data if k not in fields]
    if unknown:
        noun = "key" if len(unknown) == 1 else "keys"
        raise ConfigError(f"{where}: unknown {noun} {', '.join(map(repr, unknown))}; expected one of "
                          f"{', '.join(fields)}")
    missing = [n for n, (_, _, f) in fields.items() if n not in data
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where}: missing {'key' if len(missing) == 1 else 'keys'} {', '.join(missing)}")
    values = {k: check_value(fields[k][0], v, f"{where}.{k}", fields[k][1]) for k, v in data.items()}
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from None


def replace(instance: Any, where: dict[str, str], **changes: Any) -> Any:
    """`dataclasses.replace` with every changed value checked like a config key; `where[name]` names
    where the value came from (e.g. '--blocksize'), the default is the field name."""
    fields = field_types(type(instance))
    checked = {}
    for k, v in changes.items():
        if k not in fields:
            raise ConfigError(f"{where.get(k, k)}: not a setting of {type(instance).__name__}")
        checked[k] = check_value(fields[k][0], v, where.get(k, k), fields[k][1])
    try:
        return dataclasses.replace(instance, **checked)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{', '.join(where.get(k, k) for k in changes)}: {e}") from None
