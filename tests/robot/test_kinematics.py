"""FK against values computed by hand from the SO-101 table, symmetry, Jacobian, FK∘IK = identity."""

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robot.errors import KinematicsError
from robot.kinematics import SO101, IKConfig, KinematicChain, rotation_exp, rotation_log, rpy_matrix
from robot.so101 import SO101_CHAIN, SO101_TOOL, JointSpec

READY = np.array([0.0, -1.0, 1.0, 0.5, 0.0])


def test_rpy_matches_scipy_fixed_axis_xyz():
    rpy = (0.3, -1.1, 2.0)
    np.testing.assert_allclose(rpy_matrix(rpy), Rotation.from_euler("xyz", rpy).as_matrix(), atol=1e-12)


def test_zero_pose_tool_position_by_hand():
    # At q = 0 every joint rotation is the identity, so the tool position is the six origins of the
    # table composed (worked on paper with the rpy matrices, rounded to 0.1 mm):
    expected = np.array([0.0204, -0.3756, 0.2590])
    np.testing.assert_allclose(SO101.forward(np.zeros(5))[:3, 3], expected, atol=1e-4)
    # The tool frame at zero is aligned with the base frame (the table's rpy cancel out).
    np.testing.assert_allclose(SO101.forward(np.zeros(5))[:3, :3], np.eye(3), atol=1e-9)


def test_zero_pose_matches_independent_composition():
    pose = np.eye(4)
    for joint in (*SO101_CHAIN, SO101_TOOL):
        step = np.eye(4)
        step[:3, :3] = Rotation.from_euler("xyz", joint.rpy).as_matrix()
        step[:3, 3] = joint.xyz
        pose = pose @ step
    np.testing.assert_allclose(SO101.forward(np.zeros(5)), pose, atol=1e-12)


def test_single_joint_chain_is_a_circle():
    arm = KinematicChain((JointSpec("j", 1, (0.0, 0.0, 0.1), (0.0, 0.0, 0.0), (-3.0, 3.0)),),
                         JointSpec("tool", None, (0.2, 0.0, 0.0), (0.0, 0.0, 0.0), None))
    for angle in (-1.0, 0.0, 0.7, 2.5):
        np.testing.assert_allclose(arm.forward(np.array([angle]))[:3, 3],
                                   [0.2 * math.cos(angle), 0.2 * math.sin(angle), 0.1], atol=1e-12)


def test_pan_rotates_tool_about_pan_axis():
    frames, tool = SO101.joint_frames(READY)
    axis_point, axis = frames[0, :3, 3], frames[0, :3, 2]
    for pan in (-1.2, 0.4, 1.5):
        moved = SO101.forward(READY + np.array([pan, 0, 0, 0, 0]))[:3, 3]
        expected = axis_point + rotation_exp(axis * pan) @ (tool[:3, 3] - axis_point)
        np.testing.assert_allclose(moved, expected, atol=1e-12)


def test_pan_mirror_symmetry():
    # Opposite pan angles give tool positions mirrored through the plane holding the pan axis.
    frames, _ = SO101.joint_frames(np.zeros(5))
    centre, axis = frames[0, :3, 3], frames[0, :3, 2]
    plus = SO101.forward(READY + np.array([0.6, 0, 0, 0, 0]))[:3, 3] - centre
    minus = SO101.forward(READY + np.array([-0.6, 0, 0, 0, 0]))[:3, 3] - centre
    assert abs(plus @ axis - minus @ axis) < 1e-12
    assert abs(np.linalg.norm(plus) - np.linalg.norm(minus)) < 1e-12


def test_jacobian_matches_finite_differences():
    jac, _ = SO101.jacobian(READY)
    eps = 1e-6
    for index in range(5):
        delta = np.zeros(5)
        delta[index] = eps
        plus, minus = SO101.forward(READY + delta), SO101.forward(READY - delta)
        np.testing.assert_allclose(jac[:3, index], (plus[:3, 3] - minus[:3, 3]) / (2 * eps), atol=1e-7)
        angular = rotation_log(plus[:3, :3] @ minus[:3, :3].T) / (2 * eps)
        np.testing.assert_allclose(jac[3:, index], angular, atol=1e-6)


@pytest.mark.parametrize("angle", [0.0, 1e-9, 0.5, 2.0, math.pi - 1e-6, math.pi])
def test_rotation_log_exp_round_trip(angle):
    axis = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    rotation = rotation_exp(axis * angle)
    np.testing.assert_allclose(rotation_exp(rotation_log(rotation)), rotation, atol=1e-6)


def test_fk_of_ik_is_identity_on_reachable_poses():
    rng = np.random.default_rng(7)
    for _ in range(40):
        joints = SO101.clamp(READY + rng.uniform(-0.6, 0.6, 5))
        pose = SO101.forward(joints)
        result = SO101.inverse(pose[:3, 3], READY, pose[:3, :3])
        assert result.converged
        reached = SO101.forward(result.joints)
        assert np.linalg.norm(reached[:3, 3] - pose[:3, 3]) < 1e-4
        assert np.linalg.norm(rotation_log(reached[:3, :3] @ pose[:3, :3].T)) < 1e-2


def test_position_is_exact_when_orientation_is_infeasible():
    start = SO101.forward(READY)
    target = start[:3, 3] + np.array([0.05, -0.03, 0.04])
    # Translating while keeping the orientation is impossible for 5 joints: orientation gives way.
    result = SO101.inverse(target, READY, start[:3, :3])
    assert result.position_error < 1e-6
    assert result.orientation_error > 1e-3


def test_warm_started_path_converges_in_few_iterations():
    start = SO101.forward(READY)
    path = start[:3, 3] + np.linspace(0, 1, 33)[:, None] * np.array([0.05, -0.03, 0.04])
    results = SO101.inverse_path(path, READY, np.repeat(start[None, :3, :3], 33, axis=0))
    assert max(r.position_error for r in results) < 1e-5
    assert np.mean([r.iterations for r in results]) <= 6
    joints = np.array([r.joints for r in results])
    assert np.abs(np.diff(joints, axis=0)).max() < 0.1  # warm starts keep the path smooth


def test_unreachable_target_is_not_converged_and_respects_limits():
    result = SO101.inverse(np.array([0.0, -1.0, 0.2]), READY, config=IKConfig(limit_margin=0.05))
    assert not result.converged
    assert result.position_error > 0.4
    assert (result.joints >= SO101.lower + 0.05 - 1e-12).all() and (result.joints <= SO101.upper - 0.05 + 1e-12).all()


def test_bad_joint_vector_names_the_fix():
    with pytest.raises(KinematicsError, match="5 finite angles"):
        SO101.forward(np.zeros(6))


def test_joint_at_its_limit_is_locked_and_the_others_reach_the_position():
    # The orientation goal wants wrist_flex 0.3 rad past its limit; the position is reachable within limits.
    beyond = np.array([0.2, -0.9, 0.8, SO101.upper[3] + 0.3, 0.1])
    goal_rotation = SO101.forward(beyond)[:3, :3]
    inside = np.array([0.2, -0.9, 0.8, SO101.upper[3] - 0.05, 0.1])
    target = SO101.forward(inside)[:3, 3]
    result = SO101.inverse(target, READY, goal_rotation, IKConfig(limit_margin=0.02))
    assert result.position_error < 1e-4  # position wins; the wrist stops at its limit (with margin)
    assert result.joints[3] <= SO101.upper[3] - 0.02 + 1e-12


def test_ik_of_a_point_offset_from_the_tool():
    offset = np.array([0.01, -0.02, 0.03])  # a point on the gripper, in the tool frame
    joints = SO101.clamp(READY + np.array([0.3, -0.2, 0.1, 0.2, -0.3]))
    pose = SO101.forward(joints)
    target = pose[:3, :3] @ offset + pose[:3, 3]
    result = SO101.inverse(target, READY, pose[:3, :3], offset=offset)
    reached = SO101.forward(result.joints)
    assert np.linalg.norm(reached[:3, :3] @ offset + reached[:3, 3] - target) < 1e-4
    jac, _ = SO101.jacobian(READY, offset)
    delta = np.zeros(5)
    delta[1] = 1e-6
    moved = [SO101.forward(READY + sign * delta) for sign in (1, -1)]
    numeric = (moved[0][:3, :3] @ offset + moved[0][:3, 3] - moved[1][:3, :3] @ offset - moved[1][:3, 3]) / 2e-6
    np.testing.assert_allclose(jac[:3, 1], numeric, atol=1e-7)
