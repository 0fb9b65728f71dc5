"""Errors raised by forge. Messages name the bad value and the fix, in one line."""


class ForgeError(Exception):
    """Base of every forge error; the CLI prints its message and exits with code 1."""


class VideoReadError(ForgeError, OSError):
    """A video or frame folder that cannot be decoded (unreadable, truncated, no frames)."""


class InputError(ForgeError, ValueError):
    """Bad forge input: a sidecar that does not parse, depth of the wrong shape, a bad option."""


class ReconstructionError(ForgeError, RuntimeError):
    """Structure-from-motion could not recover the camera (too little parallax or texture)."""


class DepthError(InputError):
    """Sensor depth that does not fit its video (frame count, size) or cannot be read."""
