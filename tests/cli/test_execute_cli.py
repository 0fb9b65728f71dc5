"""`tracegen execute`: dry run opens no port; a confirmed run on the emulator ends on target; bad input -> one line."""

import numpy as np
import pytest
from typer.testing import CliRunner

from robot.arm import open_arm
from robot.emulator import start_emulator
from robot.execute import READY_POSE, synthetic_gripper_trace
from robot.kinematics import SO101
from store.trace import save_trace_file
from tests.robot.test_control import CALIBRATION, place
from tests.robot.test_planning import CAMERA, DISPLACEMENT
from tracegen_cli.main import app

runner = CliRunner()


@pytest.fixture
def inputs(tmp_path):
    trace = save_trace_file(tmp_path / "trace.npz", synthetic_gripper_trace(READY_POSE, CAMERA, DISPLACEMENT))
    return trace, CAMERA.save(tmp_path / "cam.json"), CALIBRATION.save(tmp_path / "arm.json") or tmp_path / "arm.json"


def test_dry_run_prints_plan_and_checks_without_a_port(inputs, tmp_path):
    trace, cam, _ = inputs
    result = runner.invoke(app, ["execute", str(trace), "--camera-to-base", str(cam), "--port", "/dev/does-not-exist",
                                 "--dry-run", "--save-plan", str(tmp_path / "plan.npz")])
    assert result.exit_code == 0, result.output
    assert "all safety checks passed" in result.output and "no port was opened" in result.output
    assert "step" in result.output and "IK residual" in result.output
    saved = np.load(tmp_path / "plan.npz")
    np.testing.assert_allclose(saved["joints"][0], READY_POSE)
    expected = SO101.forward(READY_POSE[:5])[:3, 3] + CAMERA.base_from_camera[:3, :3] @ DISPLACEMENT
    assert np.linalg.norm(SO101.forward(saved["joints"][-1, :5])[:3, 3] - expected) < 1e-3


def test_confirmed_run_on_the_emulator_reaches_the_target(inputs):
    trace, cam, calibration = inputs
    with start_emulator("so101") as handle:
        place(handle, READY_POSE)
        result = runner.invoke(app, ["execute", str(trace), "--camera-to-base", str(cam), "--port", handle.url,
                                     "--calibration", str(calibration), "--speed", "0.05"], input="y\n")
        assert result.exit_code == 0, result.output
        assert "Move the so101" in result.output and "done" in result.output
        with open_arm("so101", handle.url, CALIBRATION) as arm:
            final = SO101.forward(arm.read_positions()[:5])[:3, 3]
    expected = SO101.forward(READY_POSE[:5])[:3, 3] + CAMERA.base_from_camera[:3, :3] @ DISPLACEMENT
    assert np.linalg.norm(final - expected) < 0.005


def test_declining_moves_nothing(inputs):
    trace, cam, calibration = inputs
    with start_emulator("so101") as handle:
        place(handle, READY_POSE)
        result = runner.invoke(app, ["execute", str(trace), "--camera-to-base", str(cam), "--port", handle.url,
                                     "--calibration", str(calibration)], input="n\n")
        assert result.exit_code == 1 and "nothing moved" in result.output
        with handle.lock:
            assert not any(handle.backend.torque.values())


def test_unsafe_plan_is_one_red_line(inputs, tmp_path):
    _, cam, _ = inputs
    far = save_trace_file(tmp_path / "far.npz", synthetic_gripper_trace(READY_POSE, CAMERA, np.array([0.0, 0.0, -0.5])))
    result = runner.invoke(app, ["-q", "execute", str(far), "--camera-to-base", str(cam), "--dry-run"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: waypoint") and "unreachable" in lines[0]


def test_bad_options_and_files_name_the_fix(inputs, tmp_path):
    trace, cam, _ = inputs
    missing = runner.invoke(app, ["execute", str(trace), "--camera-to-base", str(tmp_path / "nope.json"), "--dry-run"])
    assert missing.exit_code == 1 and "camera-to-base file" in missing.output
    schedule = runner.invoke(app, ["execute", str(trace), "--camera-to-base", str(cam), "--dry-run", "--gripper", "grab@3"])
    assert schedule.exit_code == 1 and "open@STEP or close@STEP" in schedule.output
    no_port = runner.invoke(app, ["execute", str(trace), "--camera-to-base", str(cam)])
    assert no_port.exit_code == 2 and "--port" in no_port.output
    word = runner.invoke(app, ["execute", str(trace), "--camera-to-base", str(cam), "--dry-run", "--hypothesis", "best"])
    assert word.exit_code == 2 and "'best'" in word.output and "--hypothesis" in word.output
    absent = runner.invoke(app, ["execute", str(trace), "--camera-to-base", str(cam), "--dry-run", "--hypothesis", "2"])
    assert absent.exit_code == 1 and "hypothesis 2 does not exist" in absent.output


def test_gripper_mask_selects_the_followed_points(inputs, tmp_path):
    trace, cam, _ = inputs
    np.save(tmp_path / "mask.npy", np.array([0, 1, 2]))  # top-left corner: the static background
    result = runner.invoke(app, ["execute", str(trace), "--camera-to-base", str(cam), "--dry-run",
                                 "--gripper-mask", str(tmp_path / "mask.npy"), "--save-plan", str(tmp_path / "p.npz")])
    assert result.exit_code == 0, result.output
    assert "3 trace points followed" in result.output
    joints = np.load(tmp_path / "p.npz")["joints"]
    np.testing.assert_allclose(joints[-1, :5], READY_POSE[:5], atol=1e-6)  # the background never moves
    bad = runner.invoke(app, ["execute", str(trace), "--camera-to-base", str(cam), "--dry-run",
                              "--gripper-mask", str(tmp_path / "missing.npy")])
    assert bad.exit_code == 2 and "--gripper-mask" in bad.output


def test_floor_bounds_how_low_the_tool_may_go(inputs, tmp_path):
    _, cam, _ = inputs
    tool = SO101.forward(READY_POSE[:5])[:3, 3]
    down = CAMERA.base_from_camera[:3, :3].T @ np.array([0.0, 0.0, 0.006 - tool[2]])  # to 6 mm above the table
    low = save_trace_file(tmp_path / "low.npz", synthetic_gripper_trace(READY_POSE, CAMERA, down))
    refused = runner.invoke(app, ["-q", "execute", str(low), "--camera-to-base", str(cam), "--dry-run"])
    assert refused.exit_code == 1 and "leaves the workspace box on z" in refused.output and "--floor" in refused.output
    allowed = runner.invoke(app, ["execute", str(low), "--camera-to-base", str(cam), "--dry-run", "--floor", "0.003"])
    assert allowed.exit_code == 0, allowed.output
    assert "all safety checks passed" in allowed.output and "0.003" in allowed.output
    bad = runner.invoke(app, ["execute", str(low), "--camera-to-base", str(cam), "--dry-run", "--floor", "0.6"])
    assert bad.exit_code == 2 and "--floor" in bad.output
