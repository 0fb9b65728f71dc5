"""The SO-101 arm as data: servo IDs, the kinematic chain and joint limits.

From the SO-ARM100/SO-101 description files (see `../shared/reference/ROBOT.md`). Every revolute
joint turns about its local z axis; each origin is the transform from the parent link, given as
`xyz` in metres and roll-pitch-yaw in radians (fixed-axis XYZ, as in URDF).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class JointSpec:
    """One revolute joint (or the fixed tool frame when `limit` is None)."""

    name: str
    servo_id: int | None
    xyz: tuple[float, float, float]
    rpy: tuple[float, float, float]
    limit: tuple[float, float] | None  # radians


PI = math.pi

# The five arm joints in chain order, then the fixed gripper (tool) frame.
SO101_CHAIN: tuple[JointSpec, ...] = (
    JointSpec("shoulder_pan", 1, (0.0207909, -0.0230745, 0.0948817), (-PI, 0.0, PI / 2), (-1.91986, 1.91986)),
    JointSpec("shoulder_lift", 2, (-0.0303992, -0.0182778, -0.0542), (-PI / 2, -PI / 2, 0.0), (-1.74533, 1.74533)),
    JointSpec("elbow_flex", 3, (-0.11257, -0.028, 0.0), (0.0, 0.0, PI / 2), (-1.69, 1.69)),
    JointSpec("wrist_flex", 4, (-0.1349, 0.0052, 0.0), (0.0, 0.0, -PI / 2), (-1.65806, 1.65806)),
    JointSpec("wrist_roll", 5, (0.0, -0.0611, 0.0181), (PI / 2, 0.0, PI), (-2.79253, 2.79253)),
)
SO101_TOOL = JointSpec("gripper_frame", None, (-0.0079, -0.000218, -0.0981274), (PI / 2, 0.0, PI / 2), None)
SO101_GRIPPER = JointSpec("gripper", 6, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (-0.1745, 1.745))

SO101_MOTORS: tuple[str, ...] = tuple(j.name for j in SO101_CHAIN) + (SO101_GRIPPER.name,)
STEPS_PER_TURN = 4096
