"""The control loop on the byte-exact emulator: tracking, faults -> bounded retries + safe stop, Ctrl-C."""

import time

import numpy as np
import pytest

from robot.arm import open_arm
from robot.calibration import ArmCalibration
from robot.control import ControlConfig, goal_at, run_plan, safe_stop, wait_until
from robot.emulator import start_emulator
from robot.errors import ControlError
from robot.execute import READY_POSE

CALIBRATION = ArmCalibration.default_for("so101")
NAMES = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
TOLERANCE = 2 * 2 * np.pi / 4096  # two encoder steps


def place(handle, joints: np.ndarray) -> None:
    """Put the released emulated servos at `joints` (radians), like moving the arm by hand."""
    raw = CALIBRATION.to_raw(NAMES, joints)
    with handle.lock:
        for name in NAMES:
            handle.backend.push(CALIBRATION.motors[name].id, raw[name])


@pytest.fixture
def rig():
    with start_emulator("so101") as handle:
        place(handle, READY_POSE)
        with open_arm("so101", handle.url, CALIBRATION, timeout_s=0.02) as arm:
            arm.set_torque(True)
            yield handle, arm


def ramp_plan(seconds: float = 1.0, delta=(0.3, -0.2, 0.2, 0.0, 0.1, -0.5)) -> tuple[np.ndarray, np.ndarray]:
    times = np.linspace(0.0, seconds, int(seconds * 100) + 1)
    fraction = 0.5 - 0.5 * np.cos(np.pi * times / seconds)
    return times, READY_POSE + fraction[:, None] * np.asarray(delta)  # (T,), (T, 6)


def torque_states(handle, wait: float = 0.5) -> list[bool]:
    """Servo torque flags once the emulator has served the bytes already sent (up to `wait` s)."""
    end = time.monotonic() + wait
    while True:
        with handle.lock:
            states = list(handle.backend.torque.values())
        if not any(states) or time.monotonic() > end:
            return states
        time.sleep(0.01)


def test_goal_at_interpolates_and_holds():
    times = np.array([0.0, 1.0, 2.0])
    table = np.array([[0.0], [1.0], [3.0]])
    assert goal_at(times, table, 0.5)[0] == pytest.approx(0.5)
    assert goal_at(times, table, 1.5)[0] == pytest.approx(2.0)
    assert goal_at(times, table, 9.0)[0] == 3.0 and goal_at(times, table, -1.0)[0] == 0.0


def test_wait_until_meets_monotonic_deadlines():
    start = time.monotonic()
    for k in range(1, 21):
        wait_until(start + k * 0.005)
        assert time.monotonic() >= start + k * 0.005


def test_plan_is_tracked_to_the_end(rig):
    handle, arm = rig
    times, table = ramp_plan()
    result = run_plan(arm, times, table, ControlConfig(rate_hz=100))
    np.testing.assert_allclose(arm.read_positions(), table[-1], atol=TOLERANCE)
    assert result.cycles >= 50  # rates are measured by benchmarks/robot_bench.py, not asserted
    assert result.max_tracking_error < 0.1 and result.retries == 0


def test_goals_are_clamped_to_max_step_from_present(rig):
    handle, arm = rig
    times, table = np.array([0.0, 0.01]), np.array([READY_POSE, READY_POSE + 0.5])  # an instant 0.5 rad jump
    sent = []
    original = arm.write_goals
    arm.write_goals = lambda goals: (sent.append((arm.read_positions(), goals)), original(goals))[1]
    run_plan(arm, times, table, ControlConfig(max_step=0.03, settle_time=0.3, tracking_limit=1.0))
    assert all(np.abs(goals - present).max() <= 0.03 + TOLERANCE for present, goals in sent)
    assert len(sent) > 10  # it took many cycles to walk there


@pytest.mark.parametrize("fault", ["missing@3", "bad_checksum@3", "truncated@2", "overload@4"])
def test_persistent_fault_ends_in_clean_error_and_torque_off(rig, fault):
    handle, arm = rig
    times, table = ramp_plan(1.5)
    calls = {"n": 0}
    original = arm.read_positions

    def read_and_break():
        calls["n"] += 1
        if calls["n"] == 30:  # mid-motion
            handle.inject(fault)
        return original()

    arm.read_positions = read_and_break
    with pytest.raises(ControlError, match="motion stopped: .*torque off"):
        run_plan(arm, times, table, ControlConfig(max_retries=2))
    assert calls["n"] <= 30 + 2 + 1  # retries are bounded: 2 more loop reads, then one in the safe stop
    assert not any(torque_states(handle))


def test_transient_faults_are_retried_and_motion_completes(rig):
    handle, arm = rig
    times, table = ramp_plan(0.8)
    handle.inject("missing@3*2,bad_checksum@5*1,garbage*20")
    result = run_plan(arm, times, table)
    np.testing.assert_allclose(arm.read_positions(), table[-1], atol=TOLERANCE)
    assert result.cycles > 20


def test_ctrl_c_holds_moves_slowly_to_rest_then_torque_off(rig):
    handle, arm = rig
    times, table = ramp_plan(1.5, delta=(0.5, -0.3, 0.3, 0.2, 0.3, -0.5))
    writes = {"n": 0}
    original = arm.write_goals
    speeds = []

    def write_then_interrupt(goals):
        writes["n"] += 1
        if writes["n"] == 60:
            raise KeyboardInterrupt
        original(goals)
        speeds.append((time.monotonic(), np.asarray(goals)))

    arm.write_goals = write_then_interrupt
    with pytest.raises(KeyboardInterrupt):
        run_plan(arm, times, table, ControlConfig(rest_speed=0.5))
    arm.write_goals = original
    np.testing.assert_allclose(arm.read_positions(), READY_POSE, atol=3 * TOLERANCE)  # back at rest
    assert not any(torque_states(handle))
    # After the interrupt: hold, then every goal steps monotonically towards rest, never faster than
    # rest_speed (a lower bound on the time it took, which a busy machine can only lengthen).
    stop_goals = np.array([g for _, g in speeds[59:]])
    distance = np.abs(stop_goals - READY_POSE)  # (m, 6)
    assert (np.diff(distance, axis=0) <= 1e-9).all()
    elapsed = speeds[-1][0] - speeds[59][0]
    assert elapsed >= 0.9 * distance[0].max() / 0.5 - 0.02


def test_overload_and_tracking_faults_stop_safely(rig):
    handle, arm = rig
    times, table = ramp_plan(1.0)
    with handle.lock:
        handle.backend.load[2] = 0.99  # shoulder_lift pushing against something
    with pytest.raises(ControlError, match="load .* exceeds"):
        run_plan(arm, times, table)
    assert not any(torque_states(handle))
    with handle.lock:
        handle.backend.load[2] = 0.0
        handle.backend.max_speed = 20.0  # the servos can barely move: tracking error grows
    arm.set_torque(True)
    with pytest.raises(ControlError, match="tracking error"):
        run_plan(arm, times, table, ControlConfig(tracking_limit=0.05, tracking_cycles=5))
    assert not any(torque_states(handle))


def test_safe_stop_reports_when_the_bus_is_dead(rig):
    handle, arm = rig
    handle.inject("missing")
    notes = safe_stop(arm, READY_POSE, ControlConfig(max_retries=1))
    assert "could not reach rest" in notes and "torque off" in notes  # sync writes need no reply


def test_an_implausible_reading_is_retried_not_obeyed(rig):
    handle, arm = rig
    times, table = ramp_plan(0.6)
    original, calls, sent = arm.read_positions, {"n": 0}, []

    def stale_reply_once():
        calls["n"] += 1
        reading = original()
        if calls["n"] == 20:  # e.g. a late Present_Load reply taken for positions: raw ~0 -> -3.1 rad
            reading[0] = -3.1
        return reading

    write = arm.write_goals
    arm.read_positions = stale_reply_once
    arm.write_goals = lambda goals: (sent.append(np.asarray(goals)), write(goals))[1]
    result = run_plan(arm, times, table)
    assert result.retries == 1
    assert min(goals[0] for goals in sent) > READY_POSE[0] - 0.1  # the bogus reading never became a goal
    np.testing.assert_allclose(original(), table[-1], atol=TOLERANCE)
