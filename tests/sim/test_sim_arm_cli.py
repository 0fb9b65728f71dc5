"""`tracegen sim arm`: the simulated SO-101 on a pty, driven by our Arm exactly like a real one."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from robot.arm import open_arm
from robot.calibration import ArmCalibration
from robot.camera_to_base import CameraToBase
from robot.kinematics import SO101


@pytest.mark.slow
def test_sim_arm_serves_a_pty_writes_predict_inputs_and_reports_the_final_state(tmp_path):
    command = [sys.executable, "-c", "from tracegen_cli.main import run; run()", "sim", "arm", "--out", str(tmp_path),
               "--task", "open_drawer", "--seed", "1", "--size", "96x72", "--duration", "5"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        assert url.startswith("/dev/"), server.stderr.read()
        calibration = ArmCalibration.load(tmp_path / "calibration.json")
        camera = CameraToBase.load(tmp_path / "camera_to_base.json")
        with open_arm("so101", url, calibration) as arm:
            start = arm.read_positions()
            assert start[:5] == pytest.approx([0.0, 1.5, 1.26, 1.6, 0.0], abs=2e-3)  # the parked pose
            goal = start.copy()
            goal[:4] = [0.3, 0.2, 0.9, 1.0]
            arm.set_torque(True)
            arm.write_goals(goal)
            time.sleep(1.0)
            assert arm.read_positions()[:5] == pytest.approx(goal[:5], abs=2e-3)
        output, errors = server.communicate(timeout=30)
    finally:
        server.kill()
    assert server.returncode == 0, errors
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["task"] == "open_drawer" and result["success"] is False  # nobody opened the drawer
    assert np.array(result["tool_in_base"]) == pytest.approx(SO101.forward(goal[:5])[:3, 3], abs=2e-3)
    intrinsics = [float(x) for x in (tmp_path / "intrinsics.txt").read_text().split(",")]
    assert intrinsics[2:] == [47.5, 35.5]
    assert np.load(tmp_path / "depth.npz")["depth"].shape == (72, 96)
    assert (tmp_path / "instruction.txt").read_text().strip() in ("open the drawer", "pull the drawer open", "slide the drawer out")
    assert camera.base_from_camera[3] == pytest.approx([0, 0, 0, 1])
