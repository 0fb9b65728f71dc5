"""`tracegen robot camera-to-base`: recorded poses + marker images -> the camera-to-base file execute reads."""

import json

import cv2
import numpy as np
from typer.testing import CliRunner

from robot.camera_to_base import CameraToBase
from robot.kinematics import SO101
from tests.robot.test_camera_to_base import GRIPPER_FROM_MARKER, READY, camera_facing_arm, render_marker
from tracegen_cli.main import app

runner = CliRunner()
INTRINSICS_TEXT = "600,600,320,240"


def _record_poses(folder, count=10, seed=5):
    truth = camera_facing_arm()
    joints = SO101.clamp(READY + np.random.default_rng(seed).uniform(-0.5, 0.5, size=(count, 5)))
    names = []
    for index, q in enumerate(joints):
        marker = np.linalg.inv(truth) @ SO101.forward(q) @ GRIPPER_FROM_MARKER
        names.append(f"pose_{index:02d}.png")
        cv2.imwrite(str(folder / names[-1]), render_marker(marker, 0.06))
    (folder / "poses.json").write_text(json.dumps({"joints": joints.tolist(), "images": names}))
    return truth


def test_camera_to_base_recovers_the_camera_pose(tmp_path):
    truth = _record_poses(tmp_path)
    out = tmp_path / "cam.json"
    result = runner.invoke(app, ["robot", "camera-to-base", str(tmp_path), "--intrinsics", INTRINSICS_TEXT,
                                 "--marker-id", "7", "--out", str(out)])
    assert result.exit_code == 0, result.output
    solved = CameraToBase.load(out)
    assert np.linalg.norm(solved.base_from_camera[:3, 3] - truth[:3, 3]) < 0.02
    assert 6 <= solved.num_samples <= 10  # poses where the marker left the view are skipped
    assert f"from {solved.num_samples} poses" in result.output


def test_camera_to_base_bad_inputs_are_one_line(tmp_path):
    missing = runner.invoke(app, ["robot", "camera-to-base", str(tmp_path), "--intrinsics", INTRINSICS_TEXT])
    assert missing.exit_code == 1 and "poses.json" in missing.output and "Traceback" not in missing.output
    _record_poses(tmp_path, count=3)
    bad_intrinsics = runner.invoke(app, ["robot", "camera-to-base", str(tmp_path), "--intrinsics", "600,600"])
    assert bad_intrinsics.exit_code == 1 and "do not parse" in bad_intrinsics.output
    bad_method = runner.invoke(app, ["robot", "camera-to-base", str(tmp_path), "--intrinsics", INTRINSICS_TEXT, "--method", "magic"])
    assert bad_method.exit_code == 1 and "--method 'magic' is unknown" in bad_method.output
