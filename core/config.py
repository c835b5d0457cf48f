"""`config.yaml` and the files like it: reading, merging, and checking each section with the schema its
owner declared.

Every top-level section of config.yaml is owned by one package, which declares it here at import
(`declare_section`): the schema that checks it ("module:attribute", imported only when checked) and the
commands that read it. Nothing here names a package above: `model.config` declares `audio`, `stems` and
`presets`, `streaming`, `training` and `tools` their own in their `__init__`. The schema is the frozen
dataclass that consumes the section: its fields are the keys, their annotations the types and
`core.schema.setting(...)` the ranges (see core.schema); when the dataclass has a `from_config(config)`
classmethod (for rules across keys) that is what is called. A plain function is called with the whole
config. A section neither declared nor in the project's config.yaml is refused.
"""
from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, UserError
from .schema import build

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"

SECTIONS: dict[str, tuple[str, tuple[str, ...]]] = {}   # section -> (schema "module:attribute", commands)
EVERY_COMMAND = ("*",)                                   # `commands` of a section that every command reads


def declare_section(name: str, schema: str, commands: Iterable[str]) -> None:
    """Declare the `config.yaml` section `name`: its schema ("module:attribute") and the commands that read
    it (each checks it at start-up, before any work). Called by the package that owns the section."""
    SECTIONS[name] = (schema, tuple(commands))


def read_yaml_mapping(path: str | Path, what: str, expected: str, error: type[UserError] = ConfigError) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; a missing file, bad YAML or another shape raises
    `error` naming `what` the file is and what was `expected`."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} not found: {path} (expected {expected})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise error(f"{what} {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    except OSError as e:
        raise error(f"{what} {path} cannot be read ({e.strerror})") from None
    if not isinstance(data, dict):
        raise error(f"{what} {path}: expected a mapping at the top level")
    return data


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    """Read a YAML config file (default: the project's `config.yaml`) -> dict."""
    return read_yaml_mapping(path if path is not None else DEFAULT_CONFIG, "config file", "a YAML file like config.yaml")


def merge_config(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `override` into a copy of `base` (mappings merge, everything else replaces)."""
    out = dict(base)
    for k, v in override.items():
        out[k] = merge_config(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def project_section(name: str) -> Any:
    """Section `name` of the project's config.yaml; ConfigError when the file has none."""
    section = load_config().get(name)
    if section is None:
        raise ConfigError(f"config.yaml: expected a `{name}` section, found none")
    return section


def nested(dotted: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys as nested mappings: {"training.batch_size": 4} -> {"training": {"batch_size": 4}}."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def known_sections() -> list[str]:
    """Every section a config may hold: those declared, and those of the project's config.yaml."""
    return list(dict.fromkeys([*SECTIONS, *load_config()]))


def _schema(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def check_config(config: dict[str, Any], command: str | None = None, reads: Iterable[str] = ()) -> dict[str, Any]:
    """Refuse unknown top-level sections; check every declared section `command` reads (None: every
    declared section), and the sections `reads` names (a command that reads another package's section:
    that package must be imported first, which declares it). -> section name -> its checked value (the
    schema's dataclass, or what its checking function returned), for the sections present and checked:
    a command builds each section once, here, and uses these."""
    reads = tuple(reads)
    undeclared = [r for r in reads if r not in SECTIONS]
    if undeclared:
        raise ConfigError(f"config: section{'s' if len(undeclared) > 1 else ''} {', '.join(map(repr, undeclared))} "
                          "not declared (import the package that owns it first)")
    known = known_sections()
    unknown = [k for k in config if k not in known]
    if unknown:
        raise ConfigError(f"config: unknown section{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(map(repr, unknown))}; expected one of {', '.join(known)}")
    checked: dict[str, Any] = {}
    for name, (spec, commands) in SECTIONS.items():
        if name not in config or (command is not None and command not in commands and "*" not in commands
                                  and name not in reads):
            continue
        schema = _schema(spec)
        if dataclasses.is_dataclass(schema) and not hasattr(schema, "from_config"):
            checked[name] = build(schema, config[name], f"config {name}")
        else:
            checked[name] = (schema.from_config if dataclasses.is_dataclass(schema) else schema)(config)
    return checked


def resolve_sections(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                     command: str | None = None, reads: Iterable[str] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the configuration a command runs with, its checked sections): config.yaml deep-merged with the YAML
    file `path` (`--config`) and `overrides` (values from CLI flags, same layout), checked once
    (`check_config`)."""
    config = load_config()
    if path is not None:
        config = merge_config(config, load_config(path))
    if overrides:
        config = merge_config(config, overrides)
    return config, check_config(config, command, reads)


def resolve_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                   command: str | None = None, reads: Iterable[str] = ()) -> dict[str, Any]:
    """The configuration a command runs with, checked (`resolve_sections` without the sections)."""
    return resolve_sections(path, overrides, command, reads)[0]
