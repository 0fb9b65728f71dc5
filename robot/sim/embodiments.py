"""The bodies that act in the simulated world, as MJCF fragments plus what a controller needs.

* `so101`: the TARGET robot, built joint by joint from `robot.so101.SO101_CHAIN` and `SO101_TOOL`, so
  its forward kinematics are exactly the table's (the tool site is the table's gripper frame).
* `other_robot`: a bigger 5-DoF arm with different proportions, colours and a parallel-jaw gripper.
* `human`: a hand proxy (palm, four two-segment fingers, a thumb, a forearm) on a mocap body; skin
  tones vary by seed.

Arm joints are driven kinematically (the controller writes joint positions and velocities each
physics step; a large armature makes the links act as if very heavy, so contacts push objects and not
the arm). Grasping is an attachment, see `robot.sim.world`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot.sim.mjcf import matrix_to_quat, rgba, rpy_to_matrix, vec
from robot.so101 import SO101_CHAIN, SO101_GRIPPER, SO101_TOOL

EMBODIMENTS = ("so101", "other_robot", "human")
SKIN_TONES = ((0.96, 0.80, 0.69), (0.87, 0.67, 0.52), (0.71, 0.50, 0.36), (0.48, 0.32, 0.22), (0.33, 0.22, 0.15))
ARM_COLLISION = 'contype="2" conaffinity="0"'  # links touch objects (class 1), never the table or each other
NO_COLLISION = 'contype="0" conaffinity="0"'


@dataclass(frozen=True)
class EmbodimentSpec:
    """An embodiment's MJCF and the names its controller drives.

    Attributes:
        name: "so101" | "other_robot" | "human".
        xml: bodies to insert under `<worldbody>`.
        arm_joints: hinge joints in chain order the IK drives (empty for the mocap hand).
        gripper_joints: `(joint, open_q, closed_q)` per gripper joint, radians or metres.
        tool_site: site at the grasp point.
        approach_axis: (3,) unit axis in the tool-site frame pointing out of the gripper.
        lateral_axis: (3,) unit axis in the tool-site frame along which the gripper opens (widest).
        push_opening: gripper opening in [0, 1] used when pushing with the gripper as a two-point pusher.
        mocap_body: the mocap body moved by the hand controller, or None for arms.
        home: (len(arm_joints),) the ready pose scripted motions start from, radians.
        park: (len(arm_joints),) the pose an episode starts in (out of the camera's way), radians.
        max_joint_speed: rad/s limit of every arm joint.
        base_body: the body whose frame is the embodiment's base.
    """

    name: str
    xml: str
    arm_joints: tuple[str, ...]
    gripper_joints: tuple[tuple[str, float, float], ...]
    tool_site: str
    approach_axis: tuple[float, float, float]
    lateral_axis: tuple[float, float, float]
    push_opening: float
    mocap_body: str | None
    home: tuple[float, ...]
    park: tuple[float, ...]
    max_joint_speed: float
    base_body: str


def build_embodiment(name: str, base_pos, base_yaw: float, rng: np.random.Generator) -> EmbodimentSpec:
    """MJCF and controller facts for embodiment `name` with its base at `base_pos` (m), `base_yaw` (rad)."""
    from robot.sim.errors import SimConfigError

    builders = {"so101": _so101, "other_robot": _other_robot, "human": _human}
    if name not in builders:
        raise SimConfigError(f"unknown embodiment {name!r}; pick one of {', '.join(EMBODIMENTS)}")
    return builders[name](np.asarray(base_pos, float), float(base_yaw), rng)


def _capsule(start, end, radius: float, color, collide: str = NO_COLLISION) -> str:
    return (f'<geom type="capsule" fromto="{vec(start)} {vec(end)}" size="{radius:.4g}" '
            f'rgba="{rgba(color)}" {collide} group="1"/>')


def _so101(base_pos: np.ndarray, base_yaw: float, rng: np.random.Generator) -> EmbodimentSpec:
    """The SO-101: one body per row of the kinematic table, hinge about local z."""
    shell, servo = (0.95, 0.85, 0.35), (0.12, 0.12, 0.13)
    lines = [f'<body name="so101_base" pos="{vec(base_pos)}" quat="{vec([np.cos(base_yaw / 2), 0, 0, np.sin(base_yaw / 2)])}">',
             f'<geom type="cylinder" pos="0 0 0.025" size="0.045 0.025" rgba="{rgba(shell)}" {NO_COLLISION} group="1"/>',
             f'<geom type="box" pos="0.02 -0.023 0.065" size="0.022 0.02 0.025" rgba="{rgba(servo)}" {NO_COLLISION} group="1"/>']
    chain = list(SO101_CHAIN)
    for index, joint in enumerate(chain):
        quat = matrix_to_quat(rpy_to_matrix(joint.rpy))
        lines.append(f'<body name="so101_{joint.name}" pos="{vec(joint.xyz)}" quat="{vec(quat)}" gravcomp="1">')
        lines.append(f'<joint name="so101_{joint.name}" type="hinge" axis="0 0 1" range="{vec(joint.limit)}" '
                     f'armature="5" damping="0"/>')
        lines.append('<inertial pos="0 0 0" mass="0.1" diaginertia="1e-4 1e-4 1e-4"/>')
        lines.append(f'<geom type="box" size="0.016 0.016 0.018" rgba="{rgba(servo)}" {NO_COLLISION} group="1"/>')
        child = chain[index + 1].xyz if index + 1 < len(chain) else SO101_TOOL.xyz
        if index + 1 < len(chain):
            lines.append(_capsule((0, 0, 0), child, 0.014, shell))
    lines.extend(_so101_gripper(shell))
    lines.extend(["</body>"] * (len(chain) + 1))
    return EmbodimentSpec(
        name="so101", xml="\n".join(lines), arm_joints=tuple(f"so101_{j.name}" for j in chain),
        gripper_joints=(("so101_gripper", 1.2, 0.0),), tool_site="so101_tool",
        approach_axis=_approach_in_tool(SO101_TOOL.xyz, SO101_TOOL.rpy), lateral_axis=(0.0, 0.0, 1.0), push_opening=0.33,
        mocap_body=None, home=(0.0, -1.2, 1.2, 0.9, 0.0), park=(0.0, 1.5, 1.26, 1.6, 0.0), max_joint_speed=3.0, base_body="so101_base")


def _approach_in_tool(xyz, rpy) -> tuple[float, float, float]:
    """Unit vector from the last joint to the tool point, expressed in the tool frame."""
    direction = np.asarray(xyz, float) / np.linalg.norm(xyz)
    return tuple(float(x) for x in rpy_to_matrix(rpy).T @ direction)


def _so101_gripper(shell) -> list[str]:
    """Fixed jaw, moving jaw (the table's gripper joint) and the tool site, in the wrist_roll frame."""
    tool = np.asarray(SO101_TOOL.xyz)
    quat = matrix_to_quat(rpy_to_matrix(SO101_TOOL.rpy))
    low, high = SO101_GRIPPER.limit
    return [
        f'<geom type="box" pos="0 0 -0.03" size="0.024 0.02 0.02" rgba="{rgba(shell)}" {NO_COLLISION} group="1"/>',
        f'<geom type="box" pos="{vec([tool[0] - 0.007, tool[1], -0.069])}" size="0.004 0.009 0.034" '
        f'rgba="{rgba(shell)}" {ARM_COLLISION} group="1"/>',
        f'<body name="so101_jaw" pos="{vec([tool[0] + 0.007, tool[1], -0.04])}" gravcomp="1">',
        f'<joint name="so101_gripper" type="hinge" axis="0 -1 0" range="{vec((low, high))}" armature="5"/>',
        '<inertial pos="0 0 -0.03" mass="0.02" diaginertia="1e-5 1e-5 1e-5"/>',
        f'<geom type="box" pos="0 0 -0.0305" size="0.004 0.008 0.0325" rgba="0.15 0.15 0.15 1" {ARM_COLLISION} group="1"/>',
        "</body>",
        f'<site name="so101_tool" pos="{vec(tool)}" quat="{vec(quat)}" size="0.004" rgba="1 0 0 0" group="4"/>',
    ]


def _other_robot(base_pos: np.ndarray, base_yaw: float, rng: np.random.Generator) -> EmbodimentSpec:
    """A bulkier arm: pan, shoulder, elbow, wrist pitch, wrist roll; two sliding fingers."""
    body, accent = (0.92, 0.42, 0.12), (0.25, 0.27, 0.3)
    upper, fore = 0.19 + 0.02 * rng.random(), 0.17 + 0.02 * rng.random()
    quat = vec([np.cos(base_yaw / 2), 0, 0, np.sin(base_yaw / 2)])
    joint = 'type="hinge" armature="5" damping="0"'
    inertial = '<inertial pos="0 0 0" mass="0.2" diaginertia="1e-3 1e-3 1e-3"/>'
    xml = f"""
<body name="other_base" pos="{vec(base_pos)}" quat="{quat}">
  <geom type="cylinder" pos="0 0 0.03" size="0.07 0.03" rgba="{rgba(accent)}" {NO_COLLISION} group="1"/>
  <body name="other_pan" pos="0 0 0.06" gravcomp="1">
    <joint name="other_pan" {joint} axis="0 0 1" range="-3 3"/>{inertial}
    <geom type="cylinder" pos="0 0 0.05" size="0.045 0.05" rgba="{rgba(body)}" {NO_COLLISION} group="1"/>
    <body name="other_lift" pos="0 0 0.11" gravcomp="1">
      <joint name="other_lift" {joint} axis="0 1 0" range="-2.5 2.5"/>{inertial}
      <geom type="box" pos="{upper / 2} 0 0" size="{upper / 2} 0.03 0.03" rgba="{rgba(body)}" {NO_COLLISION} group="1"/>
      <body name="other_elbow" pos="{upper} 0 0" gravcomp="1">
        <joint name="other_elbow" {joint} axis="0 1 0" range="-2.8 2.8"/>{inertial}
        <geom type="cylinder" size="0.035 0.04" quat="0.7071 0.7071 0 0" rgba="{rgba(accent)}" {NO_COLLISION} group="1"/>
        <geom type="capsule" fromto="0 0 0 {fore} 0 0" size="0.022" rgba="{rgba(body)}" {NO_COLLISION} group="1"/>
        <body name="other_wrist" pos="{fore} 0 0" gravcomp="1">
          <joint name="other_wrist" {joint} axis="0 1 0" range="-2.5 2.5"/>{inertial}
          <geom type="sphere" size="0.026" rgba="{rgba(accent)}" {NO_COLLISION} group="1"/>
          <body name="other_roll" pos="0.03 0 0" gravcomp="1">
            <joint name="other_roll" {joint} axis="1 0 0" range="-3 3"/>{inertial}
            <geom type="box" pos="0.02 0 0" size="0.02 0.045 0.015" rgba="{rgba(accent)}" {NO_COLLISION} group="1"/>
            <body name="other_finger_a" pos="0.075 0 0" gravcomp="1">
              <joint name="other_finger_a" type="slide" axis="0 1 0" range="0 0.045" armature="5"/>
              <inertial pos="0 0 0" mass="0.02" diaginertia="1e-5 1e-5 1e-5"/>
              <geom type="box" size="0.035 0.006 0.012" rgba="0.85 0.85 0.85 1" {ARM_COLLISION} group="1"/>
            </body>
            <body name="other_finger_b" pos="0.075 0 0" gravcomp="1">
              <joint name="other_finger_b" type="slide" axis="0 -1 0" range="0 0.045" armature="5"/>
              <inertial pos="0 0 0" mass="0.02" diaginertia="1e-5 1e-5 1e-5"/>
              <geom type="box" size="0.035 0.006 0.012" rgba="0.85 0.85 0.85 1" {ARM_COLLISION} group="1"/>
            </body>
            <site name="other_tool" pos="0.095 0 0" size="0.004" rgba="1 0 0 0" group="4"/>
          </body>
        </body>
      </body>
    </body>
  </body>
</body>"""
    return EmbodimentSpec(
        name="other_robot", xml=xml, arm_joints=("other_pan", "other_lift", "other_elbow", "other_wrist", "other_roll"),
        gripper_joints=(("other_finger_a", 0.04, 0.006), ("other_finger_b", 0.04, 0.006)), tool_site="other_tool",
        approach_axis=(1.0, 0.0, 0.0), lateral_axis=(0.0, 1.0, 0.0), push_opening=0.26, mocap_body=None, home=(0.0, -0.9, 1.6, 0.9, 0.0), park=(0.0, -0.9, 1.6, 0.9, 0.0),
        max_joint_speed=2.0, base_body="other_base")


def _human(base_pos: np.ndarray, base_yaw: float, rng: np.random.Generator) -> EmbodimentSpec:
    """A hand proxy: palm facing down, fingers along +x, forearm trailing up and back."""
    skin = np.clip(np.asarray(SKIN_TONES[rng.integers(len(SKIN_TONES))]) + rng.normal(0, 0.02, 3), 0, 1)
    sleeve = rng.uniform(0.1, 0.8, 3)
    fingers, gripper_joints = [], []
    for index, (y, length) in enumerate(((0.027, 0.044), (0.009, 0.05), (-0.009, 0.047), (-0.026, 0.038))):
        name = f"hand_f{index}"
        gripper_joints.append((name, 0.15, 0.9))
        fingers.append(f"""
    <body name="{name}" pos="0.045 {y} 0.0" gravcomp="1">
      <joint name="{name}" type="hinge" axis="0 1 0" range="-0.3 1.6" armature="5"/>
      <inertial pos="0.02 0 0" mass="0.01" diaginertia="1e-6 1e-6 1e-6"/>
      <geom type="capsule" fromto="0 0 0 {length * 0.55:.4g} 0 0" size="0.0085" rgba="{rgba(skin)}" {ARM_COLLISION} group="1"/>
      <geom type="capsule" fromto="{length * 0.55:.4g} 0 0 {length:.4g} 0 -0.012" size="0.008" rgba="{rgba(skin)}" {ARM_COLLISION} group="1"/>
    </body>""")
    gripper_joints.append(("hand_thumb", -0.2, 0.5))
    xml = f"""
<body name="hand" mocap="true" pos="{vec(base_pos + np.array([0, 0, 0.3]))}">
  <geom type="box" size="0.045 0.042 0.013" pos="0 0 0" rgba="{rgba(skin)}" {ARM_COLLISION} group="1"/>
  <geom type="capsule" fromto="-0.04 0 0.005 -0.2 0 0.09" size="0.03" rgba="{rgba(skin)}" {NO_COLLISION} group="1"/>
  <geom type="capsule" fromto="-0.13 0 0.05 -0.32 0 0.16" size="0.042" rgba="{rgba(sleeve)}" {NO_COLLISION} group="1"/>
  {''.join(fingers)}
  <body name="hand_thumb" pos="0.0 0.045 -0.005" gravcomp="1">
    <joint name="hand_thumb" type="hinge" axis="0 0 1" range="-0.6 1.2" armature="5"/>
    <inertial pos="0.02 0 0" mass="0.01" diaginertia="1e-6 1e-6 1e-6"/>
    <geom type="capsule" fromto="0 0 0 0.035 0.01 -0.03" size="0.0095" rgba="{rgba(skin)}" {ARM_COLLISION} group="1"/>
  </body>
  <site name="hand_tool" pos="0.05 0.01 -0.04" size="0.004" rgba="1 0 0 0" group="4"/>
</body>"""
    return EmbodimentSpec(
        name="human", xml=xml, arm_joints=(), gripper_joints=tuple(gripper_joints), tool_site="hand_tool",
        approach_axis=(0.0, 0.0, -1.0), lateral_axis=(0.0, 1.0, 0.0), push_opening=0.0, mocap_body="hand", home=(), park=(), max_joint_speed=4.0, base_body="hand")
