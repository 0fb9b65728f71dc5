"""A simulated tabletop world in MuJoCo: tasks, embodiments, cameras, demo videos with ground truth,
and a simulated SO-101 behind the servo protocol.

Offscreen rendering needs a headless GL: `MUJOCO_GL` defaults to `egl` here (set it to `osmesa`
where EGL is missing) and must be chosen before `mujoco` is first imported.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
if os.environ["MUJOCO_GL"] in ("egl", "osmesa"):
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
