"""A simulated tabletop world in MuJoCo: tasks, embodiments, cameras, demo videos with ground truth,
and a simulated SO-101 behind the servo protocol.

Modules, bottom up: `mjcf` (XML helpers), `embodiments` (SO-101 from the kinematic table, another
arm, a hand proxy), `tasks` (layouts, instructions, success checks), `world` (compiled scene, physics
step, attachment grasps), `demonstrator` (scripted plans, Jacobian IK), `cameras`, `render` (one-pass
RGB-D), `groundtruth` (grid points by ray casting), `episode` + `writer` (`tracegen sim demos`),
`servo_backend` + `arm_world` (the arm behind `robot.emulator`, its camera, `tracegen sim arm`).

Frames: world z up, table top at z = 0, the SO-101 base at the origin reaching along +x; cameras
follow OpenCV (x right, y down, z forward); depth is z-depth along the optical axis in metres.

Offscreen rendering needs a headless GL: `MUJOCO_GL` defaults to `egl` here (set it to `osmesa`
where EGL is missing) and must be chosen before `mujoco` is first imported.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
if os.environ["MUJOCO_GL"] in ("egl", "osmesa"):
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
