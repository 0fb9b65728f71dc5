"""The oracle trace of a trial layout: what a perfect model would predict.

The scripted SO-101 demonstrator does the task in a copy of the trial's world (same seed: same
layout, camera and look), starting from the ready pose the trial starts from; the grid's surface
points are followed exactly (`groundtruth.GridTracker`) in the calibrated camera and retargeted by
arc length as forge retargets (`store.trace.retarget_arc_length`). Executing this trace measures the
execution pipeline alone (trace -> plan -> servo bus -> physics): the ceiling of any model's success.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot.sim.arm_world import SimArmWorld
from robot.sim.demonstrator import make_plan, run_plan, sample_style
from robot.sim.groundtruth import GridTracker
from robot.sim.tasks import task_success
from store.trace import project, retarget_arc_length

ORACLE_FPS = 15.0  # frames sampled per simulated second, as the demo videos are filmed
STYLE_STREAM = (0, 104729)  # with the layout seed, seeds the demonstrator (the README's oracle figures used it)


@dataclass(frozen=True)
class OracleTrace:
    """The scripted demonstration's trace in the trial camera.

    Attributes:
        traj: (K, L, 3) float32 (u, v, z) retargeted, L = MAX_STEPS + 1 (NaN past the valid steps).
        valid: (L,) bool.
        intrinsics: (3, 3) float64.
        image_size: (H, W).
        instruction: the trial's instruction.
        scripted_success: whether the scripted demonstration itself completed the task.
    """

    traj: np.ndarray
    valid: np.ndarray
    intrinsics: np.ndarray
    image_size: tuple[int, int]
    instruction: str
    scripted_success: bool

    @property
    def steps(self) -> int:
        """Retargeted steps after the start the whole demonstration takes."""
        return int(self.valid.sum()) - 1


def oracle_trace(task: str, seed: int, width: int = 320, height: int = 240) -> OracleTrace:
    """Film the scripted demonstration of trial layout (`task`, `seed`) as an exact trace (see module doc)."""
    world = SimArmWorld(task, seed=seed, width=width, height=height)
    try:
        world.move_to_home()
        scene = world.scene
        rng = np.random.default_rng(np.random.SeedSequence([seed, *STYLE_STREAM]))  # the demonstrator's style and noise
        style = sample_style("so101", rng)
        plan = make_plan(scene, style, rng)
        scene.forward()
        rotation, position = world.rig.pose(0.0)
        tracker = GridTracker(scene.model, scene.data, world.intrinsics, rotation, position, width, height)
        frames, seen = [], []
        clock = {"next": 0.0}

        def capture(t: float) -> None:
            if t + 1e-9 < clock["next"]:
                return
            scene.forward()
            points = tracker.world_points(scene.data)  # (K, 3) world
            frames.append((points - position) @ rotation)  # (K, 3) camera frame
            seen.append(tracker.visible(scene.data, points, rotation, position))
            clock["next"] = len(frames) / ORACLE_FPS

        capture(0.0)
        run_plan(scene, plan, style, rng, capture, unpark=False)
        success = task_success(task, scene.model, scene.data, world.layout.params)
    finally:
        world.close()
    with np.errstate(invalid="ignore", divide="ignore"):  # points frame 0 saw nothing at are NaN
        uvz = project(np.stack(frames, axis=1), world.intrinsics)  # (K, F, 3)
    visible = np.stack(seen, axis=1) & np.isfinite(uvz).all(-1)
    retargeted = retarget_arc_length(uvz, visible, width, height)
    traj = retargeted.traj.copy()
    traj[:, ~retargeted.valid] = np.nan
    return OracleTrace(traj=traj, valid=retargeted.valid, intrinsics=world.intrinsics.astype(np.float64), image_size=(height, width),
                       instruction=world.instruction, scripted_success=bool(success))
