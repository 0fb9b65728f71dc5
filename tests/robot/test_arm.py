"""Arm drivers against the byte-exact emulator: goals go out, the emulated servos move, positions
come back in calibrated radians; torque handling; model checks; motion-byte accounting."""

import time

import numpy as np
import pytest

from robot.arm import open_arm, write_count
from robot.calibration import ArmCalibration, MotorCalibration
from robot.emulator import KinematicServoBackend, start_emulator
from robot.errors import CalibrationError, ModelMismatchError, RobotError, SafetyError, ServoTimeoutError

GOALS = np.array([0.3, -0.2, 0.5, 0.1, -0.4, 0.2])
# assign_motor_id scans with a 10 ms reply timeout (ample on a real bus); the emulator thread competes for
# a loaded CI machine, so the scans here wait longer over the few IDs they search.
SCAN_TIMEOUT_S = 0.1


def _wait_until(predicate, timeout_s=2.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("robot", ["so101", "koch"])
def test_round_trip_goals_then_positions(robot):
    with start_emulator(robot) as emulator, open_arm(robot, emulator.url) as arm:
        assert arm.motor_names[0] == "shoulder_pan" and arm.motor_names[-1] == "gripper"
        start = arm.read_positions()
        assert np.allclose(start, 0.0, atol=2e-3)  # raw 2048 is the middle of the default ranges
        arm.set_torque(True)
        arm.write_goals(GOALS)
        # The emulated servos move at 3000 steps/s; 0.5 rad = 326 steps, so ~0.1 s.
        assert _wait_until(lambda: np.abs(arm.read_positions() - GOALS).max() < 2e-3)
        assert np.abs(arm.read_positions() - GOALS).max() <= np.pi / 4095 + 1e-9  # within half a step
        assert np.allclose(arm.read_loads(), 0.0)
    backend = emulator.backend
    assert not any(backend.torque.values())  # disconnect released every servo


def test_calibration_maps_radians_to_the_servo_range():
    calibration = ArmCalibration.default_for("so101")
    calibration.motors["elbow_flex"] = MotorCalibration(3, 1, 0, 1000, 3000)  # inverted, middle 2000
    backend = KinematicServoBackend(range(1, 7), initial_raw=2000)
    with start_emulator("so101", backend=backend) as emulator, open_arm("so101", emulator.url, calibration) as arm:
        assert arm.read_positions()[2] == pytest.approx(0.0)
        arm.set_torque(True)
        arm.write_goals(np.array([0.0, 0.0, 0.5, 0.0, 0.0, 0.0]))
        expected = 2000 - round(0.5 * 4095 / (2 * np.pi))  # drive_mode 1: raw falls as the angle grows
        assert _wait_until(lambda: backend.present_raw()[3] == expected)
        assert arm.read_positions()[2] == pytest.approx(0.5, abs=np.pi / 4095)


def test_enabling_torque_does_not_jump():
    backend = KinematicServoBackend(range(1, 7), initial_raw=2048)
    with start_emulator("so101", backend=backend) as emulator, open_arm("so101", emulator.url) as arm:
        arm.set_torque(False)
        backend.push(2, 2600)  # someone moved the released joint by hand
        arm.set_torque(True)
        time.sleep(0.05)
        assert backend.present_raw()[2] == 2600


def test_connect_and_reads_send_zero_motion_bytes():
    with start_emulator("so101") as emulator:
        arm = open_arm("so101", emulator.url)
        assert emulator.emulator.get(2, "Return_Delay_Time") == 250  # factory: 500 us
        with arm:
            assert emulator.emulator.get(2, "Return_Delay_Time") == 0 and emulator.emulator.get(2, "Lock") == 1
            arm.read_positions()
            arm.read_loads()
            assert write_count(arm) == 0
            with pytest.raises(SafetyError, match="elbow_flex"):
                arm.write_goals(np.array([0.0, 0.0, 2.5, 0.0, 0.0, 0.0]))
            with pytest.raises(SafetyError, match="not finite|outside"):
                arm.write_goals(np.array([np.nan, 0.0, 0.0, 0.0, 0.0, 0.0]))
            assert write_count(arm) == 0
            arm.set_torque(True)
            arm.write_goals(np.zeros(6))
            assert write_count(arm) == 3  # goals = present, torque on, goals
        assert arm.write_count == 3  # torque off on disconnect releases; it is not a motion packet


def test_wrong_model_is_named():
    models = {1: 777, 2: 777, 3: 1060, 4: 777, 5: 777, 6: 777}
    with start_emulator("so101", models=models) as emulator:
        with pytest.raises(ModelMismatchError, match=r"servo 3 \(elbow_flex\) is model 1060 .*expected 777"):
            open_arm("so101", emulator.url).connect()


def test_missing_servo_times_out_cleanly():
    with start_emulator("so101", models={i: 777 for i in range(1, 6)}) as emulator:
        with pytest.raises(ServoTimeoutError, match=r"servo 6 \(gripper\) did not answer PING"):
            open_arm("so101", emulator.url, retries=1, timeout_s=0.02).connect()


def test_koch_arms_the_bus_watchdog_which_stops_a_dead_host():
    backend = KinematicServoBackend(range(1, 7), max_speed=300.0)  # 0.8 rad = 521 steps: 1.7 s
    with start_emulator("koch", backend=backend) as emulator:
        arm = open_arm("koch", emulator.url)
        arm.connect()
        assert all(emulator.emulator.get(i, "Bus_Watchdog") == 25 for i in range(1, 7))
        assert all(emulator.emulator.get(i, "Return_Delay_Time") == 0 for i in range(1, 7))
        arm.set_torque(True)
        arm.write_goals(np.full(6, 0.8))
        time.sleep(0.05)  # the host dies mid-move: no more packets
        assert _wait_until(lambda: emulator.emulator.get(1, "Bus_Watchdog") == -1, timeout_s=2.0)
        stopped = emulator.backend.present_raw()[1]
        time.sleep(0.1)
        assert emulator.backend.present_raw()[1] == stopped < 2048 + round(0.8 * 4095 / (2 * np.pi))
        arm.bus.close()


@pytest.mark.hardware
def test_real_arm_connects_and_reads_without_moving():
    """Needs an arm on TRACEGEN_ROBOT_PORT (TRACEGEN_ROBOT: so101 | so100 | koch); skipped by default."""
    import os

    port = os.environ.get("TRACEGEN_ROBOT_PORT")
    if not port:
        pytest.skip("set TRACEGEN_ROBOT_PORT to the arm's serial port")
    with open_arm(os.environ.get("TRACEGEN_ROBOT", "so101"), port) as arm:
        positions = arm.read_positions()
        assert positions.shape == (6,) and np.isfinite(positions).all()
        assert write_count(arm) == 0


def test_a_calibration_whose_homing_offset_disagrees_with_the_servo_is_refused():
    calibration = ArmCalibration.default_for("so101")
    calibration.motors["wrist_flex"].homing_offset = 37
    with start_emulator("so101") as emulator:
        with pytest.raises(CalibrationError, match=r"servo 4 \(wrist_flex\) has Homing_Offset 0 .* says 37"):
            open_arm("so101", emulator.url, calibration).connect()
        emulator.emulator._set(4, "Homing_Offset", 37)  # the servo really holds that offset
        with open_arm("so101", emulator.url, calibration) as arm:
            assert arm.read_homing_offsets()["wrist_flex"] == 37


def test_koch_servo_in_velocity_mode_is_switched_to_position_mode():
    with start_emulator("koch") as emulator:
        emulator.emulator._set(4, "Operating_Mode", 1)  # velocity mode: goals would be ignored
        emulator.emulator._set(6, "Operating_Mode", 5)  # current-based position (a gripper): kept
        with open_arm("koch", emulator.url) as arm:
            assert emulator.emulator.get(4, "Operating_Mode") == 3
            assert emulator.emulator.get(6, "Operating_Mode") == 5
            assert arm.write_count == 0


@pytest.mark.parametrize("robot", ["so101", "koch"])
def test_assign_motor_id_renumbers_a_lone_new_servo(robot):
    from robot.arm import ARM_SPECS, assign_motor_id

    model = ARM_SPECS[robot].motors["elbow_flex"][1]
    backend = KinematicServoBackend([1], initial_raw=2048)
    with start_emulator(robot, backend=backend, models={1: model}) as emulator:
        assert assign_motor_id(robot, emulator.url, "elbow_flex", search_ids=range(0, 8), timeout_s=SCAN_TIMEOUT_S) == (1, 3)
        assert list(emulator.emulator.memory) == [3]
        assert assign_motor_id(robot, emulator.url, "elbow_flex", search_ids=range(0, 8), timeout_s=SCAN_TIMEOUT_S) == (3, 3)
        from robot.bus import MotorBus

        with MotorBus(emulator.url, ARM_SPECS[robot].protocol) as bus:  # the same physical servo moves
            bus.write(3, "Torque_Enable", 1)
            bus.write(3, "Goal_Position", 2300)
            assert _wait_until(lambda: backend.present_raw()[1] == 2300)


def test_assign_motor_id_wants_exactly_one_servo():
    from robot.arm import assign_motor_id

    with start_emulator("so101", models={1: 777, 2: 777}) as emulator:
        with pytest.raises(RobotError, match=r"IDs \[1, 2\].*attach exactly one servo"):
            assign_motor_id("so101", emulator.url, "gripper", search_ids=range(0, 4), timeout_s=SCAN_TIMEOUT_S)
