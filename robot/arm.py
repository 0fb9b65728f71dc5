"""The device tier: an `Arm` (SO-100/SO-101 on Feetech STS, Koch on Dynamixel 2.0) over a MotorBus.

Positions are calibrated radians (see `robot/calibration.py`), in `motor_names` order: the arm joints
in chain order, then the gripper. `write_goals` is one SYNC_WRITE of Goal_Position.
Torque: `connect` changes no motion register; `set_torque(True)` first sets every goal to the present
position so enabling does not jump; `disconnect` turns torque off and closes the port.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from robot.bus import BusConfig, MotorBus
from robot.calibration import ROBOT_MOTORS, ArmCalibration
from robot.errors import (
    CalibrationError,
    ModelMismatchError,
    ProtocolError,
    RobotError,
    SafetyError,
    ServoTimeoutError,
)
from robot.protocol.tables import MODEL_NAMES, MODEL_NUMBERS

log = logging.getLogger(__name__)

POSITION_MODES = (3, 4, 5)  # Dynamixel X: position, extended position, current-based position
LOAD_SCALE = 1000.0  # Present_Load units: 0.1 % of max torque on both STS and X-series


@dataclass(frozen=True)
class ArmSpec:
    """What an arm is made of.

    Attributes:
        protocol: "feetech" or "dynamixel".
        motors: motor name -> (servo id, expected model number), chain order then gripper.
        watchdog_ticks: Dynamixel Bus_Watchdog value (x 20 ms) set on connect; 0 = none (Feetech has none).
    """

    protocol: str
    motors: dict[str, tuple[int, int]]
    watchdog_ticks: int = 0


def _spec(protocol: str, robot: str, models: list[str], watchdog_ticks: int = 0) -> ArmSpec:
    names = ROBOT_MOTORS[robot]
    motors = {name: (i + 1, MODEL_NUMBERS[model]) for i, (name, model) in enumerate(zip(names, models, strict=True))}
    return ArmSpec(protocol, motors, watchdog_ticks)


ARM_SPECS: dict[str, ArmSpec] = {
    "so101": _spec("feetech", "so101", ["sts3215"] * 6),
    "so100": _spec("feetech", "so100", ["sts3215"] * 6),
    # Koch v1.1 follower: XL430-W250 at the shoulder, XL330-M288 elsewhere; the watchdog stops the
    # servos 500 ms after the host goes silent.
    "koch": _spec("dynamixel", "koch", ["xl430-w250"] * 2 + ["xl330-m288"] * 4, watchdog_ticks=25),
}


class Arm:
    """A serial servo arm; use as a context manager (`with open_arm(...) as arm:`)."""

    def __init__(self, robot: str, port: str, calibration: ArmCalibration | None = None, **bus_options):
        if robot not in ARM_SPECS:
            raise RobotError(f"unknown robot {robot!r}; use one of {sorted(ARM_SPECS)}")
        self.robot = robot
        self.spec = ARM_SPECS[robot]
        self.motor_names: tuple[str, ...] = tuple(self.spec.motors)
        self.calibrated = calibration is not None  # a file: its homing offsets are checked on connect
        self.calibration = calibration or ArmCalibration.default_for(robot)
        self.calibration.check_motors(self.motor_names)
        self.ids = {name: self.calibration.motors[name].id for name in self.motor_names}
        names_by_id = {servo_id: name for name, servo_id in self.ids.items()}
        self.bus = MotorBus(port, self.spec.protocol, BusConfig(**bus_options), names=names_by_id)
        self.connected = False

    @property
    def write_count(self) -> int:
        """Packets sent so far that can move the arm (Goal_Position writes, torque-enable writes)."""
        return self.bus.motion_packets_sent

    def connect(self) -> None:
        """Open the port, ping every ID and check its model number, check the calibration's homing
        offsets, clear the servos' reply delay; Dynamixel: arm the bus watchdog. Nothing moves.

        Raises:
            TransportError / ServoTimeoutError: the port or a servo does not answer.
            ModelMismatchError: a servo reports another model than this robot uses.
            CalibrationError: a servo's Homing_Offset differs from the calibration file's (the ranges
                in the file would then be wrong).
        """
        self.bus.open()
        try:
            for name in self.motor_names:
                servo_id, expected = self.ids[name], self.spec.motors[name][1]
                model = self.bus.ping(servo_id)
                if model != expected:
                    raise ModelMismatchError(
                        f"servo {servo_id} ({name}) is model {model} ({MODEL_NAMES.get(model, 'unknown')}), "
                        f"expected {expected} ({MODEL_NAMES[expected]}); check --robot and the servo IDs"
                    )
            if self.calibrated:
                self._check_homing_offsets()
            self._clear_return_delay()
            if self.spec.protocol == "dynamixel":
                self._ensure_position_mode()
            if self.spec.watchdog_ticks:
                for servo_id in self.ids.values():
                    self.bus.write(servo_id, "Bus_Watchdog", 0)  # clear a fired watchdog (-1)
                    self.bus.write(servo_id, "Bus_Watchdog", self.spec.watchdog_ticks)
        except BaseException:
            self.bus.close()
            raise
        self.connected = True
        log.info("connected %s on %s (%d servos)", self.robot, self.bus.url, len(self.motor_names))

    def _clear_return_delay(self) -> None:
        """Set Return_Delay_Time to 0 where it is not (factory: 500 us per reply, 3 ms per 6-servo read).

        An EEPROM setting: Feetech needs Lock = 0 around the write; Dynamixel needs torque off."""
        for name in self.motor_names:
            servo_id = self.ids[name]
            if self.bus.read(servo_id, "Return_Delay_Time") == 0:
                continue
            if self.spec.protocol == "feetech":
                self.bus.write(servo_id, "Lock", 0)
                self.bus.write(servo_id, "Return_Delay_Time", 0)
                self.bus.write(servo_id, "Lock", 1)
            elif self.bus.read(servo_id, "Torque_Enable") == 0:
                self.bus.write(servo_id, "Return_Delay_Time", 0)
            else:
                log.warning("%s keeps its return delay: torque is on", self.bus.label(servo_id))
                continue
            log.info("%s: Return_Delay_Time set to 0", self.bus.label(servo_id))

    def _ensure_position_mode(self) -> None:
        """Dynamixel servos in velocity/PWM mode ignore Goal_Position: switch them to position mode (3).

        Extended (4) and current-based (5) position modes are kept (grippers often use 5)."""
        for name in self.motor_names:
            servo_id = self.ids[name]
            mode = self.bus.read(servo_id, "Operating_Mode")
            if mode in POSITION_MODES:
                continue
            if self.bus.read(servo_id, "Torque_Enable"):
                raise RobotError(
                    f"{self.bus.label(servo_id)} is in operating mode {mode}, not a position mode, and its torque "
                    "is on; turn torque off (power-cycle the arm) and connect again"
                )
            self.bus.write(servo_id, "Operating_Mode", 3)
            log.info("%s: operating mode %d -> 3 (position)", self.bus.label(servo_id), mode)

    def _check_homing_offsets(self) -> None:
        for name, offset in self.read_homing_offsets().items():
            expected = self.calibration.motors[name].homing_offset
            if offset != expected:
                raise CalibrationError(
                    f"{self.bus.label(self.ids[name])} has Homing_Offset {offset} but the calibration says "
                    f"{expected}; the arm was recalibrated since: run `tracegen robot calibrate` again"
                )

    def disconnect(self) -> None:
        """Turn torque off on every servo (best effort) and close the port."""
        if self.bus.port is None:
            return
        try:
            self.set_torque(False)
        except RobotError as exc:
            log.warning("torque off failed while disconnecting: %s", exc)
        finally:
            self.bus.close()
            self.connected = False

    def __enter__(self) -> Arm:
        self.connect()
        return self

    def __exit__(self, *exc_info) -> None:
        self.disconnect()

    def _id_list(self) -> list[int]:
        return [self.ids[name] for name in self.motor_names]

    def read_raw(self) -> dict[str, int]:
        """Present raw positions by motor name (one SYNC_READ)."""
        values = self.bus.sync_read("Present_Position", self._id_list())
        return {name: values[self.ids[name]] for name in self.motor_names}

    def read_homing_offsets(self) -> dict[str, int]:
        """Each servo's Homing_Offset register (raw steps) by motor name."""
        return {name: self.bus.read(self.ids[name], "Homing_Offset") for name in self.motor_names}

    def read_positions(self) -> np.ndarray:
        """Present joint positions, float64 [n] radians in `motor_names` order."""
        return self.calibration.to_radians(self.motor_names, self.read_raw())

    def write_goals(self, radians: np.ndarray) -> None:
        """Send goal positions (float64 [n] radians, `motor_names` order) in one SYNC_WRITE.

        Raises:
            SafetyError: a goal is not finite or lies outside the joint's calibrated range.
        """
        goals = np.asarray(radians, dtype=np.float64)  # (n,)
        if goals.shape != (len(self.motor_names),):
            raise SafetyError(f"write_goals needs {len(self.motor_names)} angles {self.motor_names}, got shape {goals.shape}")
        limits = self.calibration.limits_radians(self.motor_names)  # (n, 2)
        for name, goal, (low, high) in zip(self.motor_names, goals, limits, strict=True):
            if not np.isfinite(goal) or not low - 1e-9 <= goal <= high + 1e-9:
                raise SafetyError(
                    f"goal for {name} is {goal:.4f} rad, outside its calibrated range [{low:.4f}, {high:.4f}] rad; "
                    "clamp the plan or recalibrate"
                )
        raw = self.calibration.to_raw(self.motor_names, goals)
        self.bus.sync_write("Goal_Position", {self.ids[name]: raw[name] for name in self.motor_names})

    def read_loads(self) -> np.ndarray:
        """Present loads, float64 [n], signed fraction of max torque (1.0 = 100 %)."""
        values = self.bus.sync_read("Present_Load", self._id_list())
        return np.array([values[self.ids[name]] / LOAD_SCALE for name in self.motor_names], dtype=np.float64)

    def set_torque(self, enabled: bool) -> None:
        """Enable (after setting goals to the present positions, so nothing jumps) or release every servo."""
        if enabled:
            present = self.bus.sync_read("Present_Position", self._id_list())
            self.bus.sync_write("Goal_Position", present)
        self.bus.sync_write("Torque_Enable", dict.fromkeys(self._id_list(), int(enabled)))


@dataclass(frozen=True)
class MotorReport:
    """What `ping_motors` found at one motor's ID.

    Attributes:
        name: motor name.
        servo_id: bus ID.
        expected_model: the model number this robot uses there.
        model: the model number reported, or None when the servo did not answer.
        position_raw: Present_Position in raw steps, or None.
        problem: "" when everything matches, else a one-line description.
    """

    name: str
    servo_id: int
    expected_model: int
    model: int | None
    position_raw: int | None
    problem: str


def ping_motors(robot: str, port: str, **bus_options) -> list[MotorReport]:
    """Ping every motor of `robot` on `port` and read its position; never raises for a single servo.

    Raises:
        TransportError: the port cannot be opened.
    """
    arm = Arm(robot, port, **bus_options)
    reports = []
    with arm.bus:
        for name in arm.motor_names:
            servo_id, expected = arm.ids[name], arm.spec.motors[name][1]
            model = position = None
            try:
                model = arm.bus.ping(servo_id)
                position = arm.bus.read(servo_id, "Present_Position")
                problem = "" if model == expected else f"model {model}, expected {expected} ({MODEL_NAMES[expected]})"
            except ServoTimeoutError:
                problem = "no reply"
            except RobotError as exc:
                problem = str(exc).split(";")[0].removeprefix(arm.bus.label(servo_id) + " ")
            reports.append(MotorReport(name, servo_id, expected, model, position, problem))
    return reports


def assign_motor_id(robot: str, port: str, motor: str, search_ids=None, **bus_options) -> tuple[int, int]:
    """Give the ONE servo on `port` the ID that `motor` has in `robot` (new servos all ship as ID 1,
    so an arm is set up one servo at a time, each alone on the adapter).

    Args:
        robot: "so101", "so100" or "koch".
        port: serial URL with exactly one servo attached.
        motor: motor name, e.g. "elbow_flex".
        search_ids: IDs to look for the servo at (default: every valid ID).
        **bus_options: `BusConfig` fields (baudrate, timeout_s, retries).

    Returns:
        (old ID, new ID).

    Raises:
        RobotError: no servo or several servos answer; ModelMismatchError: the wrong servo model.
    """
    spec = ARM_SPECS[robot]
    if motor not in spec.motors:
        raise RobotError(f"{robot} has no motor {motor!r}; use one of {', '.join(spec.motors)}")
    target, model = spec.motors[motor]
    bus = MotorBus(port, spec.protocol, BusConfig(**{"timeout_s": 0.01, **bus_options}))
    with bus:
        ids = search_ids if search_ids is not None else range(0, bus.protocol.MAX_ID + 1)
        found = bus.scan(ids)
        if len(found) != 1:
            raise RobotError(
                f"servos answer at IDs {sorted(found)} on {port}; attach exactly one servo (the {motor}) and retry"
            )
        ((old, found_model),) = found.items()
        if found_model != model:
            raise ModelMismatchError(f"the servo at ID {old} is model {found_model}, but {motor} needs {model}")
        if old != target:
            bus.write(old, "Lock" if spec.protocol == "feetech" else "Torque_Enable", 0)  # unlock EEPROM
            try:
                bus.write(old, "ID", target)
            except (ServoTimeoutError, ProtocolError):  # some firmware answers from the new ID
                pass
            if spec.protocol == "feetech":
                bus.write(target, "Lock", 1)
        if bus.ping(target) != model:
            raise RobotError(f"the servo did not take ID {target}; power-cycle it and run set-id again")
    log.info("%s: ID %d -> %d", motor, old, target)
    return old, target


def open_arm(robot: str, port: str, calibration: ArmCalibration | None = None, **bus_options) -> Arm:
    """Build an Arm (not yet connected; use `with open_arm(...) as arm:` or call `connect()`).

    Args:
        robot: "so101", "so100" (Feetech STS3215) or "koch" (Dynamixel 2.0 X-series).
        port: any serial URL: /dev/ttyACM0, loop://, or an emulator's pty path.
        calibration: joint ranges; default `ArmCalibration.default_for(robot)`.
        **bus_options: `BusConfig` fields (baudrate, timeout_s, retries).
    """
    return Arm(robot, port, calibration, **bus_options)


def write_count(arm: Arm) -> int:
    """Number of packets that can move the arm sent so far (Goal_Position / torque-enable writes)."""
    return arm.write_count
