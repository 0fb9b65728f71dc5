"""The library entry of `tracegen execute`: load a trace, plan, check, then dry-run or run.

    prepared = prepare_dry_run("trace.npz", "cam.json", ExecuteConfig())     # opens no port
    report = execute_on_arm("trace.npz", "cam.json", "/dev/ttyACM0", "arm.json", ExecuteConfig(),
                            confirm=lambda prepared: True)

`execute_on_arm` connects, reads the present pose, plans from it, checks the whole plan (raising
`SafetyError` before any byte that moves the arm is sent), asks `confirm`, enables torque and plays
the plan; any fault or Ctrl-C ends in a safe stop (hold, slow move to rest, torque off).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from robot.camera_to_base import CameraToBase
from robot.control import ControlConfig, ControlResult, move_slowly, run_plan
from robot.errors import PlanningError, RobotError, SafetyError
from robot.kinematics import SO101
from robot.plan_config import PlanConfig
from robot.planning import Plan, plan_trace
from robot.safety import SafetyLimits, check_calibrated_ranges, check_plan
from store.trace import NUM_POINTS, TRACE_LENGTH, TraceFile, grid_points, load_trace_file, project

log = logging.getLogger(__name__)

READY_POSE = np.array([0.0, -1.0, 1.0, 0.5, 0.0, 1.0])
"""Arm joints (radians, chain order) then gripper: an elbow-up pose with the gripper in front and open;
`--dry-run` plans from it unless told the arm's pose."""

PLANNABLE_ROBOTS = ("so101",)  # arms whose kinematic table we have (`robot/so101.py`)


@dataclass(frozen=True)
class ExecuteConfig:
    """Everything `tracegen execute` decides.

    Attributes:
        robot: arm type (its kinematic table must be known: so101).
        plan: trace-to-motion settings.
        limits: the safety limits every plan must pass.
        control: control-loop settings.
        start_joints: (n + 1,) pose a dry run plans from, radians; default `READY_POSE`.
        return_to_start: after the plan, move slowly back to the pose the arm started from (else the
            arm stays at the plan's end until the driver releases torque on disconnect).
        hypothesis: which of a trace file's hypotheses (`tracegen predict --samples N`) to play: an
            index, or None for the first whose plan passes every check (each is planned and checked in
            turn; nothing moves before one has passed).
    """

    robot: str = "so101"
    plan: PlanConfig = field(default_factory=PlanConfig)
    limits: SafetyLimits = field(default_factory=SafetyLimits)
    control: ControlConfig = field(default_factory=ControlConfig)
    start_joints: np.ndarray | None = None
    return_to_start: bool = False
    hypothesis: int | None = None


@dataclass(frozen=True)
class PreparedPlan:
    """A checked plan and what it came from.

    Attributes:
        plan: the timed joint plan.
        checks: one line per safety check passed.
        trace: the trace file.
        camera: the camera-to-base calibration.
        motor_names: the plan's columns.
        hypothesis: the index of the trace file's hypothesis the plan follows (0 without `samples`).
        hypotheses: how many the file holds.
        refused: why each earlier hypothesis was refused, in order (when chosen automatically).
    """

    plan: Plan
    checks: list[str]
    trace: TraceFile
    camera: CameraToBase
    motor_names: tuple[str, ...]
    hypothesis: int = 0
    hypotheses: int = 1
    refused: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExecutionReport:
    """The outcome of `execute_on_arm`.

    Attributes:
        prepared: the plan that was (or would have been) played.
        control: the control loop's result, None when not confirmed.
        final_tool: (3,) FK of the read-back joints at the end, metres; None when not run.
        goal_tool: (3,) the plan's last tool position, metres.
        motion_packets: packets that could move the arm sent during the run.
    """

    prepared: PreparedPlan
    control: ControlResult | None
    final_tool: np.ndarray | None
    goal_tool: np.ndarray
    motion_packets: int


def prepare_plan(trace_path: str | Path, camera_path: str | Path, start_joints: np.ndarray, config: ExecuteConfig,
                 joint_ranges=None) -> PreparedPlan:
    """Load, plan from `start_joints` (n + 1 radians) and check (against the servos' calibrated `joint_ranges`
    too, when given); raises on the first violation, or when every hypothesis tried was refused."""
    if config.robot not in PLANNABLE_ROBOTS:
        raise PlanningError(f"no kinematics for robot {config.robot!r}; execute supports {', '.join(PLANNABLE_ROBOTS)}")
    trace = load_trace_file(trace_path)
    camera = CameraToBase.load(camera_path)
    names = (*SO101.joint_names, "gripper")
    count = 1 if trace.samples is None else len(trace.samples)
    if count < 1:
        raise PlanningError(f"{trace_path} holds no hypotheses (its samples array is empty); predict again")
    if config.hypothesis is not None and not 0 <= config.hypothesis < count:
        raise PlanningError(f"hypothesis {config.hypothesis} does not exist: {trace_path} holds {count} (0..{count - 1}); "
                            "predict more with --samples, or pick one it has")
    order = range(count) if config.hypothesis is None else [config.hypothesis]
    refused: list[RobotError] = []
    for index in order:
        chosen = trace if trace.samples is None else replace(trace, traj=trace.samples[index])
        try:
            plan = plan_trace(chosen, camera, start_joints, config.plan, SO101)
            checks = check_plan(plan, config.limits, SO101, names)
            if joint_ranges is not None:  # the driver refuses goals outside these: find them before moving
                checks.append(check_calibrated_ranges(plan, joint_ranges, names))
        except (PlanningError, SafetyError) as exc:
            refused.append(exc)
            log.info("hypothesis %d refused: %s", index, exc)
            continue
        reasons = tuple(str(exc).strip().splitlines()[0] for exc in refused)
        return PreparedPlan(plan, checks, chosen, camera, names, index, count, reasons)
    if len(refused) == 1:
        raise refused[0]
    raise type(refused[0])(f"all {len(refused)} hypotheses were refused; the first: {refused[0]}") from refused[0]


def prepare_dry_run(trace_path: str | Path, camera_path: str | Path, config: ExecuteConfig) -> PreparedPlan:
    """The checked plan from `config.start_joints` (or `READY_POSE`), touching no hardware."""
    start = READY_POSE if config.start_joints is None else np.asarray(config.start_joints, dtype=np.float64)
    return prepare_plan(trace_path, camera_path, start, config)


def execute_on_arm(
    trace_path: str | Path,
    camera_path: str | Path,
    arm,
    config: ExecuteConfig,
    confirm: Callable[[PreparedPlan], bool],
    on_progress: Callable[[float, float], None] | None = None,
) -> ExecutionReport:
    """Plan from the arm's present pose, check, confirm, then play the plan.

    Args:
        trace_path: the trace `.npz`.
        camera_path: the camera-to-base JSON.
        arm: a connected `robot.arm.Arm` whose motors are the chain's joints then "gripper".
        config: execute settings.
        confirm: called with the checked plan; motion starts only when it returns True.
        on_progress: called as (elapsed s, plan duration s) every few control cycles (a progress bar).
    Returns:
        The `ExecutionReport` (control is None when not confirmed).
    """
    names = (*SO101.joint_names, "gripper")
    if tuple(arm.motor_names) != names:
        raise RobotError(f"arm motors {tuple(arm.motor_names)} do not match the kinematic chain {names}; use --robot so101")
    packets_before = int(arm.write_count)
    present = arm.read_positions()  # (n + 1,) radians
    calibration = getattr(arm, "calibration", None)
    ranges = None if calibration is None else calibration.limits_radians(names)
    prepared = prepare_plan(trace_path, camera_path, present, config, ranges)
    goal_tool = SO101.forward(prepared.plan.joints[-1, :-1])[:3, 3]
    if not confirm(prepared):
        return ExecutionReport(prepared, None, None, goal_tool, int(arm.write_count) - packets_before)
    arm.set_torque(True)
    result = run_plan(arm, prepared.plan.times, prepared.plan.joints, config.control, rest=present, on_progress=on_progress)
    final_tool = SO101.forward(result.final_positions[:-1])[:3, 3]
    if config.return_to_start:
        move_slowly(arm, result.final_positions, present, config.control)
    log.info("done: tool %.1f mm from the goal, %.0f Hz", 1000 * np.linalg.norm(final_tool - goal_tool), result.rate_hz)
    return ExecutionReport(prepared, result, final_tool, goal_tool, int(arm.write_count) - packets_before)


def synthetic_gripper_trace(
    start_joints: np.ndarray,
    camera: CameraToBase,
    displacement_camera: np.ndarray,
    steps: int = 32,
    image_size: tuple[int, int] = (480, 640),
    focal: float = 600.0,
    gripper_radius_px: float = 40.0,
    background_depth: float = 0.25,
    object_offset_px: tuple[float, float] | None = None,
    grasp_step: int | None = None,
) -> TraceFile:
    """A trace whose gripper points move a known 3D displacement (for tests, benchmarks, self-checks).

    The grid points within `gripper_radius_px` of the tool projected into the image lie on the gripper
    (at its depth) and translate by `displacement_camera` along a smooth ramp; the others lie on a
    static background `background_depth` metres behind. Optionally an object patch at
    `object_offset_px` from the gripper starts moving with it at `grasp_step`.

    Args:
        start_joints: (n + 1,) the arm's pose when the "image" was taken, radians.
        camera: the camera's pose in the base frame.
        displacement_camera: (3,) the gripper's motion in the camera frame, metres.
        steps: trace steps after the start.
    Returns:
        A `TraceFile` with `steps + 1` valid steps.
    """
    height, width = image_size
    intrinsics = np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]], dtype=np.float32)
    tool_camera = camera.to_camera(SO101.forward(np.asarray(start_joints)[:-1])[:3, 3])
    u0, v0, z0 = project(tool_camera, intrinsics)
    grid = grid_points(width, height).astype(np.float64)  # (K, 2)
    on_gripper = np.hypot(grid[:, 0] - u0, grid[:, 1] - v0) <= gripper_radius_px
    depth = np.where(on_gripper, z0, z0 + background_depth)  # (K,)
    start = np.stack([(grid[:, 0] - intrinsics[0, 2]) * depth / focal, (grid[:, 1] - intrinsics[1, 2]) * depth / focal, depth], 1)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(steps + 1) / steps)  # (S,) smooth 0 -> 1
    moving = np.zeros((NUM_POINTS, steps + 1))
    moving[on_gripper] = ramp
    if object_offset_px is not None:
        patch = np.hypot(grid[:, 0] - u0 - object_offset_px[0], grid[:, 1] - v0 - object_offset_px[1]) <= gripper_radius_px
        patch &= ~on_gripper
        start[patch] *= z0 / start[patch, 2:3]  # the object stands at the gripper's depth
        grasp = grasp_step or 0
        moving[patch] = np.where(np.arange(steps + 1) >= grasp, ramp - ramp[grasp], 0.0)
    points = start[:, None, :] + moving[..., None] * np.asarray(displacement_camera)  # (K, S, 3)
    traj = np.full((NUM_POINTS, TRACE_LENGTH, 3), np.nan, dtype=np.float32)
    traj[:, : steps + 1] = project(points, intrinsics)
    valid = np.zeros(TRACE_LENGTH, dtype=bool)
    valid[: steps + 1] = True
    return TraceFile(traj, valid, intrinsics, (height, width), "move the gripper (synthetic)", "synthetic")


def synthetic_tabletop_trace(
    object_path: np.ndarray,
    camera: CameraToBase,
    centre: tuple[float, float] = (0.2, 0.0),
    surface_height=None,
    object_height: float = 0.03,
    image_size: tuple[int, int] = (480, 640),
    focal: float = 600.0,
) -> tuple[TraceFile, np.ndarray]:
    """A trace of an object on a table (for tests and benchmarks of object mode): a 20x20 grid of still points
    on a surface around `centre`, the four nearest it being the top of an object `object_height` tall that
    moves by `object_path`.

    Args:
        object_path: (S, 3) the object's positions in the base frame, metres (only its motion counts; S <= 33).
        camera: the camera's pose in the base frame.
        centre: (2,) where the object stands, base frame, metres.
        surface_height: height of the surface at base-plane points, `f(x, y) -> z` (default: the base plane).
    Returns:
        (the trace with S valid steps, (4,) indices of the object's points).
    """
    height_at = surface_height or (lambda x, y: np.zeros_like(x))
    x, y = np.meshgrid(np.linspace(-0.12, 0.12, 20) + centre[0], np.linspace(-0.12, 0.18, 20) + centre[1])
    start = np.stack([x.ravel(), y.ravel(), height_at(x.ravel(), y.ravel())], axis=1)  # (400, 3)
    block = np.argsort(np.hypot(start[:, 0] - centre[0], start[:, 1] - centre[1]))[:4]
    start[block, 2] += object_height
    points = np.repeat(start[:, None], len(object_path), axis=1)  # (400, S, 3)
    points[block] += object_path[None] - object_path[0]
    height, width = image_size
    intrinsics = np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]], dtype=np.float32)
    traj = np.full((NUM_POINTS, TRACE_LENGTH, 3), np.nan, dtype=np.float32)
    traj[:, : len(object_path)] = project(np.stack([camera.to_camera(step) for step in points.transpose(1, 0, 2)], axis=1), intrinsics)
    valid = np.zeros(TRACE_LENGTH, dtype=bool)
    valid[: len(object_path)] = True
    return TraceFile(traj, valid, intrinsics, image_size, ""), block
