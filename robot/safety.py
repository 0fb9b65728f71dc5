"""Safety as pure functions: vet a whole plan before motion, clamp every goal during motion.

`check_plan` runs every check over every row of the plan and raises a `SafetyError` naming the first
violation (which check, which row and time, which joint or axis, the value and the limit, and what to
change), so a bad plan is rejected before any byte that moves the arm is sent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot.errors import SafetyError
from robot.kinematics import SO101, KinematicChain
from robot.so101 import SO101_GRIPPER


@dataclass(frozen=True)
class SafetyLimits:
    """Limits every plan must respect.

    Attributes:
        max_ik_residual: largest distance between a waypoint and the tool's reachable pose, metres.
        joint_margin: keep arm joints this far inside their limits, radians.
        gripper_limit: (min, max) gripper joint, radians.
        workspace_min: (3,) lower corner of the box the tool must stay in (base frame), metres.
        workspace_max: (3,) upper corner, metres.
        max_joint_step: largest change of one joint between consecutive plan rows, radians.
        max_joint_speed: largest joint speed, rad/s.
        max_tool_speed: largest tool speed, m/s.
    """

    max_ik_residual: float = 0.005
    joint_margin: float = 0.02
    gripper_limit: tuple[float, float] = SO101_GRIPPER.limit  # type: ignore[assignment]
    workspace_min: tuple[float, float, float] = (-0.45, -0.45, 0.01)
    workspace_max: tuple[float, float, float] = (0.45, 0.45, 0.45)
    max_joint_step: float = 0.05
    max_joint_speed: float = 1.5
    max_tool_speed: float = 0.25


def clamp_step(goal: np.ndarray, present: np.ndarray, max_delta: float | np.ndarray) -> np.ndarray:
    """The goal moved no further than `max_delta` from the present position, per joint.

    Args:
        goal: (n,) wanted joints, radians.
        present: (n,) read-back joints, radians.
        max_delta: scalar or (n,) largest allowed change, radians (>= 0).
    Returns:
        (n,) goal clipped into [present - max_delta, present + max_delta].
    """
    present = np.asarray(present, dtype=np.float64)
    delta = np.asarray(max_delta, dtype=np.float64)
    if (delta < 0).any():
        raise SafetyError(f"max_delta {delta.tolist()} must be non-negative")
    return np.clip(np.asarray(goal, dtype=np.float64), present - delta, present + delta)


def _row(plan, index: int) -> str:
    return f"row {index} (t={plan.times[index]:.2f} s)"


def _check_ik(plan, limits: SafetyLimits) -> None:
    errors = plan.waypoints.position_error
    bad = np.flatnonzero(~(errors <= limits.max_ik_residual))
    if bad.size:
        i = bad[0]
        where = plan.waypoints.position[i]
        raise SafetyError(
            f"waypoint {i} (trace step {plan.waypoints.step[i]}) at {np.round(where, 3).tolist()} m is unreachable: "
            f"IK misses it by {errors[i] * 1000:.1f} mm > {limits.max_ik_residual * 1000:.1f} mm; "
            "the trace leaves the arm's reach: check --camera-to-base or move the scene closer"
        )


def _check_joint_limits(plan, limits: SafetyLimits, chain: KinematicChain, names) -> None:
    lower = np.append(chain.lower + limits.joint_margin, limits.gripper_limit[0])
    upper = np.append(chain.upper - limits.joint_margin, limits.gripper_limit[1])
    outside = (plan.joints < lower) | (plan.joints > upper) | ~np.isfinite(plan.joints)  # (T, n+1)
    if outside.any():
        row, joint = np.argwhere(outside)[0]
        value = plan.joints[row, joint]
        raise SafetyError(
            f"{_row(plan, row)}: {names[joint]} = {value:.3f} rad is outside [{lower[joint]:.3f}, {upper[joint]:.3f}] "
            "(joint limit with margin); the trace needs a pose the arm cannot take: shorten or re-aim it"
        )


def _check_workspace(plan, limits: SafetyLimits, tool: np.ndarray) -> None:
    low, high = np.asarray(limits.workspace_min), np.asarray(limits.workspace_max)
    outside = (tool < low) | (tool > high)  # (T, 3)
    if outside.any():
        row, axis = np.argwhere(outside)[0]
        low_z = axis == 2 and tool[row, axis] < low[axis]
        fix = "check --camera-to-base" + (", or lower --floor if the tool must really work that close to the table" if low_z else "")
        raise SafetyError(
            f"{_row(plan, row)}: the tool at {np.round(tool[row], 3).tolist()} m leaves the workspace box on "
            f"{'xyz'[axis]} ({tool[row, axis]:.4f} not in [{low[axis]:.4f}, {high[axis]:.4f}]); {fix}"  # 4 digits: a hair out shows
        )


def _check_steps_and_speed(plan, limits: SafetyLimits, tool: np.ndarray, names) -> None:
    step = np.abs(np.diff(plan.joints, axis=0))  # (T-1, n+1)
    if (step > limits.max_joint_step).any():
        row, joint = np.argwhere(step > limits.max_joint_step)[0]
        raise SafetyError(
            f"{_row(plan, row + 1)}: {names[joint]} jumps {step[row, joint]:.3f} rad in one row "
            f"> {limits.max_joint_step} rad; lower --speed or raise the sample rate"
        )
    dt = np.diff(plan.times)
    if (dt <= 0).any():
        raise SafetyError(f"{_row(plan, int(np.argmax(dt <= 0)) + 1)}: plan times do not increase; re-plan")
    joint_speed = step / dt[:, None]
    if (joint_speed > limits.max_joint_speed).any():
        row, joint = np.argwhere(joint_speed > limits.max_joint_speed)[0]
        raise SafetyError(
            f"{_row(plan, row + 1)}: {names[joint]} moves at {joint_speed[row, joint]:.2f} rad/s "
            f"> {limits.max_joint_speed} rad/s; lower --speed"
        )
    tool_speed = np.linalg.norm(np.diff(tool, axis=0), axis=1) / dt
    if (tool_speed > limits.max_tool_speed).any():
        row = int(np.argmax(tool_speed > limits.max_tool_speed))
        raise SafetyError(
            f"{_row(plan, row + 1)}: the tool moves at {tool_speed[row]:.3f} m/s > {limits.max_tool_speed} m/s; lower --speed"
        )


def check_calibrated_ranges(plan, ranges: np.ndarray, names: tuple[str, ...]) -> str:
    """Every plan row inside the servos' calibrated ranges (what the arm driver accepts).

    Args:
        plan: the plan (joints (T, n+1) radians).
        ranges: (n+1, 2) calibrated (low, high) radians per motor, in plan column order.
        names: motor names for messages.
    Returns:
        The line for the dry-run report.
    """
    ranges = np.asarray(ranges, dtype=np.float64)
    outside = (plan.joints < ranges[:, 0]) | (plan.joints > ranges[:, 1])  # (T, n+1)
    if outside.any():
        row, joint = np.argwhere(outside)[0]
        raise SafetyError(
            f"{_row(plan, row)}: {names[joint]} = {plan.joints[row, joint]:.3f} rad is outside its calibrated range "
            f"[{ranges[joint, 0]:.3f}, {ranges[joint, 1]:.3f}] rad; recalibrate over the full range or shorten the trace"
        )
    return "every goal inside the servos' calibrated ranges"


def check_plan(plan, limits: SafetyLimits = SafetyLimits(), chain: KinematicChain = SO101,
               motor_names: tuple[str, ...] | None = None) -> list[str]:
    """Vet a whole plan; raise on the first violation, before anything moves.

    Args:
        plan: a `robot.planning.Plan` (times (T,), joints (T, n+1), waypoints with IK residuals).
        limits: the limits to enforce.
        chain: the arm's kinematics (joint limits, FK for the workspace and tool speed).
        motor_names: names of the n+1 plan columns for messages.
    Returns:
        One line per check passed, for the dry-run report.
    """
    names = motor_names or (*chain.joint_names, "gripper")
    if plan.joints.ndim != 2 or plan.joints.shape[1] != len(names) or len(plan.times) != len(plan.joints):
        raise SafetyError(f"plan table has shape {plan.joints.shape} for {len(plan.times)} times; expected (T, {len(names)})")
    _check_ik(plan, limits)
    _check_joint_limits(plan, limits, chain, names)
    tool = np.array([chain.forward(row[: chain.num_joints])[:3, 3] for row in plan.joints])  # (T, 3)
    _check_workspace(plan, limits, tool)
    _check_steps_and_speed(plan, limits, tool, names)
    step = np.abs(np.diff(plan.joints, axis=0)).max(initial=0.0)
    dt = np.diff(plan.times)
    return [
        f"IK residual <= {limits.max_ik_residual * 1000:.1f} mm (worst {plan.waypoints.position_error.max(initial=0) * 1000:.2f} mm)",
        f"joint limits with {limits.joint_margin} rad margin",
        f"tool inside workspace {list(limits.workspace_min)} .. {list(limits.workspace_max)} m",
        f"per-row joint step <= {limits.max_joint_step} rad (worst {step:.4f} rad)",
        f"joint speed <= {limits.max_joint_speed} rad/s, tool speed <= {limits.max_tool_speed} m/s "
        f"(worst {np.linalg.norm(np.diff(tool, axis=0), axis=1).__truediv__(dt).max(initial=0):.3f} m/s)",
    ]
