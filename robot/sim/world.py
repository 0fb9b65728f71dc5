"""A compiled tabletop scene and its physics step: kinematically driven joints, mocap hand, grasping.

Grasping is an attachment, not friction: when the gripper closes with the tool point within
`GRASP_RADIUS` of a graspable object (block, ball, drawer handle), the object is attached; each
physics step a free object is set to its grasp-time pose relative to the tool, and the drawer's slide
joint follows the tool's displacement along the slide axis. Opening the gripper releases it, and
physics takes over (the ball drops, the block settles). Pushing (the sweep task) is real contact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robot.sim.embodiments import ARM_COLLISION, NO_COLLISION, EmbodimentSpec, build_embodiment
from robot.sim.mjcf import rgba, vec
from robot.sim.tasks import Layout, handle_offset, objects_xml

TIMESTEP = 0.002  # s
GRASP_RADIUS = 0.035  # m
GRASPABLE = ("block", "ball")
EMBODIMENT_BASES = {"so101": ((0.0, 0.0, 0.0), math.pi / 2), "other_robot": ((-0.09, 0.0, 0.0), 0.0)}


@dataclass(frozen=True)
class Appearance:
    """Randomised look of the world (colours in [0, 1], light direction as a unit vector)."""

    table_texture: str
    table_rgb1: tuple[float, float, float]
    table_rgb2: tuple[float, float, float]
    table_noise: float
    floor_rgb1: tuple[float, float, float]
    floor_rgb2: tuple[float, float, float]
    wall_rgb: tuple[float, float, float]
    light_dir: tuple[float, float, float]
    light_diffuse: float
    ambient: float


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """Random table/floor textures, wall colour and lighting."""
    base = rng.uniform(0.35, 0.85, 3)
    azimuth, elevation = rng.uniform(0, 2 * math.pi), rng.uniform(0.7, 1.4)
    direction = -np.array([math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth),
                           math.sin(elevation)])
    return Appearance(
        table_texture=str(rng.choice(["checker", "flat", "gradient"])),
        table_rgb1=tuple(base), table_rgb2=tuple(np.clip(base * rng.uniform(0.6, 0.9), 0, 1)),
        table_noise=float(rng.uniform(0.0, 0.08)),
        floor_rgb1=tuple(rng.uniform(0.1, 0.5, 3)), floor_rgb2=tuple(rng.uniform(0.1, 0.5, 3)),
        wall_rgb=tuple(rng.uniform(0.4, 0.9, 3)), light_dir=tuple(direction),
        light_diffuse=float(rng.uniform(0.45, 0.85)), ambient=float(rng.uniform(0.2, 0.4)))


def world_xml(embodiment: EmbodimentSpec, layout: Layout, look: Appearance, width: int, height: int) -> str:
    """The complete MJCF of one scene."""
    mark = f'mark="random" random="{look.table_noise:.3f}" markrgb="{vec(look.table_rgb2)}"' if look.table_noise > 0.01 else ""
    return f"""<mujoco model="tracegen_tabletop">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{TIMESTEP}" gravity="0 0 -9.81"/>
  <statistic extent="2" center="0.15 0 0"/>
  <visual>
    <global offwidth="{max(width, 640)}" offheight="{max(height, 480)}"/>
    <map znear="0.01" zfar="10"/>
    <headlight ambient="{vec([look.ambient] * 3)}" diffuse="0.25 0.25 0.25" specular="0 0 0"/>
    <quality offsamples="0"/>
  </visual>
  <asset>
    <texture name="table" type="2d" builtin="{look.table_texture}" rgb1="{vec(look.table_rgb1)}" rgb2="{vec(look.table_rgb2)}"
             width="256" height="256" {mark}/>
    <material name="table" texture="table" texrepeat="4 3" reflectance="0"/>
    <texture name="floor" type="2d" builtin="checker" rgb1="{vec(look.floor_rgb1)}" rgb2="{vec(look.floor_rgb2)}" width="128" height="128"/>
    <material name="floor" texture="floor" texrepeat="8 8"/>
  </asset>
  <worldbody>
    <light name="sun" directional="true" dir="{vec(look.light_dir)}" diffuse="{vec([look.light_diffuse] * 3)}" specular="0.1 0.1 0.1" castshadow="false"/>
    <geom name="floor" type="plane" pos="0 0 -0.75" size="3 3 0.1" material="floor" contype="1" conaffinity="1"/>
    <geom name="table" type="box" pos="0.18 0 -0.02" size="0.5 0.6 0.02" material="table" contype="1" conaffinity="1" friction="0.6 0.005 0.0001"/>
    <geom name="table_leg" type="box" pos="0.18 0 -0.39" size="0.45 0.55 0.35" rgba="{rgba(np.asarray(look.wall_rgb) * 0.5)}" contype="0" conaffinity="0"/>
    <geom name="wall_back" type="box" pos="1.6 0 0.5" size="0.02 3 1.5" rgba="{rgba(look.wall_rgb)}" contype="0" conaffinity="0"/>
    <geom name="wall_left" type="box" pos="0 1.8 0.5" size="3 0.02 1.5" rgba="{rgba(np.asarray(look.wall_rgb) * 0.9)}" contype="0" conaffinity="0"/>
    <geom name="wall_right" type="box" pos="0 -1.8 0.5" size="3 0.02 1.5" rgba="{rgba(np.asarray(look.wall_rgb) * 0.85)}" contype="0" conaffinity="0"/>
    <geom name="wall_front" type="box" pos="-1.6 0 0.5" size="0.02 3 1.5" rgba="{rgba(np.asarray(look.wall_rgb) * 0.8)}" contype="0" conaffinity="0"/>
    <camera name="view" pos="0.6 0 0.6" fovy="45"/>
    {objects_xml(layout)}
    {embodiment.xml}
  </worldbody>
</mujoco>"""


class SimScene:
    """One compiled scene: model, data, the embodiment's joint indices, and grasp state.

    Joint targets are set with `command_arm` / `command_gripper`; `step()` advances physics by one
    `TIMESTEP`, moving driven joints at most `max_joint_speed` towards their targets.
    """

    def __init__(self, embodiment: EmbodimentSpec, layout: Layout, look: Appearance, width: int, height: int):
        import mujoco

        self.embodiment, self.layout, self.look = embodiment, layout, look
        self.model = mujoco.MjModel.from_xml_string(world_xml(embodiment, layout, look, width, height))
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.arm_qpos = np.array([m.joint(j).qposadr[0] for j in embodiment.arm_joints], dtype=int)
        self.arm_dof = np.array([m.joint(j).dofadr[0] for j in embodiment.arm_joints], dtype=int)
        self.arm_limits = np.array([m.joint(j).range for j in embodiment.arm_joints]).reshape(-1, 2)
        self.grip_qpos = np.array([m.joint(j).qposadr[0] for j, _, _ in embodiment.gripper_joints], dtype=int)
        self.grip_dof = np.array([m.joint(j).dofadr[0] for j, _, _ in embodiment.gripper_joints], dtype=int)
        self.grip_open = np.array([o for _, o, _ in embodiment.gripper_joints])
        self.grip_closed = np.array([c for _, _, c in embodiment.gripper_joints])
        self.tool_site = m.site(embodiment.tool_site).id
        self.camera_id = m.camera("view").id
        self.mocap_id = m.body(embodiment.mocap_body).mocapid[0] if embodiment.mocap_body else -1
        self.speed_limit = embodiment.max_joint_speed  # rad/s of every driven arm joint
        self.arm_target = np.array(embodiment.park, dtype=float)
        self.arm_velocity = np.zeros(len(self.arm_qpos))
        self.grip_target = self.grip_open.copy()
        self.attached: dict | None = None
        self.data.qpos[self.arm_qpos] = self.arm_target
        self.data.qpos[self.grip_qpos] = self.grip_open
        if "drawer" in [m.body(i).name for i in range(m.nbody)]:
            self.data.qpos[m.joint("drawer").qposadr[0]] = layout.params["start"]
        mujoco.mj_forward(m, self.data)

    # ---- commands -------------------------------------------------------------------------------
    def command_arm(self, velocity: np.ndarray) -> None:
        """Arm joint velocities (rad/s) for the next steps; clipped to the speed limit."""
        limit = self.speed_limit
        self.arm_velocity = np.clip(np.asarray(velocity, float), -limit, limit)

    def command_arm_position(self, target: np.ndarray) -> None:
        """Arm joint position goals (rad); each step moves towards them at the speed limit."""
        self.arm_target = np.clip(np.asarray(target, float), self.arm_limits[:, 0], self.arm_limits[:, 1])
        self.arm_velocity = None  # type: ignore[assignment]

    def place_arm(self, joints: np.ndarray) -> None:
        """Put the arm at `joints` (rad) at once and hold it there (no motion is simulated)."""
        self.data.qpos[self.arm_qpos] = joints
        self.command_arm_position(joints)
        self.forward()

    def command_gripper(self, opening: float) -> None:
        """Gripper opening in [0 closed, 1 open]."""
        opening = float(np.clip(opening, 0.0, 1.0))
        self.grip_target = self.grip_closed + opening * (self.grip_open - self.grip_closed)

    def command_gripper_position(self, angles: np.ndarray) -> None:
        """Gripper joint goals in joint units (radians for the SO-101's jaw)."""
        self.grip_target = np.asarray(angles, float).reshape(self.grip_open.shape)

    def set_mocap(self, position: np.ndarray, quat: np.ndarray) -> None:
        """Pose of the hand's mocap body (world metres, quaternion w x y z)."""
        self.data.mocap_pos[self.mocap_id] = position
        self.data.mocap_quat[self.mocap_id] = quat

    # ---- physics --------------------------------------------------------------------------------
    def step(self) -> None:
        """Advance one `TIMESTEP`: driven joints move, an attached object follows, physics runs."""
        import mujoco

        d, dt = self.data, TIMESTEP
        if len(self.arm_qpos):
            q = d.qpos[self.arm_qpos]
            if self.arm_velocity is None:  # position goals with a speed limit
                v = np.clip((self.arm_target - q) / dt, -self.speed_limit, self.speed_limit)
            else:
                v = self.arm_velocity
            q_next = np.clip(q + v * dt, self.arm_limits[:, 0], self.arm_limits[:, 1])
            d.qvel[self.arm_dof] = (q_next - q) / dt
        g = d.qpos[self.grip_qpos]
        grip_speed = 2.0 * np.abs(self.grip_open - self.grip_closed)  # a full stroke in 0.5 s
        g_next = g + np.clip(self.grip_target - g, -grip_speed * dt, grip_speed * dt)
        d.qvel[self.grip_dof] = (g_next - g) / dt
        mujoco.mj_step(self.model, d)
        if len(self.arm_qpos):
            d.qpos[self.arm_qpos] = q_next
        d.qpos[self.grip_qpos] = g_next
        if self.attached is not None:
            mujoco.mj_kinematics(self.model, d)
            self._follow_tool()

    def forward(self) -> None:
        """Recompute positions (call before rendering or ray casting)."""
        import mujoco

        mujoco.mj_forward(self.model, self.data)

    def tool_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """World position (3,) and rotation (3, 3) of the tool site."""
        return self.data.site_xpos[self.tool_site].copy(), self.data.site_xmat[self.tool_site].reshape(3, 3).copy()

    # ---- grasping -------------------------------------------------------------------------------
    def grasp(self) -> str | None:
        """Attach the graspable object nearest the tool point (within `GRASP_RADIUS`); its name or None."""
        tool_pos, tool_rot = self.tool_pose()
        candidates = []
        m, d = self.model, self.data
        for name in GRASPABLE:
            if _has_body(m, name):
                candidates.append((np.linalg.norm(d.body(name).xpos - tool_pos), name))
        if _has_body(m, "drawer"):
            handle = d.body("drawer").xpos + d.body("drawer").xmat.reshape(3, 3) @ handle_offset()
            candidates.append((np.linalg.norm(handle - tool_pos), "drawer"))
        near = [c for c in candidates if c[0] <= GRASP_RADIUS]
        if not near:
            return None
        name = min(near)[1]
        if name == "drawer":
            axis = -d.body("cabinet").xmat.reshape(3, 3)[:, 0]
            adr = m.joint("drawer").qposadr[0]
            self.attached = {"name": name, "axis": axis, "start": d.qpos[adr], "tool": tool_pos, "adr": adr}
        else:
            body = d.body(name)
            rel_pos = tool_rot.T @ (body.xpos - tool_pos)
            rel_rot = tool_rot.T @ body.xmat.reshape(3, 3)
            self.attached = {"name": name, "rel_pos": rel_pos, "rel_rot": rel_rot, "adr": m.joint(name).qposadr[0],
                             "dof": m.joint(name).dofadr[0]}
        return name

    def release(self) -> None:
        """Let go of the attached object (it keeps no velocity)."""
        if self.attached is not None and self.attached["name"] != "drawer":
            self.data.qvel[self.attached["dof"]: self.attached["dof"] + 6] = 0.0
        self.attached = None

    def _follow_tool(self) -> None:
        import mujoco

        a, d = self.attached, self.data
        tool_pos, tool_rot = self.tool_pose()
        if a["name"] == "drawer":
            low, high = self.model.joint("drawer").range
            d.qpos[a["adr"]] = np.clip(a["start"] + float((tool_pos - a["tool"]) @ a["axis"]), low, high)
            d.qvel[self.model.joint("drawer").dofadr[0]] = 0.0
            return
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, (tool_rot @ a["rel_rot"]).ravel())
        d.qpos[a["adr"]: a["adr"] + 3] = tool_pos + tool_rot @ a["rel_pos"]
        d.qpos[a["adr"] + 3: a["adr"] + 7] = quat
        d.qvel[a["dof"]: a["dof"] + 6] = 0.0


def _has_body(model, name: str) -> bool:
    import mujoco

    return mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name) >= 0


def build_scene(task: str, embodiment: str, layout: Layout, rng: np.random.Generator,
                width: int = 320, height: int = 240, look: Appearance | None = None) -> SimScene:
    """Compile a scene for `embodiment` doing `layout`'s task; only the sweep lets the gripper touch objects."""
    if embodiment == "human":  # the hand starts on the person's side of the table, above it
        side = rng.uniform(-2.2, 2.2)
        base = (np.array([0.2 + 0.3 * math.cos(side), 0.3 * math.sin(side), -0.08]), 0.0)
    else:
        base = EMBODIMENT_BASES.get(embodiment, ((0.0, 0.0, 0.0), 0.0))
    spec = build_embodiment(embodiment, base[0], base[1], rng)
    if task != "sweep":
        spec = EmbodimentSpec(**{**spec.__dict__, "xml": spec.xml.replace(ARM_COLLISION, NO_COLLISION)})
    return SimScene(spec, layout, look or sample_appearance(rng), width, height)
