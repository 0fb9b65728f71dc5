"""Joint-range calibration files (LeRobot-compatible) and raw <-> radian conversion.

File format (JSON), one entry per motor:
`{"shoulder_pan": {"id": 1, "drive_mode": 0, "homing_offset": 0, "range_min": 758, "range_max": 3337}, ...}`.
Angle 0 is the middle of the calibrated range:
`angle_deg = (raw - (range_min + range_max) / 2) * 360 / 4095`, sign flipped when `drive_mode` is 1.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from robot.errors import CalibrationError
from robot.so101 import SO101_CHAIN, SO101_GRIPPER

RAW_PER_TURN = 4095.0  # the LeRobot convention divides by 4095 (the largest raw value), not 4096
RAW_MAX = 4095
_FIELDS = ("id", "drive_mode", "homing_offset", "range_min", "range_max")

# Motor names in chain order, then the gripper, for every robot this package drives.
ROBOT_MOTORS: dict[str, tuple[str, ...]] = {
    "so101": tuple(j.name for j in SO101_CHAIN) + (SO101_GRIPPER.name,),
    "so100": tuple(j.name for j in SO101_CHAIN) + (SO101_GRIPPER.name,),
    "koch": tuple(j.name for j in SO101_CHAIN) + (SO101_GRIPPER.name,),
}
# Symmetric half-ranges (radians) used by `default_for`: the SO-101 table's limits; Koch: +-150 deg.
_SO_LIMITS = {j.name: max(abs(v) for v in j.limit) for j in (*SO101_CHAIN, SO101_GRIPPER)}
_DEFAULT_HALF_RANGE: dict[str, dict[str, float]] = {
    "so101": _SO_LIMITS,
    "so100": _SO_LIMITS,
    "koch": {name: math.radians(150.0) for name in ROBOT_MOTORS["koch"]},
}


@dataclass
class MotorCalibration:
    """Calibration of one servo.

    Attributes:
        id: servo bus ID.
        drive_mode: 0 = raw and angle grow together; 1 = inverted.
        homing_offset: the servo's Homing_Offset register value (raw steps) when calibrated.
        range_min: smallest raw position reached during calibration (0..4095).
        range_max: largest raw position reached during calibration (0..4095).
    """

    id: int
    drive_mode: int
    homing_offset: int
    range_min: int
    range_max: int

    def validate(self, name: str) -> None:
        """Raise CalibrationError naming the field when the entry is inconsistent."""
        if self.drive_mode not in (0, 1):
            raise CalibrationError(f"{name}: drive_mode {self.drive_mode} must be 0 or 1; fix the calibration file")
        if not 0 <= self.range_min < self.range_max <= RAW_MAX:
            raise CalibrationError(
                f"{name}: range [{self.range_min}, {self.range_max}] must satisfy 0 <= min < max <= {RAW_MAX}; "
                "re-run `tracegen robot calibrate` and move the joint through its range"
            )

    @property
    def middle(self) -> float:
        """Raw position of angle 0 (the middle of the range)."""
        return (self.range_min + self.range_max) / 2.0

    def to_radians(self, raw: float) -> float:
        """Raw servo position -> joint angle in radians."""
        sign = -1.0 if self.drive_mode else 1.0
        return sign * (raw - self.middle) * 2.0 * math.pi / RAW_PER_TURN

    def to_raw(self, radians: float) -> int:
        """Joint angle in radians -> nearest raw servo position."""
        sign = -1.0 if self.drive_mode else 1.0
        return int(round(self.middle + sign * radians * RAW_PER_TURN / (2.0 * math.pi)))

    def limits_radians(self) -> tuple[float, float]:
        """The calibrated range as (low, high) radians."""
        ends = sorted((self.to_radians(self.range_min), self.to_radians(self.range_max)))
        return ends[0], ends[1]


@dataclass
class ArmCalibration:
    """Calibration of a whole arm: motor name -> MotorCalibration, in chain order then gripper."""

    motors: dict[str, MotorCalibration]

    @classmethod
    def load(cls, path: str | Path) -> ArmCalibration:
        """Read a LeRobot-style calibration JSON file.

        Raises:
            CalibrationError: missing file, bad JSON, missing fields or inconsistent ranges.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise CalibrationError(f"calibration file {path} not found; create it with `tracegen robot calibrate`") from None
        except json.JSONDecodeError as exc:
            raise CalibrationError(f"calibration file {path} is not JSON ({exc}); re-run `tracegen robot calibrate`") from None
        if not isinstance(data, dict) or not data:
            raise CalibrationError(f"calibration file {path} must map motor names to entries; re-run calibrate")
        motors = {}
        for name, entry in data.items():
            missing = [f for f in _FIELDS if not isinstance(entry, dict) or f not in entry]
            if missing:
                raise CalibrationError(f"{path}: motor {name!r} lacks {', '.join(missing)}; re-run calibrate")
            motors[name] = MotorCalibration(**{f: int(entry[f]) for f in _FIELDS})
        calibration = cls(motors)
        calibration.validate()
        return calibration

    def save(self, path: str | Path) -> None:
        """Write the calibration as LeRobot-style JSON (creating parent folders)."""
        self.validate()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({name: asdict(m) for name, m in self.motors.items()}, indent=2) + "\n")

    @classmethod
    def default_for(cls, robot: str) -> ArmCalibration:
        """A nominal calibration: IDs 1..n, no offset, ranges symmetric about raw 2047.5 spanning the
        joint limits (the emulator's factory state; a real arm should be calibrated instead)."""
        if robot not in ROBOT_MOTORS:
            raise CalibrationError(f"unknown robot {robot!r}; use one of {sorted(ROBOT_MOTORS)}")
        motors = {}
        for servo_id, name in enumerate(ROBOT_MOTORS[robot], start=1):
            half = _DEFAULT_HALF_RANGE[robot][name] * RAW_PER_TURN / (2.0 * math.pi)
            low = max(0, int(math.floor(RAW_MAX / 2.0 - half)))
            motors[name] = MotorCalibration(servo_id, 0, 0, low, RAW_MAX - low)
        return cls(motors)

    def validate(self) -> None:
        """Raise CalibrationError when any entry is inconsistent or two motors share an ID."""
        for name, motor in self.motors.items():
            motor.validate(name)
        ids = [m.id for m in self.motors.values()]
        if len(set(ids)) != len(ids):
            raise CalibrationError(f"calibration repeats servo IDs {sorted(ids)}; each motor needs its own ID")

    def check_motors(self, names: tuple[str, ...]) -> None:
        """Raise CalibrationError unless the file covers exactly `names`."""
        if set(self.motors) != set(names):
            raise CalibrationError(
                f"calibration has motors {sorted(self.motors)} but the arm has {sorted(names)}; "
                "calibrate this robot with `tracegen robot calibrate`"
            )

    def to_radians(self, names: tuple[str, ...], raw: dict[str, float]) -> np.ndarray:
        """Raw positions by motor name -> float64 [n] radians in `names` order."""
        return np.array([self.motors[n].to_radians(raw[n]) for n in names], dtype=np.float64)

    def to_raw(self, names: tuple[str, ...], radians: np.ndarray) -> dict[str, int]:
        """float64 [n] radians in `names` order -> raw positions by motor name."""
        return {n: self.motors[n].to_raw(float(r)) for n, r in zip(names, radians, strict=True)}

    def limits_radians(self, names: tuple[str, ...]) -> np.ndarray:
        """Calibrated joint ranges, float64 [n, 2] radians (low, high) in `names` order."""
        return np.array([self.motors[n].limits_radians() for n in names], dtype=np.float64)


def record_ranges(arm, duration_s: float, rate_hz: float = 50.0, on_sample=None, min_span: int = 40) -> ArmCalibration:
    """Record each joint's raw range while a person moves the released arm through it.

    Torque is turned off first; the servos' current Homing_Offset values go into the file.

    Args:
        arm: a connected `robot.arm.Arm` (anything with `motor_names`, `ids`, `set_torque`, `read_raw`,
            `read_homing_offsets`).
        duration_s: how long to record, seconds.
        rate_hz: position reads per second (paced on a monotonic clock).
        on_sample: optional callback `(elapsed_s, ranges: dict[name, (min, max)])` after each read.
        min_span: smallest accepted range in raw steps; a joint that moved less is an error.

    Returns:
        The new ArmCalibration (drive_mode 0 for every motor).

    Raises:
        CalibrationError: a joint was not moved through a range of at least `min_span` steps.
    """
    arm.set_torque(False)
    offsets = arm.read_homing_offsets()
    low: dict[str, int] = {}
    high: dict[str, int] = {}
    start = time.monotonic()
    next_read = start
    while True:
        raw = arm.read_raw()
        for name, value in raw.items():
            low[name], high[name] = min(low.get(name, value), value), max(high.get(name, value), value)
        elapsed = time.monotonic() - start
        if on_sample is not None:
            on_sample(elapsed, {name: (low[name], high[name]) for name in raw})
        if elapsed >= duration_s:
            break
        next_read += 1.0 / rate_hz
        time.sleep(max(0.0, next_read - time.monotonic()))
    still = [f"{name} ({high[name] - low[name]} steps)" for name in arm.motor_names if high[name] - low[name] < min_span]
    if still:
        raise CalibrationError(
            f"joints barely moved during calibration: {', '.join(still)}; "
            "move every joint through its whole range while recording (or record longer)"
        )
    motors = {
        name: MotorCalibration(arm.ids[name], 0, offsets[name], low[name], high[name]) for name in arm.motor_names
    }
    return ArmCalibration(motors)
