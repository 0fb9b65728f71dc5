"""Calibration files: LeRobot-compatible JSON round trip, the raw <-> radian convention, clear errors."""

import json
import math

import numpy as np
import pytest

from robot.calibration import ArmCalibration, MotorCalibration
from robot.errors import CalibrationError
from robot.so101 import SO101_MOTORS


def test_save_load_round_trip_in_lerobot_layout(tmp_path):
    calibration = ArmCalibration.default_for("so101")
    calibration.motors["elbow_flex"] = MotorCalibration(3, 1, -120, 900, 3100)
    path = tmp_path / "arm.json"
    calibration.save(path)
    raw = json.loads(path.read_text())
    assert list(raw) == list(SO101_MOTORS)
    assert raw["elbow_flex"] == {"id": 3, "drive_mode": 1, "homing_offset": -120, "range_min": 900, "range_max": 3100}
    assert ArmCalibration.load(path) == calibration


def test_angle_convention_matches_the_formula():
    motor = MotorCalibration(1, 0, 0, 1000, 3000)  # middle 2000
    assert motor.to_radians(2000) == 0.0
    assert motor.to_radians(3000) == pytest.approx(math.radians(1000 * 360 / 4095))
    flipped = MotorCalibration(1, 1, 0, 1000, 3000)
    assert flipped.to_radians(3000) == pytest.approx(-motor.to_radians(3000))
    for radians in np.linspace(-1.5, 1.5, 31):
        assert abs(motor.to_radians(motor.to_raw(radians)) - radians) <= math.pi / 4095  # half a step
        assert abs(flipped.to_radians(flipped.to_raw(radians)) - radians) <= math.pi / 4095


def test_default_ranges_cover_the_kinematic_limits():
    calibration = ArmCalibration.default_for("so101")
    limits = calibration.limits_radians(SO101_MOTORS)
    assert limits[2, 1] == pytest.approx(1.69, abs=2e-3) and limits[2, 0] == pytest.approx(-1.69, abs=2e-3)
    assert all(m.range_min + m.range_max == 4095 for m in calibration.motors.values())


def test_load_errors_name_the_problem(tmp_path):
    with pytest.raises(CalibrationError, match="not found"):
        ArmCalibration.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"shoulder_pan": {"id": 1, "drive_mode": 0, "homing_offset": 0, "range_min": 10}}))
    with pytest.raises(CalibrationError, match="range_max"):
        ArmCalibration.load(bad)
    bad.write_text(json.dumps({"shoulder_pan": {"id": 1, "drive_mode": 0, "homing_offset": 0, "range_min": 3000, "range_max": 100}}))
    with pytest.raises(CalibrationError, match="min < max"):
        ArmCalibration.load(bad)
    bad.write_text("{not json")
    with pytest.raises(CalibrationError, match="not JSON"):
        ArmCalibration.load(bad)


def test_duplicate_ids_are_rejected():
    calibration = ArmCalibration.default_for("so100")
    calibration.motors["gripper"].id = 1
    with pytest.raises(CalibrationError, match="repeats servo IDs"):
        calibration.validate()
