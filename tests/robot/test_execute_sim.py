"""execute drives the MuJoCo SO-101 through the byte-exact emulator; MuJoCo's own FK confirms the target."""

import numpy as np
import pytest

from robot.arm import open_arm
from robot.camera_to_base import CameraToBase
from robot.emulator import start_emulator
from robot.execute import ExecuteConfig, execute_on_arm, synthetic_gripper_trace
from robot.kinematics import SO101
from store.trace import save_trace_file

pytest.importorskip("mujoco")


@pytest.mark.slow
def test_execute_on_the_simulated_arm_reaches_the_target(tmp_path):
    from robot.sim.arm_world import SimArmWorld

    world = SimArmWorld("place_block", seed=0)
    try:
        camera = CameraToBase(world.camera_to_base(), method="simulation")
        displacement = np.array([0.03, -0.02, 0.02])  # camera frame, metres
        with start_emulator("so101", backend=world.backend) as handle:
            with open_arm("so101", handle.url, world.backend.calibration) as arm:
                present = arm.read_positions()
                trace = save_trace_file(tmp_path / "trace.npz", synthetic_gripper_trace(present, camera, displacement))
                report = execute_on_arm(trace, camera.save(tmp_path / "cam.json"), arm, ExecuteConfig(), lambda p: True)
                target = SO101.forward(present[:5])[:3, 3] + camera.base_from_camera[:3, :3] @ displacement
                simulated = world.tool_in_base()  # MuJoCo's tool frame, not our FK
        assert np.linalg.norm(simulated - target) < 0.005
        assert np.linalg.norm(report.final_tool - simulated) < 0.002  # our FK of read-back agrees with MuJoCo
    finally:
        world.close()
