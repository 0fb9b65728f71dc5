"""From a predicted 3D trace to a timed joint plan.

trace (u, v, z) in the reference camera -> camera-frame 3D (intrinsics) -> base frame (camera-to-base)
-> the points to follow (on the gripper, or on the moving object: grasped and carried top-down, or
pushed where the trace slides it: `robot.object_mode`) -> tool waypoints (their weighted mean
displacement, plus a rotation only when enough well-spread points agree: `robot.trace_points`) -> joint
waypoints (warm-started IK) -> a table sampled at a fixed rate, re-timed by arc length with speed and
acceleration limits, with the gripper opened/closed by co-motion or a schedule (`robot.plan_config`).

Nothing here touches hardware; `robot.safety.check_plan` then vets the whole plan before motion.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from robot.camera_to_base import CameraToBase
from robot.comotion import comoving_points, gripper_closed_by_comotion, split_grasp_moves
from robot.errors import PlanningError
from robot.kinematics import SO101, KinematicChain, rotation_exp, rotation_log
from robot.object_mode import object_goals
from robot.plan_config import MODES, PlanConfig, gripper_joint, gripper_states
from robot.trace_points import (
    arm_points,
    follow_points,
    lift_trace,
    select_gripper_points,
)
from store.trace import TraceFile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Waypoints:
    """Tool waypoints and their IK solutions (N rows), as shown by `--dry-run`.

    Attributes:
        step: (N,) int trace step each waypoint leads to (-1 on the approach in object mode).
        key: (N,) bool, the waypoint is a trace step (the others were inserted to keep moves short).
        position: (N, 3) goal of the controlled point (`Plan.control_offset`) in the base frame, metres.
        joints: (N, n) IK solution, radians.
        gripper: (N,) gripper joint, radians.
        position_error: (N,) IK residual, metres.
        orientation_error: (N,) angle between the tool and its soft orientation goal, radians.
        time: (N,) when the plan passes the waypoint, seconds.
    """

    step: np.ndarray
    key: np.ndarray
    position: np.ndarray
    joints: np.ndarray
    gripper: np.ndarray
    position_error: np.ndarray
    orientation_error: np.ndarray
    time: np.ndarray


@dataclass(frozen=True)
class Plan:
    """A timed joint plan for the arm joints plus the gripper.

    Attributes:
        times: (T,) seconds from the start, at `sample_rate_hz`.
        joints: (T, n + 1) radians: the arm joints in chain order, then the gripper.
        waypoints: the IK waypoints the table interpolates.
        followed: (K,) bool, the trace points the tool follows.
        rotation_steps: trace steps where a rotation was followed.
        mode: "gripper" or "object".
        control_offset: (3,) the point the waypoints steer, in the tool frame, metres (in gripper
            mode where the followed points sit on the gripper; zero = the tool origin).
    """

    times: np.ndarray
    joints: np.ndarray
    waypoints: Waypoints
    followed: np.ndarray
    rotation_steps: int
    mode: str
    control_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))

    @property
    def duration(self) -> float:
        return float(self.times[-1])


def _densify(positions, rotations, gripper, steps, max_segment):
    """Insert waypoints so no tool move exceeds `max_segment`; rotations interpolate on SO(3).

    Inserted points carry the gripper joint of the segment's start; `key` marks the originals.
    """
    out_p, out_r, out_c, out_s, out_k = [positions[0]], [rotations[0]], [gripper[0]], [steps[0]], [True]
    for index in range(1, len(positions)):
        pieces = max(1, int(np.ceil(np.linalg.norm(positions[index] - positions[index - 1]) / max_segment)))
        relative = rotation_log(rotations[index] @ rotations[index - 1].T)
        for piece in range(1, pieces + 1):
            fraction = piece / pieces
            out_p.append(positions[index - 1] + fraction * (positions[index] - positions[index - 1]))
            out_r.append(rotation_exp(fraction * relative) @ rotations[index - 1])
            last = piece == pieces
            out_c.append(gripper[index] if last else gripper[index - 1])
            out_s.append(steps[index])
            out_k.append(last)
    return np.array(out_p), np.array(out_r), np.array(out_c), np.array(out_s), np.array(out_k)


def _trapezoid_arc(times: np.ndarray, length: float, speed: float, acceleration: float) -> np.ndarray:
    """Arc length reached at `times` by a rest-to-rest move with speed and acceleration limits."""
    peak = min(speed, np.sqrt(length * acceleration))
    ramp = peak / acceleration  # seconds to reach the peak speed
    duration = 2 * ramp + (length - peak * ramp) / peak
    t = np.clip(times, 0.0, duration)
    rising = 0.5 * acceleration * t**2
    cruising = 0.5 * peak * ramp + peak * (t - ramp)
    falling = length - 0.5 * acceleration * (duration - t) ** 2
    return np.where(t < ramp, rising, np.where(t <= duration - ramp, cruising, falling))


def _trapezoid_duration(length: float, speed: float, acceleration: float) -> float:
    peak = min(speed, np.sqrt(length * acceleration))
    return 0.0 if length <= 0 else 2 * peak / acceleration + (length - peak**2 / acceleration) / peak


def retime(joints: np.ndarray, tool: np.ndarray, gripper: np.ndarray, config: PlanConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample the waypoint path at `sample_rate_hz`, stopping with a dwell wherever the gripper changes.

    Path length per segment is max(tool distance, joint_length * largest joint change), so the tool
    never exceeds `speed` and the joints never exceed speed / joint_length.

    Args:
        joints: (N, n) waypoint joints, radians. tool: (N, 3) tool positions, metres.
        gripper: (N,) gripper joint after arriving at each waypoint, radians.
    Returns:
        ((T,) times in s, (T, n + 1) joints + gripper in radians, (N,) time at each waypoint in s).
    """
    rows = np.hstack([joints, gripper[:, None]])  # (N, n+1)
    seg = np.maximum(np.linalg.norm(np.diff(tool, axis=0), axis=1),
                     config.joint_length * np.abs(np.diff(joints, axis=0)).max(1, initial=0.0))  # (N-1,)
    arc = np.concatenate([[0.0], np.cumsum(seg)])  # (N,)
    dt = 1.0 / config.sample_rate_hz
    times, table, waypoint_time = [np.zeros(1)], [rows[:1]], np.zeros(len(rows))
    changes = {i for i in range(1, len(rows)) if gripper[i] != gripper[i - 1]}
    clock, start = 0.0, 0
    for stop in sorted(changes | {len(rows) - 1}):
        length = arc[stop] - arc[start]  # move start -> stop holding the gripper, rest to rest
        duration = _trapezoid_duration(length, config.speed, config.acceleration)
        if duration > 0:
            local = np.append(np.arange(dt, duration - 1e-9, dt), duration)  # (m,); none a rounding error before the end
            s = arc[start] + _trapezoid_arc(local, length, config.speed, config.acceleration)
            piece = np.stack([np.interp(s, arc[start:stop + 1], rows[start:stop + 1, j]) for j in range(rows.shape[1] - 1)], 1)
            times.append(clock + local)
            table.append(np.hstack([piece, np.full((len(local), 1), gripper[start])]))
            waypoint_time[start:stop + 1] = clock + np.interp(arc[start:stop + 1], s, local, left=0.0)
            clock += duration
        waypoint_time[stop] = clock
        if stop in changes:  # open or close at this pose, ramping the gripper during a dwell
            local = np.append(np.arange(dt, config.gripper_dwell - 1e-9, dt), config.gripper_dwell)
            ramp = gripper[stop - 1] + (local / config.gripper_dwell) * (gripper[stop] - gripper[stop - 1])
            times.append(clock + local)
            table.append(np.hstack([np.repeat(rows[stop:stop + 1, :-1], len(local), 0), ramp[:, None]]))
            clock += config.gripper_dwell
            waypoint_time[stop] = clock
        start = stop
    return np.concatenate(times), np.vstack(table), waypoint_time


def tool_goals(points: np.ndarray, trace: TraceFile, camera: CameraToBase, tool: np.ndarray, config: PlanConfig,
               on_arm: np.ndarray | None = None, approach: np.ndarray | None = None):
    """Waypoints before IK: goals of the controlled point (N, 3), tool rotations (N, 3, 3), gripper
    joint (N,) radians, trace step (N,) (-1 on the approach), the followed points (K,), the number of rotated
    steps, and the controlled point in the tool frame (3,). `on_arm` (K,) marks points on the arm's own
    links (`arm_points`): never taken for an object or for something held. `approach` (3,) is the way the
    tool points, in the tool frame (`approach_axis`; default its -z): a push points it straight down.

    Gripper mode controls the point on the gripper where the followed points are (their weighted
    centroid), so the arm reproduces what the trace shows there even when the tool turns and the
    rotation cannot be estimated; object mode is `robot.object_mode.object_goals`.
    """
    steps = points.shape[1]
    on_arm = np.zeros(points.shape[0], dtype=bool) if on_arm is None else on_arm
    if config.mode == "object":
        return object_goals(points, trace, camera, tool, config, on_arm,
                            np.array([0.0, 0.0, -1.0]) if approach is None else approach)
    weights = select_gripper_points(trace, camera, tool[:3, 3], config)
    seen = (weights > 0) & np.isfinite(points[:, 0]).all(1)
    if not seen.any():
        raise PlanningError("none of the trace points on the gripper has a depth at the start; re-predict with depth")
    anchor = (weights[seen] @ points[seen, 0]) / weights[seen].sum()  # (3,) base frame
    path, relative, rotated = follow_points(points, weights, anchor, config)
    wide = PlanConfig(gripper_radius_px=1.5 * config.gripper_radius_px, gripper_depth_tolerance=config.gripper_depth_tolerance,
                      gripper_radius_m=config.gripper_radius_m)  # the links are `on_arm`: objects may come close
    fringe = (select_gripper_points(trace, camera, tool[:3, 3], wide) > 0) | on_arm
    held = comoving_points(points, ~(weights > 0) & ~fringe, path, config)
    closed = gripper_states(steps, config, gripper_closed_by_comotion(held, path, config))
    source = np.arange(steps)
    if config.gripper == "auto":  # close and open where the carrying starts and ends, inside a trace step
        path, closed, source = split_grasp_moves(points, held, closed, path, config)
    offset = tool[:3, :3].T @ (anchor - tool[:3, 3])  # (3,) tool frame
    return path, relative[source] @ tool[:3, :3], gripper_joint(closed, config), source, weights > 0, rotated, offset


def approach_axis(chain: KinematicChain, joints: np.ndarray) -> np.ndarray:
    """(3,) unit vector the tool points along, in the tool frame: from the last joint to the tool point."""
    frames, tool = chain.joint_frames(joints)
    pointing = tool[:3, 3] - frames[-1, :3, 3]
    return tool[:3, :3].T @ pointing / max(float(np.linalg.norm(pointing)), 1e-9)


def plan_trace(
    trace: TraceFile,
    camera: CameraToBase,
    start_joints: np.ndarray,
    config: PlanConfig = PlanConfig(),
    chain: KinematicChain = SO101,
) -> Plan:
    """Turn a 3D trace into a timed joint plan starting from the arm's present pose.

    Args:
        trace: the predicted trace (must have depth).
        camera: the reference camera's pose in the base frame.
        start_joints: (n + 1,) present joints then gripper, radians.
        config: planning settings.
        chain: the arm's kinematics.
    Returns:
        The `Plan` (not yet safety-checked: see `robot.safety.check_plan`).
    """
    if config.mode not in MODES:
        raise PlanningError(f"mode {config.mode!r} is unknown; use one of {', '.join(MODES)}")
    if config.carry_orientation not in ("down", "start"):
        raise PlanningError(f"carry orientation {config.carry_orientation!r} is unknown; use down or start")
    if config.speed <= 0 or config.acceleration <= 0:
        raise PlanningError(f"speed {config.speed} m/s and acceleration {config.acceleration} m/s^2 must be positive")
    start_joints = np.asarray(start_joints, dtype=np.float64)
    if start_joints.shape != (chain.num_joints + 1,) or not np.isfinite(start_joints).all():
        raise PlanningError(f"start joints {start_joints.tolist()} must be {chain.num_joints} arm joints plus the gripper")
    points = lift_trace(trace, camera)  # (K, S, 3)
    tool = chain.forward(start_joints[:-1])
    on_arm = arm_points(points, chain, start_joints[:-1], config.arm_clearance)
    positions, rotations, gripper, steps, followed, rotated, offset = tool_goals(
        points, trace, camera, tool, config, on_arm, approach_axis(chain, start_joints[:-1]))
    positions, rotations, gripper, steps, key = _densify(positions, rotations, gripper, steps, config.max_segment)
    results = chain.inverse_path(positions, start_joints[:-1], rotations, config.ik, offset)
    # Row 0 is the present pose; the gripper ramps from its present opening during a dwell if needed.
    joints = np.vstack([start_joints[:-1], [r.joints for r in results]])  # (N+1, n)
    gripper = np.concatenate([[start_joints[-1]], gripper])
    tool_path = np.vstack([tool[:3, :3] @ offset + tool[:3, 3], positions])  # (N+1, 3) controlled point
    times, table, waypoint_time = retime(joints, tool_path, gripper, config)
    waypoints = Waypoints(
        step=steps, key=key, position=positions, joints=joints[1:], gripper=gripper[1:],
        position_error=np.array([r.position_error for r in results]),
        orientation_error=np.array([r.orientation_error for r in results]), time=waypoint_time[1:],
    )
    log.info("planned %d waypoints over %.2f s; %d of %d steps rotate", len(steps), times[-1], rotated, points.shape[1] - 1)
    return Plan(times, table, waypoints, followed, rotated, config.mode, offset)
