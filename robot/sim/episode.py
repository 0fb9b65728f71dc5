"""One demonstration episode: build a seeded scene, run the scripted demonstrator, film it, and keep
the exact ground truth of the grid's surface points.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from robot.sim.cameras import CAMERA_KINDS, intrinsics_matrix, sample_camera, world_to_camera
from robot.sim.demonstrator import make_plan, run_plan, sample_style
from robot.sim.embodiments import EMBODIMENTS
from robot.sim.errors import SimConfigError
from robot.sim.groundtruth import GridTracker
from robot.sim.render import FrameRenderer
from robot.sim.tasks import INSTRUCTIONS, TASKS, sample_layout, task_success
from robot.sim.world import build_scene

log = logging.getLogger(__name__)
START_POSES = ("park", "home")


@dataclass(frozen=True)
class EpisodeConfig:
    """What to film.

    Attributes:
        task: one of `robot.sim.tasks.TASKS`.
        embodiment: "so101" | "other_robot" | "human".
        camera: "static" | "handheld".
        seed: run seed; with `index` it fixes everything random in the episode.
        index: episode number within the run.
        width, height: image size in pixels (even numbers, for H.264).
        fps: frames per second of the video.
        depth: also keep the rendered depth maps.
        start: where an arm starts: "park" (folded out of the camera's way; the video opens with the
            move to the ready pose) or "home" (at the ready pose, as a robot's own demos and trials
            start). The hand ignores it.
    """

    task: str = "place_block"
    embodiment: str = "so101"
    camera: str = "static"
    seed: int = 0
    index: int = 0
    width: int = 320
    height: int = 240
    fps: float = 15.0
    depth: bool = True
    start: str = "park"

    def validate(self) -> None:
        """Raise `SimConfigError` naming the first bad field."""
        for value, allowed, what in ((self.task, TASKS, "task"), (self.embodiment, EMBODIMENTS, "embodiment"),
                                     (self.camera, CAMERA_KINDS, "camera")):
            if value not in allowed:
                raise SimConfigError(f"unknown {what} {value!r}; pick one of {', '.join(allowed)}")
        if not (16 <= self.width <= 1920 and 16 <= self.height <= 1080) or self.width % 2 or self.height % 2:
            raise SimConfigError(f"image size {self.width}x{self.height} must be even and within 16x16..1920x1080")
        if self.start not in START_POSES:
            raise SimConfigError(f"unknown start {self.start!r}; pick one of {', '.join(START_POSES)}")
        if not 1.0 <= self.fps <= 120.0:
            raise SimConfigError(f"fps {self.fps} is out of range; pass --fps between 1 and 120")


@dataclass
class Episode:
    """A filmed demonstration.

    Attributes:
        frames: (T, H, W, 3) uint8 RGB.
        depth: (T, H, W) float32 z-depth, metres (NaN where nothing), or None.
        intrinsics: (3, 3) float64 pinhole matrix, pixels.
        camera_poses: (T, 4, 4) float64 world-to-camera (OpenCV axes).
        gt_world: (T, K, 3) float32 world positions of the grid's frame-0 surface points.
        gt_uvz: (T, K, 3) float32 the same in the frame-0 camera: u, v pixels, z metres.
        gt_visible: (T, K) bool.
        gt_geom: (K,) int32 geom hit at frame 0 (-1: nothing).
        instructions: phrasings of the task, the first is the episode's instruction.
        success: the task's success check on the final state.
    """

    config: EpisodeConfig
    frames: np.ndarray
    depth: np.ndarray | None
    intrinsics: np.ndarray
    camera_poses: np.ndarray
    gt_world: np.ndarray
    gt_uvz: np.ndarray
    gt_visible: np.ndarray
    gt_geom: np.ndarray
    instructions: list[str]
    success: bool
    timings: dict[str, float] = field(default_factory=dict)


def episode_rng(config: EpisodeConfig) -> np.random.Generator:
    """The episode's random stream, a function of (seed, index, task, embodiment, camera)."""
    keys = (config.seed, config.index, TASKS.index(config.task), EMBODIMENTS.index(config.embodiment),
            CAMERA_KINDS.index(config.camera))
    return np.random.default_rng(np.random.SeedSequence(list(keys)))


def generate_episode(config: EpisodeConfig) -> Episode:
    """Simulate and film one episode (see `EpisodeConfig`)."""
    config.validate()
    started = time.perf_counter()
    rng = episode_rng(config)
    layout = sample_layout(config.task, rng)
    scene = build_scene(config.task, config.embodiment, layout, rng, config.width, config.height)
    if config.start == "home" and len(scene.embodiment.home):
        scene.place_arm(np.asarray(scene.embodiment.home, dtype=float))
    rig = sample_camera(config.camera, rng)
    scene.model.cam_fovy[scene.camera_id] = rig.fovy
    intrinsics = intrinsics_matrix(rig.fovy, config.width, config.height)
    style = sample_style(config.embodiment, rng)
    plan = make_plan(scene, style, rng)
    phrasings = list(INSTRUCTIONS[config.task])
    instructions = [phrasings[i] for i in rng.permutation(len(phrasings))]
    renderer = FrameRenderer(scene.model, config.width, config.height, scene.camera_id)
    film = _Film(scene, renderer, rig, intrinsics, config)
    try:
        film.capture(0.0)
        run_plan(scene, plan, style, rng, film.on_step, unpark=config.start == "park")
    finally:
        renderer.close()
    success = task_success(config.task, scene.model, scene.data, layout.params)
    log.debug("episode %s/%s/%s seed %d #%d: %d frames, success %s", config.task, config.embodiment, config.camera,
              config.seed, config.index, len(film.frames), success)
    episode = film.episode(instructions, success)
    episode.timings = {"total_s": time.perf_counter() - started, "render_s": film.render_seconds}
    return episode


class _Film:
    """Collects frames at the video rate while the demonstrator runs."""

    def __init__(self, scene, renderer: FrameRenderer, rig, intrinsics: np.ndarray, config: EpisodeConfig):
        self.scene, self.renderer, self.rig, self.intrinsics, self.config = scene, renderer, rig, intrinsics, config
        self.frames, self.depths, self.poses, self.world, self.visible = [], [], [], [], []
        self.tracker: GridTracker | None = None
        self.next_time = 0.0
        self.render_seconds = 0.0

    def on_step(self, t: float) -> None:
        if t + 1e-9 >= self.next_time:
            self.capture(t)

    def capture(self, t: float) -> None:
        scene = self.scene
        scene.forward()
        rotation, position = self.rig.pose(t)
        if self.tracker is None:
            self.tracker = GridTracker(scene.model, scene.data, self.intrinsics, rotation, position,
                                       self.config.width, self.config.height)
        tick = time.perf_counter()
        rgb, depth = self.renderer.render(scene.data, rotation, position, with_depth=self.config.depth)
        self.render_seconds += time.perf_counter() - tick
        world = self.tracker.world_points(scene.data)
        self.frames.append(rgb)
        if depth is not None:
            self.depths.append(depth)
        self.poses.append(world_to_camera(rotation, position))
        self.world.append(world)
        self.visible.append(self.tracker.visible(scene.data, world, rotation, position))
        self.next_time = len(self.frames) / self.config.fps

    def episode(self, instructions: list[str], success: bool) -> Episode:
        world = np.stack(self.world)  # (T, K, 3)
        first = self.poses[0]
        camera0 = world @ first[:3, :3].T + first[:3, 3]  # (T, K, 3) in the frame-0 camera
        z = camera0[..., 2]
        uvz = np.stack([self.intrinsics[0, 0] * camera0[..., 0] / z + self.intrinsics[0, 2],
                        self.intrinsics[1, 1] * camera0[..., 1] / z + self.intrinsics[1, 2], z], axis=-1)
        return Episode(
            config=self.config, frames=np.stack(self.frames),
            depth=np.stack(self.depths) if self.depths else None, intrinsics=self.intrinsics,
            camera_poses=np.stack(self.poses), gt_world=world.astype(np.float32), gt_uvz=uvz.astype(np.float32),
            gt_visible=np.stack(self.visible), gt_geom=self.tracker.geom.astype(np.int32),
            instructions=instructions, success=bool(success))
