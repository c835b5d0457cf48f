"""The ground floor, below `model` and everything else: the command-line exit contract and its errors
(`core.errors`), stop signals (`core.signals`), atomic output files (`core.files`), the config schema
(`core.schema`), `config.yaml` loading and the section registry (`core.config`) and figure helpers
(`core.figures`). Light: nothing here imports torch, and nothing here names a package above it."""
from .config import load_config, merge_config, resolve_config
from .errors import CheckpointError, ConfigError, UserError, run_cli

__all__ = ["CheckpointError", "ConfigError", "UserError", "load_config", "merge_config", "resolve_config", "run_cli"]
