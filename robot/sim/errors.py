"""Errors raised by the simulated world; all are `RobotError`s so the CLI prints one line."""

from robot.errors import RobotError


class SimError(RobotError):
    """Base of the simulator's errors."""


class SimConfigError(SimError, ValueError):
    """An unknown task, embodiment, camera kind or image size, or an option out of range."""


class SimRenderError(SimError, RuntimeError):
    """Offscreen rendering is unavailable (no EGL/OSMesa); set MUJOCO_GL=egl or osmesa."""
