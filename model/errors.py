"""Errors raised by the model package. Messages name the bad value and the fix, in one line."""


class ModelError(Exception):
    """Base of every model error; the CLI prints its message and exits with code 1."""


class CheckpointError(ModelError, ValueError):
    """A checkpoint directory that is missing files or was written by an incompatible version."""


class ConfigError(ModelError, ValueError):
    """An unknown preset or an inconsistent model/training setting."""
