"""`tracegen execute`: play a predicted 3D trace on a serial arm (or show the plan with --dry-run)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from tracegen_cli.console import console, err_console, progress, settings

GRIPPER_HELP = "auto (co-motion of object and gripper points), open, closed, or a schedule like 'close@12,open@30'."


def _parse_joints(text: str | None):
    if text is None:
        return None
    import numpy as np

    try:
        values = np.array([float(x) for x in text.split(",")], dtype=np.float64)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not comma-separated radians", param_hint="--start-joints") from None
    if values.shape != (6,):
        raise typer.BadParameter(f"{text!r} has {values.size} values; give 5 arm joints and the gripper", param_hint="--start-joints")
    return values


def _gripper_setting(value: str) -> str:
    if value in ("auto", "open", "closed") or "@" in value:
        return value
    raise typer.BadParameter(f"{value!r}; use {GRIPPER_HELP}", param_hint="--gripper")


def _parse_hypothesis(text: str) -> int | None:
    if text == "auto":
        return None
    if not text.isdigit():
        raise typer.BadParameter(f"{text!r}; give a hypothesis index (0, 1, ...) or auto", param_hint="--hypothesis")
    return int(text)


def _load_mask(path: Path | None):
    """A (400,) bool mask of the trace points on the gripper from a .npy of bools or of point indices."""
    if path is None:
        return None
    import numpy as np

    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"{path} is not a readable .npy ({exc})", param_hint="--gripper-mask") from None
    if values.dtype == bool:
        return values
    mask = np.zeros(400, dtype=bool)
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer) or values.size and (values.min() < 0 or values.max() >= 400):
        raise typer.BadParameter(f"{path} holds neither 400 bools nor grid indices 0..399", param_hint="--gripper-mask")
    mask[values] = True
    return mask


def _plan_table(prepared):
    from rich.table import Table

    waypoints = prepared.plan.waypoints
    table = Table(title=f"plan: {prepared.plan.duration:.2f} s, {len(prepared.plan.times)} rows, mode {prepared.plan.mode}")
    for column in ("step", "t (s)", "goal x,y,z (mm)", *(f"{n} (°)" for n in prepared.motor_names[:-1]), "gripper (rad)", "IK (mm)"):
        table.add_column(column, justify="right")
    for i in [int(i) for i in waypoints.key.nonzero()[0]]:
        table.add_row(
            "approach" if waypoints.step[i] < 0 else str(int(waypoints.step[i])), f"{waypoints.time[i]:.2f}",
            ", ".join(f"{1000 * v:.0f}" for v in waypoints.position[i]),
            *(f"{math.degrees(a):.1f}" for a in waypoints.joints[i]), f"{waypoints.gripper[i]:.2f}", f"{1000 * waypoints.position_error[i]:.2f}",
        )
    return table


def _show(prepared) -> None:
    if not settings.quiet:
        console.print(_plan_table(prepared))
    if prepared.hypotheses > 1:
        console.print(f"hypothesis {prepared.hypothesis} of the trace's {prepared.hypotheses}", highlight=False)
    for index, reason in enumerate(prepared.refused):
        console.print(f"[yellow]hypothesis {index} refused:[/] {reason}", highlight=False, soft_wrap=True)
    for check in prepared.checks:
        console.print(f"[green]✓[/] {check}")
    offset_mm = 1000 * float((prepared.plan.control_offset**2).sum() ** 0.5)
    console.print(f"[green]all safety checks passed[/] ({prepared.plan.followed.sum()} trace points followed, "
                  f"{prepared.plan.rotation_steps} steps with rotation; goals steer a point {offset_mm:.0f} mm from the tool tip)")


def _save_plan(path: Path, prepared) -> None:
    import numpy as np

    np.savez(path, times=prepared.plan.times, joints=prepared.plan.joints, motor_names=np.array(prepared.motor_names),
             hypothesis=prepared.hypothesis)
    console.print(f"plan written to {path}")


def execute_command(
    trace: Annotated[Path, typer.Argument(help="Trace .npz written by `tracegen predict`.")],
    camera_to_base: Annotated[Path, typer.Option("--camera-to-base", help="Camera-to-base calibration JSON.")],
    robot: Annotated[str, typer.Option("--robot", help="Arm type: so101 (the arm with a kinematic table).")] = "so101",
    port: Annotated[str | None, typer.Option("--port", help="Serial port or URL (/dev/ttyACM0, an emulator's pty).")] = None,
    calibration: Annotated[Path | None, typer.Option("--calibration", help="Arm calibration JSON (tracegen robot calibrate).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan and check only; open no port.")] = False,
    speed: Annotated[float, typer.Option("--speed", help="Tool cruise speed, m/s.")] = 0.03,
    gripper: Annotated[str, typer.Option("--gripper", help=GRIPPER_HELP)] = "auto",
    mode: Annotated[str, typer.Option("--mode", help="gripper: follow the gripper's points; object: grasp the moving object from above and carry it, level, along its path (or push it there when the trace slides it over the table, or pull it by its front when something stands behind it, as a drawer's cabinet).")] = "gripper",
    confirm: Annotated[bool, typer.Option("--confirm", help="Move without asking.")] = False,
    start_joints: Annotated[str | None, typer.Option("--start-joints", help="Dry run: the arm's pose, 6 comma-separated radians (default a ready pose).")] = None,
    rate: Annotated[float, typer.Option("--rate", help="Control-loop rate, Hz.")] = 100.0,
    baudrate: Annotated[int, typer.Option("--baudrate", help="Bus speed in bit/s.")] = 1_000_000,
    save_plan: Annotated[Path | None, typer.Option("--save-plan", help="Write the planned joint table (.npz).")] = None,
    gripper_mask: Annotated[Path | None, typer.Option("--gripper-mask", help="Gripper mode: .npy of the grid points on the gripper (400 bools or indices); default: points near the gripper in the image and within 5 cm of it in 3D.")] = None,
    return_to_start: Annotated[bool, typer.Option("--return-to-start", help="Afterwards move slowly back to the start pose (else torque is released at the end pose).")] = False,
    hypothesis: Annotated[str, typer.Option("--hypothesis", help="Which hypothesis of a trace predicted with --samples N to play: an index, or auto (the first whose plan passes every check).")] = "auto",
    floor: Annotated[float, typer.Option("--floor", help="Lowest tool height allowed, metres in the base frame (the workspace box's bottom); lower it only when the tool must work close to the table, e.g. to push.")] = 0.01,
) -> None:
    """Turn a 3D trace into arm motion: plan, check every limit, then move (after asking)."""
    from robot.control import ControlConfig
    from robot.execute import ExecuteConfig, prepare_dry_run
    from robot.plan_config import PlanConfig
    from robot.safety import SafetyLimits

    if mode not in ("gripper", "object"):
        raise typer.BadParameter(f"{mode!r}; use gripper or object", param_hint="--mode")
    plan = PlanConfig(mode=mode, gripper=_gripper_setting(gripper), speed=speed, gripper_mask=_load_mask(gripper_mask))
    ceiling = SafetyLimits().workspace_max
    if not -0.1 <= floor < ceiling[2]:
        raise typer.BadParameter(f"{floor} m; the floor must lie in [-0.1, {ceiling[2]}) m of the base frame", param_hint="--floor")
    limits = SafetyLimits(workspace_min=(*SafetyLimits().workspace_min[:2], floor))
    config = ExecuteConfig(robot=robot, plan=plan, control=ControlConfig(rate_hz=rate), start_joints=_parse_joints(start_joints),
                           return_to_start=return_to_start, limits=limits, hypothesis=_parse_hypothesis(hypothesis))
    if dry_run:
        prepared = prepare_dry_run(trace, camera_to_base, config)
        _show(prepared)
        if save_plan:
            _save_plan(save_plan, prepared)
        console.print("dry run: no port was opened")
        return
    if port is None:
        raise typer.BadParameter("give the arm's serial port (or --dry-run)", param_hint="--port")
    _run_on_arm(trace, camera_to_base, robot, port, calibration, baudrate, config, confirm, save_plan)


def _run_on_arm(trace, camera_to_base, robot, port, calibration, baudrate, config, confirm, save_plan) -> None:
    """Connect, plan from the present pose, show and confirm, move with a progress bar, report."""
    import contextlib

    from robot.arm import open_arm
    from robot.calibration import ArmCalibration
    from robot.execute import execute_on_arm

    if calibration is None:
        err_console.print("[yellow]warning:[/] no --calibration: using the nominal calibration (fine for the emulator only)")
    arm_calibration = ArmCalibration.load(calibration) if calibration else None

    def ask(prepared) -> bool:
        _show(prepared)
        if save_plan:
            _save_plan(save_plan, prepared)
        return confirm or typer.confirm(f"Move the {robot} on {port} along this plan?", default=False)

    with open_arm(robot, port, arm_calibration, baudrate=baudrate) as arm, contextlib.ExitStack() as stack:
        shown: dict = {}

        def show_progress(elapsed: float, duration: float) -> None:  # the bar starts once motion does
            if not shown:
                shown["bar"] = stack.enter_context(progress())
                shown["task"] = shown["bar"].add_task("moving", total=round(duration, 2))
            shown["bar"].update(shown["task"], completed=round(elapsed, 2))

        report = execute_on_arm(trace, camera_to_base, arm, config, ask, on_progress=show_progress)
    if report.control is None:
        console.print("not confirmed: nothing moved")
        raise typer.Exit(1)
    miss = 1000 * float(((report.final_tool - report.goal_tool) ** 2).sum() ** 0.5)
    console.print(
        f"[green]done[/]: {report.control.cycles} cycles in {report.control.duration:.2f} s "
        f"({report.control.rate_hz:.0f} Hz, {report.control.late_cycles} late), tool {miss:.1f} mm from the goal, "
        f"max tracking error {math.degrees(report.control.max_tracking_error):.2f}°, {report.control.retries} bus retries"
    )


def register(app: typer.Typer) -> None:
    app.command(name="execute")(execute_command)
