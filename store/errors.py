"""Errors raised by the trace store. Messages name the bad value and the fix, in one line."""


class StoreError(Exception):
    """Base of every store error; the CLI prints its message and exits with code 1."""


class NotAStoreError(StoreError, FileNotFoundError):
    """The path holds no trace store."""


class SchemaError(StoreError, ValueError):
    """Data or metadata that does not follow the store schema."""


class KeyLookupError(StoreError, KeyError):
    """A video key prefix that matches no video, or more than one."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class StoreWriteError(StoreError, OSError):
    """The store could not be written (read-only location, full disk, ...)."""


class TraceFileError(StoreError, ValueError):
    """A trace `.npz` file with missing keys, wrong shapes or wrong dtypes."""


class CorruptDataError(StoreError, ValueError):
    """An array or chunk of a published group that cannot be read back (damaged or missing bytes)."""
