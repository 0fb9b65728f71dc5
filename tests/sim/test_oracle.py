"""The oracle trace: the scripted demonstration of a trial layout, filmed exactly in the trial camera."""

import numpy as np
import pytest

from robot.sim.arm_world import SimArmWorld
from robot.sim.oracle import oracle_trace
from robot.sim.tasks import TASKS
from store.trace import MODEL_STEPS, NUM_POINTS, grid_points


@pytest.mark.parametrize("task", TASKS)
def test_one_prediction_spans_the_whole_scripted_task(task):
    oracle = oracle_trace(task, 90_000)
    assert oracle.scripted_success
    assert 5 <= oracle.steps <= MODEL_STEPS  # the model's 32-step horizon covers the demonstration
    assert oracle.traj.shape == (NUM_POINTS, len(oracle.valid), 3) and oracle.valid[: oracle.steps + 1].all()
    np.testing.assert_allclose(oracle.traj[:, 0, :2], grid_points(320, 240), atol=1e-3)  # starts on the grid
    assert np.isnan(oracle.traj[:, ~oracle.valid]).all()


def test_the_trace_starts_from_what_the_trial_camera_sees():
    world = SimArmWorld("place_block", seed=90_000)
    try:
        world.move_to_home()
        seen = world.observe()
    finally:
        world.close()
    oracle = oracle_trace("place_block", 90_000)
    grid = np.round(grid_points(320, 240)).astype(int)
    depth_at_grid = seen.depth[grid[:, 1], grid[:, 0]]
    hit = np.isfinite(depth_at_grid)
    close = np.abs(oracle.traj[hit, 0, 2] - depth_at_grid[hit]) <= 0.03 * depth_at_grid[hit]
    assert close.mean() > 0.97  # the rendered depth at the nearest pixel (edges may fall on the other side)
    np.testing.assert_allclose(oracle.intrinsics, seen.intrinsics)
    assert oracle.instruction == seen.instruction
