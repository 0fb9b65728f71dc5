"""What the gripper holds, from points that move with it; closing and opening inside a coarse trace step."""

import numpy as np
import pytest

from robot.comotion import comoving_points, gripper_closed_by_comotion, split_grasp_moves
from robot.plan_config import PlanConfig

CONFIG = PlanConfig()


def pull_scene(object_x=(0.05, 0.05, 0.05, 0.06, 0.08, 0.09, 0.09)):
    """A tool moving 2 cm per step along +x past an object and a wall point that never moves. By default the
    object, 1 cm ahead of waypoint 2, is picked up halfway through move 2, carried over move 3 and set down
    halfway through move 4, then left behind. Returns (points (K, S, 3), tool path (S, 3), candidates (K,))."""
    tool = np.stack([np.arange(7) * 0.02, np.zeros(7), np.full(7, 0.05)], 1)  # (S=7, 3)
    x = np.asarray(object_x)
    objects = np.stack([np.stack([x + dx, np.full(7, dy), np.full(7, 0.04)], 1)
                        for dx, dy in ((0.0, 0.0), (0.004, 0.01), (-0.004, -0.01))])  # three points on the object
    wall = np.repeat([[[0.06, 0.05, 0.02]]], 7, axis=1)
    points = np.concatenate([objects, wall])
    return points, tool, np.ones(len(points), dtype=bool)


def split(points, tool, candidates):
    held = comoving_points(points, candidates, tool, CONFIG)
    closed = gripper_closed_by_comotion(held, tool, CONFIG)
    return held, closed, split_grasp_moves(points, held, closed, tool, CONFIG)


def test_the_gripper_closes_and_opens_where_the_carrying_starts_and_ends_inside_a_step():
    points, tool, candidates = pull_scene()
    held, closed, (positions, states, source) = split(points, tool, candidates)
    np.testing.assert_array_equal(held.sum(0), [0, 0, 0, 3, 0, 0])  # only move 3 is carrying from end to end
    np.testing.assert_array_equal(closed, [0, 0, 0, 1, 0, 0, 0])
    # Waypoints 0 1 2, then the grasp 1 cm before waypoint 3 (where the object was), 3, 4, the release 1 cm past
    # waypoint 4 (where the object stops), 5, 6.
    np.testing.assert_allclose(positions[:, 0], [0.0, 0.02, 0.04, 0.05, 0.06, 0.08, 0.09, 0.10, 0.12], atol=1e-12)
    np.testing.assert_allclose(positions[:, 1:], np.tile([0.0, 0.05], (9, 1)), atol=1e-12)
    np.testing.assert_array_equal(states, [0, 0, 0, 1, 1, 1, 0, 0, 0])  # closed from the grasp to the release
    np.testing.assert_array_equal(source, [0, 1, 2, 3, 3, 4, 4, 5, 6])
    carried = sum(states[i] * (positions[i + 1, 0] - positions[i, 0]) for i in range(len(states) - 1))
    assert carried == pytest.approx(0.04)  # the tool moves closed exactly as far as the object did


def test_nothing_is_split_when_the_carrying_fills_whole_steps():
    points, tool, candidates = pull_scene((0.05, 0.05, 0.05, 0.05, 0.07, 0.09, 0.09))  # carried over moves 3 and 4
    _, closed, (positions, states, source) = split(points, tool, candidates)
    np.testing.assert_array_equal(closed, [0, 0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(states, closed)
    np.testing.assert_array_equal(source, np.arange(7))
    np.testing.assert_allclose(positions, tool)


def test_motion_against_the_tools_way_is_not_taken_for_carrying():
    """A prediction's jitter: the object steps back 1 cm over move 2, then is carried over move 3."""
    points, tool, candidates = pull_scene((0.06, 0.06, 0.06, 0.05, 0.07, 0.07, 0.07))
    _, closed, (positions, states, source) = split(points, tool, candidates)
    np.testing.assert_array_equal(closed, [0, 0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(source, np.arange(7))  # nothing inserted before waypoint 3, nor after the carry
    np.testing.assert_allclose(positions, tool)
