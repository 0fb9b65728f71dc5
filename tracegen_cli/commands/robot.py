"""`tracegen robot`: serial-arm helpers: list ports, ping servos, record a calibration, run an emulator."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tracegen_cli.console import console, err_console, progress, settings

ROBOTS = ("so101", "so100", "koch")

robot_app = typer.Typer(help="Serial-arm helpers: ports, ping, set-id, calibrate, camera-to-base, emulate.", no_args_is_help=True)

RobotOption = Annotated[str, typer.Option("--robot", help=f"Arm type: {', '.join(ROBOTS)}.")]
PortOption = Annotated[str, typer.Option("--port", help="Serial port or URL: /dev/ttyACM0, an emulator's pty path.")]
BaudOption = Annotated[int, typer.Option("--baudrate", help="Bus speed in bit/s.")]


def _check_robot(robot: str) -> str:
    if robot not in ROBOTS:
        raise typer.BadParameter(f"unknown robot {robot!r}; use one of {', '.join(ROBOTS)}", param_hint="--robot")
    return robot


@robot_app.command("ports")
def ports_command() -> None:
    """List serial ports; known servo adapters (CH343, CH340, U2D2, ...) first."""
    from rich.table import Table

    from robot.ports import list_serial_ports

    ports = list_serial_ports()
    if not ports:
        console.print("no serial ports found; plug in the arm's USB adapter (or run `tracegen robot emulate`)")
        return
    table = Table("device", "description", "vid:pid", "serial", "servo adapter")
    for port in ports:
        table.add_row(port.device, port.description, port.vid_pid, port.serial_number, port.adapter or "-")
    console.print(table)


@robot_app.command("ping")
def ping_command(
    robot: RobotOption = "so101",
    port: PortOption = ...,
    baudrate: BaudOption = 1_000_000,
    scan: Annotated[bool, typer.Option("--scan", help="Find which IDs answer (1..--max-id), whatever the arm.")] = False,
    max_id: Annotated[int, typer.Option("--max-id", min=1, max=252, help="Highest ID tried by --scan.")] = 20,
) -> None:
    """Ping every servo of the arm: ID, model number and raw position in a table (or --scan the bus)."""
    from rich.markup import escape
    from rich.table import Table

    from robot.arm import ping_motors
    from robot.errors import RobotError
    from robot.protocol.tables import MODEL_NAMES

    if scan:
        _scan(_check_robot(robot), port, baudrate, max_id)
        return
    reports = ping_motors(_check_robot(robot), port, baudrate=baudrate)
    table = Table("motor", "id", "model", "position (raw)", "status", title=f"{robot} on {port}")
    for r in reports:
        model = f"{r.model} ({MODEL_NAMES.get(r.model, '?')})" if r.model is not None else "-"
        position = str(r.position_raw) if r.position_raw is not None else "-"
        status = "[green]ok[/]" if not r.problem else f"[red]{escape(r.problem)}[/]"
        table.add_row(r.name, str(r.servo_id), model, position, status)
    console.print(table)
    bad = [r for r in reports if r.problem]
    if bad:
        names = ", ".join(f"{r.name} (id {r.servo_id})" for r in bad)
        raise RobotError(f"{len(bad)} of {len(reports)} servos failed: {names}; check power, IDs and --robot")


def _scan(robot: str, port: str, baudrate: int, max_id: int) -> None:
    from rich.table import Table

    from robot.arm import ARM_SPECS
    from robot.bus import BusConfig, MotorBus
    from robot.errors import RobotError
    from robot.protocol.tables import MODEL_NAMES

    spec = ARM_SPECS[robot]
    expected = {servo_id: name for name, (servo_id, _) in spec.motors.items()}
    with MotorBus(port, spec.protocol, BusConfig(baudrate=baudrate, timeout_s=0.01)) as bus:
        found = bus.scan(range(1, max_id + 1))
    if not found:
        raise RobotError(
            f"no {spec.protocol} servo answered on {port} at {baudrate} baud (IDs 1..{max_id}); "
            "check power, --baudrate and --robot"
        )
    table = Table("id", "model", f"{robot} motor at this id", title=f"{spec.protocol} servos on {port}")
    for servo_id, model in found.items():
        table.add_row(str(servo_id), f"{model} ({MODEL_NAMES.get(model, '?')})", expected.get(servo_id, "-"))
    console.print(table)


@robot_app.command("set-id")
def set_id_command(
    motor: Annotated[str, typer.Argument(help="Motor to set up, e.g. elbow_flex (its ID comes from --robot).")],
    robot: RobotOption = "so101",
    port: PortOption = ...,
    baudrate: BaudOption = 1_000_000,
) -> None:
    """Give the ONE servo attached to the adapter the ID of MOTOR (set up a new arm servo by servo)."""
    from robot.arm import assign_motor_id

    old, new = assign_motor_id(_check_robot(robot), port, motor, baudrate=baudrate)
    console.print(f"{motor}: ID {old} -> {new}" if old != new else f"{motor}: already ID {new}", highlight=False)


@robot_app.command("calibrate")
def calibrate_command(
    robot: RobotOption = "so101",
    port: PortOption = ...,
    out: Annotated[Path, typer.Option("--out", help="Calibration JSON to write (LeRobot layout).")] = Path("arm.json"),
    duration: Annotated[float, typer.Option("--duration", min=0.1, help="Seconds to record.")] = 20.0,
    rate: Annotated[float, typer.Option("--rate", min=1.0, help="Position reads per second.")] = 50.0,
    baudrate: BaudOption = 1_000_000,
) -> None:
    """Release the arm and record each joint's range while you move it through its whole range."""
    from rich.table import Table

    from robot.arm import open_arm
    from robot.calibration import record_ranges

    if not settings.quiet:
        err_console.print(
            f"Torque goes off now. For the next {duration:g} s move EVERY joint slowly through its full range."
        )
    with open_arm(_check_robot(robot), port, baudrate=baudrate) as arm, progress() as bar:
        task = bar.add_task("recording", total=duration)
        calibration = record_ranges(arm, duration, rate, lambda elapsed, _: bar.update(task, completed=min(elapsed, duration)))
    calibration.save(out)
    table = Table("motor", "id", "range_min", "range_max", "span (deg)", "homing_offset", title=str(out))
    for name, motor in calibration.motors.items():
        span = (motor.range_max - motor.range_min) * 360 / 4095
        table.add_row(name, str(motor.id), str(motor.range_min), str(motor.range_max), f"{span:.0f}", str(motor.homing_offset))
    console.print(table)
    console.print(f"wrote {out}", highlight=False, soft_wrap=True)


@robot_app.command("camera-to-base")
def camera_to_base_command(
    poses: Annotated[Path, typer.Argument(help="Folder with poses.json and one camera image per arm pose.")],
    intrinsics: Annotated[str, typer.Option("--intrinsics", help="Camera intrinsics fx,fy,cx,cy in pixels.")],
    marker_length: Annotated[float, typer.Option("--marker-length", min=0.001, help="Side of the marker's black square, metres.")] = 0.06,
    marker_id: Annotated[int | None, typer.Option("--marker-id", help="ArUco id (DICT_4X4_50) on the gripper; default: the first seen.")] = None,
    method: Annotated[str, typer.Option("--method", help="cv2.calibrateHandEye method: park, tsai, horaud, andreff, daniilidis.")] = "park",
    out: Annotated[Path, typer.Option("--out", help="Camera-to-base JSON to write (`tracegen execute --camera-to-base`).")] = Path("camera_to_base.json"),
) -> None:
    """Solve where the fixed camera sits in the arm's base frame from an ArUco marker on the gripper.

    POSES/poses.json: {"joints": [[5 joint angles in radians (a 6th, the gripper, is ignored)], ...],
    "images": ["pose_00.png", ...]}: the joints read back at each pose and the image taken there.
    """
    import json

    import cv2
    import numpy as np

    from robot.camera_to_base import HAND_EYE_METHODS, hand_eye_from_observations
    from robot.errors import CameraCalibrationError
    from tracegen_cli.predict_inputs import PredictInputError, parse_intrinsics

    if method not in HAND_EYE_METHODS:
        raise CameraCalibrationError(f"--method {method!r} is unknown; use one of {', '.join(HAND_EYE_METHODS)}")
    listing = poses / "poses.json"
    try:
        recorded = json.loads(listing.read_text())
        joints, names = np.asarray(recorded["joints"], dtype=np.float64), list(recorded["images"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CameraCalibrationError(
            f"{listing} is missing or not {{\"joints\": [[radians...]...], \"images\": [names...]}} ({exc}); record one entry per pose"
        ) from exc
    images = []
    for name in names:
        image = cv2.imread(str(poses / name))
        if image is None:
            raise CameraCalibrationError(f"image {poses / name} listed in {listing} cannot be read; save the pose images as PNG or JPEG")
        images.append(image)
    height, width = images[0].shape[:2] if images else (0, 0)
    try:
        matrix, _ = parse_intrinsics(intrinsics, width, height)
    except PredictInputError as exc:
        raise CameraCalibrationError(str(exc)) from exc
    solved = hand_eye_from_observations(joints, images, matrix, marker_length, marker_id, method)
    solved.save(out)
    translation = solved.base_from_camera[:3, 3]
    console.print(
        f"camera at ({translation[0]:+.3f}, {translation[1]:+.3f}, {translation[2]:+.3f}) m in the base frame "
        f"from {solved.num_samples} poses (residual {solved.residual_m * 1000:.1f} mm); wrote {out}",
        highlight=False, soft_wrap=True,
    )


@robot_app.command("emulate")
def emulate_command(
    robot: RobotOption = "so101",
    faults: Annotated[
        str, typer.Option("--faults", help="Faults: KIND[@ID][*COUNT],... e.g. 'missing@3*2,overload@2'.")
    ] = "",
    speed: Annotated[float, typer.Option("--speed", min=1.0, help="Servo speed in raw steps per second.")] = 3000.0,
    wire_baudrate: Annotated[
        int, typer.Option("--wire-baudrate", min=0, help="Pace replies like a real bus at this speed (0 = instant).")
    ] = 0,
    duration: Annotated[
        float, typer.Option("--duration", min=0.0, help="Stop after this many seconds (0 = until Ctrl-C).")
    ] = 0.0,
) -> None:
    """Start a virtual arm on a pseudo-terminal, print its device path, and serve until Ctrl-C."""

    from robot.emulator import EMULATED_ROBOTS, KinematicServoBackend, start_emulator

    servo_ids = list(EMULATED_ROBOTS[_check_robot(robot)][1])
    backend = KinematicServoBackend(servo_ids, max_speed=speed)
    with start_emulator(robot, backend=backend, faults=faults or None, wire_baudrate=wire_baudrate or None) as handle:
        console.print(handle.url, highlight=False, soft_wrap=True)
        if not settings.quiet:
            err_console.print(
                f"emulating {robot} ({len(servo_ids)} servos) on {handle.url}; try "
                f"`tracegen robot ping --robot {robot} --port {handle.url}`; Ctrl-C stops",
                highlight=False,
                soft_wrap=True,
            )
        sys.stdout.flush()
        from tracegen_cli.serving import serve_until_interrupted

        serve_until_interrupted(duration)
        served = handle.emulator.instructions_received
    if not settings.quiet:
        err_console.print(f"emulator stopped after {served} instruction packets")


def register(app: typer.Typer) -> None:
    """Add the `robot` sub-app to the root CLI."""
    app.add_typer(robot_app, name="robot")
