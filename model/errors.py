"""User-facing errors. The CLIs print `str(error)` as one line and exit with code 2."""


class UserError(Exception):
    """Base class for problems caused by what the user supplied (paths, configs, devices, files)."""


class ConfigError(UserError):
    """A configuration file, preset or option is invalid."""


class CheckpointError(UserError):
    """A checkpoint file is missing, corrupt, truncated or does not match what was expected."""
