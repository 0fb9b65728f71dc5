"""The simulated SO-101 as a robot to evaluate on: a seeded task layout, a servo backend for the bus
emulator, an observation from the arm's calibrated camera (the input of `tracegen predict`), and the
task's success check after execution.

Frames: `base` is the SO-101's base link (the body `so101_base`, whose frame is the kinematic
table's base frame); the camera frame follows OpenCV (x right, y down, z forward).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robot.sim.cameras import intrinsics_matrix, sample_camera, world_to_camera
from robot.sim.render import FrameRenderer
from robot.sim.servo_backend import MujocoServoBackend
from robot.sim.tasks import INSTRUCTIONS, goal_distance, goal_offset, sample_layout, task_success
from robot.sim.world import build_scene


@dataclass(frozen=True)
class SimObservation:
    """What the arm's camera sees.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        depth: (H, W) float32 z-depth, metres (NaN where nothing).
        intrinsics: (3, 3) float64 pinhole matrix, pixels.
        camera_to_base: (4, 4) float64 transform from the camera frame to the SO-101 base frame.
        instruction: the task's instruction for this layout.
    """

    image: np.ndarray
    depth: np.ndarray
    intrinsics: np.ndarray
    camera_to_base: np.ndarray
    instruction: str


def save_observation(observation: SimObservation, folder: str | Path) -> dict[str, Path]:
    """Write what `tracegen predict` reads: image.png, depth.npz (key `depth`, metres), intrinsics.txt
    (`fx,fy,cx,cy`), instruction.txt; plus camera_to_base.npy. Returns the paths by kind."""
    import cv2

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = {"image": folder / "image.png", "depth": folder / "depth.npz", "intrinsics": folder / "intrinsics.txt",
             "instruction": folder / "instruction.txt"}
    cv2.imwrite(str(files["image"]), cv2.cvtColor(observation.image, cv2.COLOR_RGB2BGR))
    np.savez_compressed(files["depth"], depth=observation.depth.astype(np.float32))
    k = observation.intrinsics
    files["intrinsics"].write_text(f"{k[0, 0]:.9g},{k[1, 1]:.9g},{k[0, 2]:.9g},{k[1, 2]:.9g}\n")
    files["instruction"].write_text(observation.instruction + "\n")
    return files


class SimArmWorld:
    """One seeded layout of `task` with the simulated SO-101 (see module docstring).

    Args:
        task: one of `robot.sim.tasks.TASKS`.
        seed: fixes the layout, the look, the camera pose and the instruction.
        width, height: camera image size, pixels.
        calibration: the arm's `ArmCalibration` (default: the nominal SO-101 calibration).
    """

    def __init__(self, task: str, seed: int = 0, width: int = 320, height: int = 240, calibration=None):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 7919]))
        self.task = task
        self.layout = sample_layout(task, rng)
        self.scene = build_scene(task, "so101", self.layout, rng, width, height)
        self.rig = sample_camera("calibrated", rng)
        self.scene.model.cam_fovy[self.scene.camera_id] = self.rig.fovy
        self.intrinsics = intrinsics_matrix(self.rig.fovy, width, height)
        self.instruction = INSTRUCTIONS[task][int(rng.integers(len(INSTRUCTIONS[task])))]
        self.backend = MujocoServoBackend(self.scene, calibration)
        self.renderer: FrameRenderer | None = None
        self.width, self.height = width, height

    def move_to_home(self) -> None:
        """Put the arm in its ready pose (gripper in front, open) and rebuild the servo backend there.

        The simulator parks the SO-101 folded over its base (tool on the pan axis); from there the
        first centimetres of most Cartesian paths are out of reach for a 5-DoF arm. A real user starts
        from a ready pose, and so do evaluation trials.
        """
        self.scene.place_arm(np.asarray(self.scene.embodiment.home, dtype=float))
        self.backend = MujocoServoBackend(self.scene, self.backend.calibration)

    def base_to_world(self) -> np.ndarray:
        """(4, 4) pose of the SO-101 base frame in the world."""
        body = self.scene.data.body(self.scene.embodiment.base_body)
        transform = np.eye(4)
        transform[:3, :3] = body.xmat.reshape(3, 3)
        transform[:3, 3] = body.xpos
        return transform

    def camera_to_base(self) -> np.ndarray:
        """(4, 4) camera (OpenCV axes) to base transform: `p_base = T @ p_camera`."""
        rotation, position = self.rig.pose(0.0)
        camera_to_world = np.linalg.inv(world_to_camera(rotation, position))
        return np.linalg.inv(self.base_to_world()) @ camera_to_world

    def observe(self) -> SimObservation:
        """Render RGB-D from the calibrated camera now."""
        if self.renderer is None:
            self.renderer = FrameRenderer(self.scene.model, self.width, self.height, self.scene.camera_id)
        self.scene.forward()
        rotation, position = self.rig.pose(0.0)
        image, depth = self.renderer.render(self.scene.data, rotation, position)
        return SimObservation(image=image, depth=depth, intrinsics=self.intrinsics.copy(),
                              camera_to_base=self.camera_to_base(), instruction=self.instruction)

    def tool_in_camera(self) -> np.ndarray:
        """(3,) the gripper frame's origin in the camera frame, metres."""
        self.scene.forward()
        rotation, position = self.rig.pose(0.0)
        return rotation.T @ (self.scene.tool_pose()[0] - position)

    def tool_in_base(self) -> np.ndarray:
        """(3,) the gripper frame's origin in the base frame, metres."""
        self.scene.forward()
        world = np.r_[self.scene.tool_pose()[0], 1.0]
        return (np.linalg.inv(self.base_to_world()) @ world)[:3]

    def write_calibration(self, path) -> Path:
        """Save the arm's servo calibration (LeRobot JSON) for `tracegen execute --calibration`."""
        self.backend.calibration.save(path)
        return Path(path)

    def write_camera_to_base(self, path) -> Path:
        """Save the exact camera-to-base transform for `tracegen execute --camera-to-base`."""
        from robot.camera_to_base import CameraToBase

        return CameraToBase(base_from_camera=self.camera_to_base(), method="simulation").save(path)

    def settle(self, seconds: float = 0.5) -> None:
        """Let physics run (dropped objects come to rest) before checking success."""
        self.backend.advance(seconds)

    def success(self) -> bool:
        """The task's success check on the current state."""
        return task_success(self.task, self.scene.model, self.scene.data, self.layout.params)

    def goal_distance(self) -> float:
        """Metres the task's object is from its goal now (`robot.sim.tasks.goal_distance`)."""
        self.scene.forward()
        return goal_distance(self.task, self.scene.model, self.scene.data, self.layout.params)

    def goal_offset(self) -> np.ndarray:
        """What still separates the task's object from its goal now, metres (`robot.sim.tasks.goal_offset`)."""
        self.scene.forward()
        return goal_offset(self.task, self.scene.model, self.scene.data)

    def close(self) -> None:
        """Free the renderer."""
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None
