"""The demo's trial world: the simulator's SO-101 layout (`robot.sim.arm_world.SimArmWorld`) seen
through the `demo_trials.TrialWorld` interface, writing the calibration files `tracegen execute` reads.

The camera-to-base transform and the servo calibration written here are the simulator's exact ones
(a real arm gets them from `tracegen robot calibrate` and a hand-eye calibration).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tracegen_cli.demo_trials import Observation

CAMERA_WIDTH, CAMERA_HEIGHT = 320, 240  # the arm camera's image size, pixels
SETTLE_SECONDS = 0.5  # physics run after execution so dropped objects come to rest before the check


class SimTrialWorld:
    """One seeded layout of `task` with the simulated SO-101 behind a MuJoCo servo backend."""

    def __init__(self, task: str, seed: int, width: int = CAMERA_WIDTH, height: int = CAMERA_HEIGHT,
                 start_at_home: bool = True):
        from robot.sim.arm_world import SimArmWorld

        self.world = SimArmWorld(task, seed=seed, width=width, height=height)
        if start_at_home:  # execute rejects the first centimetres out of the parked pose (IK residual > 5 mm)
            self.world.move_to_home()
        self.backend = self.world.backend

    def observe(self) -> Observation:
        """RGB-D, intrinsics and instruction from the arm's calibrated camera."""
        seen = self.world.observe()
        return Observation(image=np.ascontiguousarray(seen.image, dtype=np.uint8),
                           depth=np.asarray(seen.depth, dtype=np.float32),
                           intrinsics=np.asarray(seen.intrinsics, dtype=np.float32), instruction=seen.instruction)

    def write_calibration(self, path: Path) -> Path:
        """The servo calibration the backend maps raw steps with (LeRobot JSON)."""
        self.backend.calibration.save(path)
        return Path(path)

    def write_camera_to_base(self, path: Path) -> Path:
        """The camera's exact pose in the arm base frame, as `--camera-to-base` JSON."""
        from robot.camera_to_base import CameraToBase

        return CameraToBase(self.world.camera_to_base(), method="simulator (exact)").save(path)

    def tool_in_camera(self) -> np.ndarray:
        """(3,) gripper position in the camera frame, metres."""
        return self.world.tool_in_camera()

    def success(self) -> bool:
        """Let objects settle, then ask the task's success check."""
        self.world.settle(SETTLE_SECONDS)
        return bool(self.world.success())

    def goal_distance(self) -> float:
        """Metres the task's object is from its goal now (call `success` first after a trial: it settles)."""
        return float(self.world.goal_distance())

    def goal_offset(self) -> np.ndarray:
        """What still separates the task's object from its goal now, metres (after `success`, as above)."""
        return self.world.goal_offset()

    def close(self) -> None:
        self.world.close()


def open_trial_world(task: str, seed: int) -> SimTrialWorld:
    """The `WorldFactory` the demo uses: a fresh simulated layout per trial."""
    return SimTrialWorld(task, seed)
