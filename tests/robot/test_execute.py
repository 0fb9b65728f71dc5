"""execute on the emulator: a synthetic trace ends within 5 mm of its target; bad plans send nothing."""

import dataclasses

import numpy as np
import pytest

from robot.arm import open_arm
from robot.emulator import start_emulator
from robot.errors import PlanningError, SafetyError
from robot.execute import READY_POSE, ExecuteConfig, execute_on_arm, prepare_dry_run, synthetic_gripper_trace
from robot.kinematics import SO101
from robot.safety import SafetyLimits
from store.trace import save_trace_file
from tests.robot.test_control import CALIBRATION, place, torque_states
from tests.robot.test_planning import CAMERA, DISPLACEMENT


@pytest.fixture
def files(tmp_path):
    def write(displacement, name="trace.npz", **kwargs):
        trace = synthetic_gripper_trace(READY_POSE, CAMERA, displacement, **kwargs)
        return save_trace_file(tmp_path / name, trace), CAMERA.save(tmp_path / "cam.json")
    return write


@pytest.fixture
def rig():
    with start_emulator("so101") as handle:
        place(handle, READY_POSE)
        with open_arm("so101", handle.url, CALIBRATION, timeout_s=0.02) as arm:
            yield handle, arm


def goal_raw(handle) -> dict[int, int]:
    with handle.lock:
        return {i: handle.emulator.get(i, "Goal_Position") for i in handle.emulator.memory}


def test_synthetic_trace_ends_within_5_mm_of_target(rig, files):
    handle, arm = rig
    trace_path, cam_path = files(DISPLACEMENT, object_offset_px=(0, 70), grasp_step=10)
    shown = []
    report = execute_on_arm(trace_path, cam_path, arm, ExecuteConfig(), confirm=lambda p: shown.append(p) or True)
    target = SO101.forward(READY_POSE[:5])[:3, 3] + CAMERA.base_from_camera[:3, :3] @ DISPLACEMENT
    read_back = SO101.forward(arm.read_positions()[:5])[:3, 3]  # FK of the positions the servos report
    assert np.linalg.norm(read_back - target) < 0.005, f"ended {1000 * np.linalg.norm(read_back - target):.2f} mm off"
    assert np.linalg.norm(report.final_tool - target) < 0.005
    assert len(shown) == 1 and len(shown[0].checks) == 6 and "calibrated ranges" in shown[0].checks[-1]
    assert abs(arm.read_positions()[5] - ExecuteConfig().plan.gripper_closed) < 0.01  # it grasped the object
    assert report.motion_packets > 100


@pytest.mark.parametrize(
    "displacement, limits, message",
    [
        (np.array([0.0, 0.0, -0.5]), SafetyLimits(), "unreachable"),  # half a metre toward the camera
        (DISPLACEMENT, SafetyLimits(workspace_max=(0.45, 0.45, 0.16)), "workspace"),
        (DISPLACEMENT, SafetyLimits(max_tool_speed=0.01), "tool moves at"),
    ],
)
def test_rejected_plans_send_zero_motion_packets(rig, files, displacement, limits, message):
    handle, arm = rig
    trace_path, cam_path = files(displacement)
    before_goals, before_count = goal_raw(handle), arm.write_count
    config = dataclasses.replace(ExecuteConfig(), limits=limits)
    with pytest.raises(SafetyError, match=message):
        execute_on_arm(trace_path, cam_path, arm, config, confirm=lambda p: pytest.fail("asked to confirm a bad plan"))
    assert arm.write_count == before_count  # no Goal_Position / Torque_Enable packet crossed the port
    assert goal_raw(handle) == before_goals and not any(torque_states(handle, wait=0.0))


def test_declined_confirmation_moves_nothing(rig, files):
    handle, arm = rig
    trace_path, cam_path = files(DISPLACEMENT)
    report = execute_on_arm(trace_path, cam_path, arm, ExecuteConfig(), confirm=lambda p: False)
    assert report.control is None and report.motion_packets == 0 and not any(torque_states(handle, wait=0.0))


def test_dry_run_plans_from_the_ready_pose_without_hardware(files):
    trace_path, cam_path = files(DISPLACEMENT)
    prepared = prepare_dry_run(trace_path, cam_path, ExecuteConfig())
    np.testing.assert_allclose(prepared.plan.joints[0], READY_POSE)
    assert prepared.motor_names[-1] == "gripper" and prepared.plan.duration > 1.0


def test_goal_outside_the_calibrated_range_is_rejected_before_motion(files):
    narrow = dataclasses.replace(CALIBRATION.motors["shoulder_pan"], range_min=2000, range_max=2095)  # about ±0.07 rad
    calibration = dataclasses.replace(CALIBRATION, motors={**CALIBRATION.motors, "shoulder_pan": narrow})
    trace_path, cam_path = files(DISPLACEMENT)  # the plan turns the pan by about -0.2 rad
    with start_emulator("so101") as handle:
        place(handle, READY_POSE)
        with open_arm("so101", handle.url, calibration, timeout_s=0.02) as arm:
            before = arm.write_count
            with pytest.raises(SafetyError, match="shoulder_pan = -0.0[0-9]+ rad is outside its calibrated range"):
                execute_on_arm(trace_path, cam_path, arm, ExecuteConfig(), confirm=lambda p: pytest.fail("asked"))
            assert arm.write_count == before


def test_return_to_start_after_reaching_the_target(rig, files):
    handle, arm = rig
    trace_path, cam_path = files(DISPLACEMENT / 2)
    config = dataclasses.replace(ExecuteConfig(), return_to_start=True,
                                 plan=dataclasses.replace(ExecuteConfig().plan, speed=0.06))
    report = execute_on_arm(trace_path, cam_path, arm, config, confirm=lambda p: True)
    target = SO101.forward(READY_POSE[:5])[:3, 3] + CAMERA.base_from_camera[:3, :3] @ (DISPLACEMENT / 2)
    assert np.linalg.norm(report.final_tool - target) < 0.005
    np.testing.assert_allclose(arm.read_positions(), READY_POSE, atol=4 * 2 * np.pi / 4096)


def hypotheses_file(tmp_path, displacements) -> tuple:
    """A trace file whose hypotheses (`samples`) move the gripper by each displacement in turn."""
    traces = [synthetic_gripper_trace(READY_POSE, CAMERA, d) for d in displacements]
    samples = np.stack([t.traj for t in traces])
    trace = dataclasses.replace(traces[0], samples=samples)
    return save_trace_file(tmp_path / "hypotheses.npz", trace), CAMERA.save(tmp_path / "cam.json")


def test_auto_hypothesis_plays_the_first_that_passes_every_check(rig, tmp_path):
    """Hypothesis 0 leaves the arm's reach, hypothesis 1 is fine: auto plans and checks 0, refuses it, plays 1 -
    the arm moves only once a whole plan has passed."""
    handle, arm = rig
    unreachable = np.array([0.0, 0.0, -0.5])
    trace_path, cam_path = hypotheses_file(tmp_path, [unreachable, DISPLACEMENT, unreachable])
    shown = []
    report = execute_on_arm(trace_path, cam_path, arm, ExecuteConfig(), confirm=lambda p: shown.append(p) or True)
    prepared = shown[0]
    assert (prepared.hypothesis, prepared.hypotheses) == (1, 3) and len(prepared.refused) == 1
    assert "unreachable" in prepared.refused[0] and "calibrated ranges" in prepared.checks[-1]
    target = SO101.forward(READY_POSE[:5])[:3, 3] + CAMERA.base_from_camera[:3, :3] @ DISPLACEMENT
    assert np.linalg.norm(report.final_tool - target) < 0.005
    with pytest.raises(SafetyError, match="unreachable"):  # asked for hypothesis 0 itself: refused, nothing else tried
        prepare_dry_run(trace_path, cam_path, ExecuteConfig(hypothesis=0))
    assert prepare_dry_run(trace_path, cam_path, ExecuteConfig(hypothesis=1)).hypothesis == 1
    with pytest.raises(PlanningError, match="hypothesis 3 does not exist"):
        prepare_dry_run(trace_path, cam_path, ExecuteConfig(hypothesis=3))


def test_every_hypothesis_refused_moves_nothing(rig, tmp_path):
    handle, arm = rig
    before = goal_raw(handle)
    trace_path, cam_path = hypotheses_file(tmp_path, [np.array([0.0, 0.0, -0.5]), np.array([0.0, 0.0, -0.6])])
    with pytest.raises(SafetyError, match="all 2 hypotheses were refused; the first: .*unreachable"):
        execute_on_arm(trace_path, cam_path, arm, ExecuteConfig(), confirm=lambda p: True)
    assert goal_raw(handle) == before
