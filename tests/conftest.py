"""Test-wide settings: headless MuJoCo rendering and deterministic, single-threaded torch."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
