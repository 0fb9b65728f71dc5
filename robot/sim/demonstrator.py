"""Scripted demonstrators: a plan of tool-point waypoints per task, tracked by each embodiment.

Arms follow the plan with damped-least-squares IK on MuJoCo's own site Jacobians (`mj_jacSite`):
position plus a soft "gripper points down" goal. The hand proxy moves its mocap body along the same
kind of plan with a curved, jittery, faster path. Variation comes from the seed: speeds, waypoint
noise, grasp heights, pauses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from robot.sim.tasks import Waypoint, handle_offset
from robot.sim.world import TIMESTEP, SimScene

CONTROL_EVERY = 5  # physics steps per IK update (100 Hz)
DOWN = np.array([0.0, 0.0, -1.0])
PUSH_HEIGHT = {"so101": 0.007, "other_robot": 0.02, "human": 0.003}


@dataclass(frozen=True)
class DemoStyle:
    """Per-episode variation of a demonstrator.

    Attributes:
        speed: tool speed on free moves, m/s.
        noise: standard deviation of waypoint offsets, m.
        jitter: amplitude of the hand's tremor, m (0 for robots).
        arc: height of the hand's mid-path bump, m (0 for robots).
    """

    speed: float
    noise: float
    jitter: float
    arc: float


def sample_style(embodiment: str, rng: np.random.Generator) -> DemoStyle:
    """Robots move slower and straighter than the hand."""
    if embodiment == "human":
        return DemoStyle(speed=rng.uniform(0.22, 0.35), noise=0.003, jitter=rng.uniform(0.001, 0.003), arc=rng.uniform(0.02, 0.05))
    return DemoStyle(speed=rng.uniform(0.12, 0.2), noise=0.002, jitter=0.0, arc=0.0)


def make_plan(scene: SimScene, style: DemoStyle, rng: np.random.Generator) -> list[Waypoint]:
    """Waypoints for the scene's task from the objects' current poses."""
    d, params, task = scene.data, scene.layout.params, scene.layout.task
    speed, slow = style.speed, 0.6 * style.speed

    def jit(point) -> np.ndarray:
        return np.asarray(point, float) + np.r_[rng.normal(0, style.noise, 2), 0.0]

    if task in ("place_block", "ball_in_bin"):
        name = "block" if task == "place_block" else "ball"
        grasp = d.body(name).xpos.copy()
        if task == "place_block":
            goal = np.r_[d.body("region").xpos[:2], params["block_half"] + 0.006]
        else:
            goal = np.r_[d.body("bin").xpos[:2], params["bin_height"] + params["ball_radius"] + 0.025]
        above, above_goal = grasp + [0, 0, 0.07], goal + [0, 0, 0.06]
        return [Waypoint(jit(above), 1.0, speed), Waypoint(grasp, 1.0, slow, pause=0.1),
                Waypoint(grasp, 0.0, slow, action="grasp", pause=0.15), Waypoint(above, 0.0, slow),
                Waypoint(jit(above_goal), 0.0, speed), Waypoint(goal, 0.0, slow, pause=0.1),
                Waypoint(goal, 1.0, slow, action="release", pause=0.1), Waypoint(goal + [0, 0, 0.06], 1.0, slow)]
    if task in ("open_drawer", "close_drawer"):
        drawer = d.body("drawer")
        handle = drawer.xpos + drawer.xmat.reshape(3, 3) @ handle_offset()
        axis = -d.body("cabinet").xmat.reshape(3, 3)[:, 0]
        start = d.qpos[scene.model.joint("drawer").qposadr[0]]
        target = rng.uniform(0.08, 0.09) if task == "open_drawer" else -0.004
        end = handle + axis * (target - start)
        return [Waypoint(jit(handle + [0, 0, 0.06]), 1.0, speed), Waypoint(handle, 1.0, slow, pause=0.1),
                Waypoint(handle, 0.0, slow, action="grasp", pause=0.1), Waypoint(end, 0.0, slow, pause=0.1),
                Waypoint(end, 1.0, slow, action="release"), Waypoint(end + [0, 0, 0.06], 1.0, slow)]
    item, target = d.body("item").xpos.copy(), d.body("target").xpos.copy()
    direction = np.r_[(target - item)[:2], 0.0]
    direction /= np.linalg.norm(direction)
    height, opening = PUSH_HEIGHT[scene.embodiment.name], scene.embodiment.push_opening
    pre = np.r_[(item - direction * 0.055)[:2], height]
    through = np.r_[(target - direction * 0.02)[:2], height]
    return [Waypoint(jit(pre + [0, 0, 0.06]), opening, speed), Waypoint(pre, opening, slow, pause=0.1),
            Waypoint(through, opening, 0.5 * slow, action="push"),
            Waypoint(np.array([0, 0, 0.06]), opening, slow, action="lift")]


def min_jerk(s: float) -> float:
    """Minimum-jerk progress in [0, 1] for normalised time `s` in [0, 1]."""
    s = min(max(s, 0.0), 1.0)
    return s**3 * (10 - 15 * s + 6 * s**2)


class Tracker:
    """Moves an embodiment's tool point to Cartesian targets (IK for arms, mocap for the hand)."""

    def __init__(self, scene: SimScene, rng: np.random.Generator, style: DemoStyle):
        import mujoco

        self.scene, self.style = scene, style
        self.jacp, self.jacr = np.zeros((3, scene.model.nv)), np.zeros((3, scene.model.nv))
        self.phase = rng.uniform(0, 2 * math.pi, 6)
        if scene.mocap_id >= 0:
            yaw = rng.uniform(-0.5, 0.5) + math.atan2(*(-scene.data.mocap_pos[scene.mocap_id][:2] + [0.2, 0.0])[::-1])
            self.hand_quat = np.array([math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)])
            self.site_offset = scene.model.site_pos[scene.tool_site].copy()
            rot = np.zeros(9)
            mujoco.mju_quat2Mat(rot, self.hand_quat)
            self.hand_rot = rot.reshape(3, 3)
            start = scene.data.mocap_pos[scene.mocap_id] + scene.data.xmat[scene.model.body(scene.embodiment.mocap_body).id].reshape(3, 3) @ self.site_offset
            self.place_hand(start, 0.0)
            scene.forward()

    def tool_position(self) -> np.ndarray:
        return self.scene.tool_pose()[0]

    def place_hand(self, tool_target: np.ndarray, t: float) -> None:
        """Put the hand so its tool point is at `tool_target` plus tremor at time `t`."""
        tremor = self.style.jitter * np.sin(2 * math.pi * np.array([3.1, 4.3, 3.7]) * t + self.phase[:3])
        self.scene.set_mocap(tool_target + tremor - self.hand_rot @ self.site_offset, self.hand_quat)

    def track(self, tool_target: np.ndarray, dt: float, lateral: np.ndarray | None = None) -> None:
        """One IK update: joint velocities that bring the tool to `tool_target` within `dt` seconds.

        The gripper points down (soft goal); with `lateral` (3,) its opening axis also turns that way.
        """
        import mujoco

        s = self.scene
        mujoco.mj_kinematics(s.model, s.data)
        mujoco.mj_comPos(s.model, s.data)
        mujoco.mj_jacSite(s.model, s.data, self.jacp, self.jacr, s.tool_site)
        position, rotation = s.tool_pose()
        approach = rotation @ np.asarray(s.embodiment.approach_axis)
        weight = 0.15  # metres of position error worth one radian of pointing error
        turn = np.cross(approach, DOWN)  # (3,) rotation that points the gripper down
        if lateral is not None:
            side = rotation @ np.asarray(s.embodiment.lateral_axis)
            side_goal = lateral if side @ lateral >= 0 else -lateral  # the opening axis has no sign
            turn = turn + np.cross(side, side_goal)
        error = np.r_[tool_target - position, weight * turn]  # (6,)
        jac = np.vstack([self.jacp[:, s.arm_dof], weight * self.jacr[:, s.arm_dof]])  # (6, n)
        damping = 1e-4
        velocity = jac.T @ np.linalg.solve(jac @ jac.T + damping * np.eye(6), error / dt)  # (n,)
        s.command_arm(velocity)


def run_plan(scene: SimScene, plan: list[Waypoint], style: DemoStyle, rng: np.random.Generator,
             on_step: Callable[[float], None], settle: float = 0.5, unpark: bool = True) -> float:
    """Execute `plan`, calling `on_step(time)` after every physics step; returns the duration, s.

    With `unpark` an arm first moves from its park pose to its ready pose; pass False when the arm
    already stands elsewhere (e.g. at home).
    """
    tracker = Tracker(scene, rng, style)
    hand = scene.mocap_id >= 0
    clock = {"t": 0.0, "n": 0}
    opening = 1.0

    lateral = _push_lateral(scene, plan)
    if hand and lateral is not None:  # fingers lead the push, the curled fingertips form the pusher
        yaw = math.atan2(lateral[0], -lateral[1])
        tracker.hand_quat = np.array([math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)])
        tracker.hand_rot = np.array([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0], [0, 0, 1]])

    def advance(target: np.ndarray | None, grip: float) -> None:
        if target is None:  # joint-space motion already commanded
            pass
        elif hand:
            tracker.place_hand(target, clock["t"])
        elif clock["n"] % CONTROL_EVERY == 0:
            tracker.track(target, CONTROL_EVERY * TIMESTEP, lateral)
        scene.command_gripper(grip)
        scene.step()
        clock["t"] += TIMESTEP
        clock["n"] += 1
        on_step(clock["t"])

    if unpark:
        _unpark(scene, advance_joints=lambda: advance(None, opening))
    current = tracker.tool_position()
    for waypoint in plan:
        if waypoint.action == "push":
            current = _push(scene, current, waypoint, advance)
            continue
        if waypoint.action == "lift":  # straight up from wherever the last segment ended
            waypoint = Waypoint(current + waypoint.position, waypoint.gripper, waypoint.speed)
        distance = float(np.linalg.norm(waypoint.position - current))
        duration = max(0.25, distance / waypoint.speed)
        steps = int(math.ceil(duration / TIMESTEP))
        bump = style.arc if distance > 0.05 else 0.0
        for i in range(1, steps + 1):
            s = min_jerk(i / steps)
            target = current + s * (waypoint.position - current) + [0, 0, bump * math.sin(math.pi * s)]
            advance(target, opening + s * (waypoint.gripper - opening))
        current, opening = target, waypoint.gripper
        if waypoint.action == "grasp":
            scene.grasp()
        elif waypoint.action == "release":
            scene.release()
        for _ in range(int(waypoint.pause / TIMESTEP)):
            advance(current, opening)
    for _ in range(int(settle / TIMESTEP)):
        advance(current, opening)
    return clock["t"]


def _unpark(scene: SimScene, advance_joints: Callable[[], None]) -> None:
    """Joint-space minimum-jerk move from the park pose to the ready pose (arms whose poses differ)."""
    park, home = np.array(scene.embodiment.park, float), np.array(scene.embodiment.home, float)
    if len(park) == 0 or np.allclose(park, home):
        return
    duration = max(0.5, float(np.max(np.abs(home - park))) / (0.6 * scene.speed_limit))
    steps = int(math.ceil(duration / TIMESTEP))
    for i in range(1, steps + 1):
        scene.command_arm_position(park + min_jerk(i / steps) * (home - park))
        advance_joints()
    scene.command_arm(np.zeros(len(home)))


def _push_lateral(scene: SimScene, plan: list[Waypoint]) -> np.ndarray | None:
    """For a sweep, the horizontal unit axis across the push direction; None for other tasks."""
    pushes = [i for i, w in enumerate(plan) if w.action == "push"]
    if not pushes:
        return None
    direction = plan[pushes[0]].position - plan[pushes[0] - 1].position
    return np.array([-direction[1], direction[0], 0.0]) / np.linalg.norm(direction[:2])


def _push(scene: SimScene, start: np.ndarray, waypoint: Waypoint, advance: Callable) -> np.ndarray:
    """Push along the straight line to `waypoint.position` until the item's centre reaches the target.

    Returns the last tool target.
    """
    d = scene.data
    line = waypoint.position - start
    steps = int(math.ceil(np.linalg.norm(line) / waypoint.speed / TIMESTEP))
    target = start
    for i in range(1, steps + 1):
        if np.linalg.norm(d.body("item").xpos[:2] - d.body("target").xpos[:2]) < 0.006:
            break
        target = start + line * (i / steps)
        advance(target, waypoint.gripper)
    return target
