"""The config registry across the house: every section of config.yaml is declared by the package that owns
it (`core.config.declare_section`, in that package's `__init__`), with a schema that the shipped file passes."""
from __future__ import annotations

import pytest

import core
import streaming  # noqa: F401 - each package declares its sections when imported
import tools  # noqa: F401
import training  # noqa: F401
from core.config import SECTIONS, check_config, load_config, resolve_config

OWNERS = {"model": {"audio", "stems", "presets"}, "training": {"training", "songs", "real_vocals"}, "tools": {"tools"}}


def test_config_yaml_is_valid_in_every_section():
    """Every section of the shipped config.yaml has a schema and passes it (songs included)."""
    config = load_config()
    assert set(config) <= set(SECTIONS)
    check_config(config)


def test_unknown_sections_are_refused_and_overrides_merge(tmp_path):
    with pytest.raises(core.ConfigError, match="unknown section 'hots'; expected one of audio"):
        check_config({"hots": {}})
    f = tmp_path / "c.yaml"
    f.write_text("host:\n  file_block: 1024\n")
    assert resolve_config(f, {"host": {"blocksize": 128}}, "streaming")["host"]["file_block"] == 1024
    with pytest.raises(core.ConfigError, match="config host.blocksize"):
        resolve_config(f, {"host": {"blocksize": -1}}, "streaming")


def test_each_section_is_declared_by_its_owner_and_nothing_names_a_package_above():
    assert set(SECTIONS) == set(load_config())
    for name, (schema, _) in SECTIONS.items():
        owner = next((pkg for pkg, names in OWNERS.items() if name in names), "streaming")
        assert schema.startswith(f"{owner}."), (name, schema)


def test_a_command_that_reads_another_packages_section_names_it():
    config = load_config()
    config["real_vocals"] = {**config["real_vocals"], "no_such_key": 1}
    check_config(config, "streaming")                   # streaming does not read real_vocals
    with pytest.raises(core.ConfigError, match="real_vocals"):
        check_config(config, "tools", reads=("real_vocals",))
    with pytest.raises(core.ConfigError, match="not declared"):
        check_config(load_config(), "tools", reads=("no_such_section",))
