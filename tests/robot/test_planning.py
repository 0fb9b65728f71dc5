"""Planning: a synthetic trace with a known 3D displacement becomes a plan that ends there."""

import math

import numpy as np
import pytest

from robot.camera_to_base import CameraToBase
from robot.errors import PlanningError
from robot.execute import READY_POSE, synthetic_gripper_trace
from robot.kinematics import SO101, make_transform, rotation_exp, rotation_log
from robot.plan_config import PlanConfig, parse_gripper_schedule
from robot.planning import _trapezoid_arc, _trapezoid_duration, plan_trace, retime
from robot.trace_points import arm_points, follow_points, lift_trace, select_gripper_points
from store.trace import TraceFile, project


def camera_facing_arm() -> CameraToBase:
    forward = np.array([0.05, 0.95, -0.45]) / np.linalg.norm([0.05, 0.95, -0.45])
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    return CameraToBase(make_transform(np.stack([right, np.cross(forward, right), forward], 1), np.array([0.0, -0.75, 0.40])))


CAMERA = camera_facing_arm()
DISPLACEMENT = np.array([0.04, -0.02, 0.03])  # camera frame, metres


def tool_at(joints: np.ndarray) -> np.ndarray:
    return SO101.forward(joints[:5])[:3, 3]


def test_gripper_mode_ends_at_the_known_displacement():
    trace = synthetic_gripper_trace(READY_POSE, CAMERA, DISPLACEMENT)
    plan = plan_trace(trace, CAMERA, READY_POSE)
    moved = CAMERA.base_from_camera[:3, :3] @ DISPLACEMENT
    # The controlled point is where the followed points sit on the gripper (their centroid).
    points = lift_trace(trace, CAMERA)
    start_pose = SO101.forward(READY_POSE[:5])
    weights = select_gripper_points(trace, CAMERA, start_pose[:3, 3], PlanConfig())
    control = start_pose[:3, :3] @ plan.control_offset + start_pose[:3, 3]
    np.testing.assert_allclose(control, weights @ points[:, 0] / weights.sum(), atol=1e-12)
    end_pose = SO101.forward(plan.joints[-1, :5])
    assert np.linalg.norm(end_pose[:3, :3] @ plan.control_offset + end_pose[:3, 3] - (control + moved)) < 1e-4
    assert np.linalg.norm(tool_at(plan.joints[-1]) - (tool_at(READY_POSE) + moved)) < 1e-3  # the tool tip too
    np.testing.assert_allclose(plan.joints[0], READY_POSE)  # starts where the arm is
    assert plan.followed.sum() >= 3
    # The path follows the trace: the controlled point at each key waypoint has the trace's displacement.
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(33) / 32)
    key = plan.waypoints.key
    np.testing.assert_allclose(plan.waypoints.position[key], control + ramp[:, None] * moved, atol=1e-6)


def test_something_moving_with_the_gripper_far_from_it_is_not_held():
    trace = synthetic_gripper_trace(READY_POSE, CAMERA, DISPLACEMENT, object_offset_px=(0, 180), grasp_step=10)  # ~12 cm away
    far = plan_trace(trace, CAMERA, READY_POSE, PlanConfig(gripper="auto"))
    assert (far.waypoints.gripper == PlanConfig().gripper_open).all()
    reach = plan_trace(trace, CAMERA, READY_POSE, PlanConfig(gripper="auto", hold_reach=0.3))  # the same trace, a long reach
    assert (reach.waypoints.gripper == PlanConfig().gripper_closed).any()


def test_retiming_respects_speed_and_acceleration():
    config = PlanConfig(speed=0.02, acceleration=0.05)
    plan = plan_trace(synthetic_gripper_trace(READY_POSE, CAMERA, DISPLACEMENT), CAMERA, READY_POSE, config)
    tool = np.array([tool_at(row) for row in plan.joints])
    speed = np.linalg.norm(np.diff(tool, axis=0), axis=1) / np.diff(plan.times)
    assert speed.max() <= 0.02 * 1.05  # joint-space interpolation bends the line a little
    length = np.linalg.norm(DISPLACEMENT)
    peak_time = 0.02 / 0.05
    assert plan.duration == pytest.approx(2 * peak_time + (length - 0.02 * peak_time) / 0.02, rel=1e-6)
    np.testing.assert_allclose(np.diff(plan.times), 0.01, atol=1e-9 + 0.01)


def test_trapezoid_profile_is_analytic():
    times = np.array([0.0, 0.2, 0.4, 1.0, 1.4])
    arc = _trapezoid_arc(times, length=0.05, speed=0.05, acceleration=0.25)  # ramp 0.2 s, cruise 0.8 s
    np.testing.assert_allclose(arc, [0.0, 0.005, 0.015, 0.045, 0.05], atol=1e-12)


def test_gripper_auto_closes_when_an_object_moves_with_it():
    trace = synthetic_gripper_trace(READY_POSE, CAMERA, DISPLACEMENT, object_offset_px=(0, 70), grasp_step=10)
    plan = plan_trace(trace, CAMERA, READY_POSE, PlanConfig(gripper="auto"))
    key = plan.waypoints.key
    closed = plan.waypoints.gripper[key] == PlanConfig().gripper_closed
    assert not closed[:10].any() and closed[10:].all()
    # Without the object the gripper stays open.
    plain = plan_trace(synthetic_gripper_trace(READY_POSE, CAMERA, DISPLACEMENT), CAMERA, READY_POSE)
    assert (plain.waypoints.gripper == PlanConfig().gripper_open).all()


def test_gripper_schedule_and_dwell():
    config = PlanConfig(gripper="close@12,open@30", gripper_dwell=0.8)
    plan = plan_trace(synthetic_gripper_trace(READY_POSE, CAMERA, DISPLACEMENT), CAMERA, READY_POSE, config)
    key = plan.waypoints.key
    closed = plan.waypoints.gripper[key] == config.gripper_closed
    assert closed[12:30].all() and not closed[:12].any() and not closed[30:].any()
    # While the gripper closes at step 12 the arm holds still for the dwell.
    arrive = plan.waypoints.time[key][11]
    during = (plan.times > arrive + 0.05) & (plan.times < arrive + 0.75)
    assert np.ptp(plan.joints[during, :5], axis=0).max() < 0.02
    assert parse_gripper_schedule("open@30, close@12") == [(12, True), (30, False)]
    with pytest.raises(PlanningError, match="open@STEP or close@STEP"):
        parse_gripper_schedule("grab@3")
    with pytest.raises(PlanningError, match="past the trace's last step"):
        plan_trace(synthetic_gripper_trace(READY_POSE, CAMERA, DISPLACEMENT), CAMERA, READY_POSE, PlanConfig(gripper="close@99"))


def test_rotation_followed_only_when_enough_spread_points_agree():
    rng = np.random.default_rng(0)
    start = rng.uniform(-0.03, 0.03, size=(30, 3)) + np.array([0.0, -0.25, 0.15])
    rotation = rotation_exp(np.array([0.0, 0.0, 0.3]))
    centre = start.mean(0)
    moved = (start - centre) @ rotation.T + centre + np.array([0.01, 0.0, 0.0])
    moved[:8] += rng.uniform(-0.05, 0.05, size=(8, 3))  # outliers: RANSAC must ignore them
    points = np.stack([start, moved], axis=1)  # (K, 2, 3)
    path, relative, rotated = follow_points(points, np.ones(30), centre, PlanConfig())
    assert rotated == 1
    assert math.degrees(np.linalg.norm(rotation_log(relative[1] @ rotation.T))) < 0.01
    np.testing.assert_allclose(path[1], centre + [0.01, 0.0, 0.0], atol=1e-9)
    # Collinear points cannot tell a rotation about their line: translation only.
    line = np.outer(np.linspace(-0.03, 0.03, 10), [1.0, 0.0, 0.0]) + centre
    line_points = np.stack([line, line @ rotation.T + centre - rotation @ centre], axis=1)
    _, relative, rotated = follow_points(line_points, np.ones(10), centre, PlanConfig())
    assert rotated == 0 and np.allclose(relative[1], np.eye(3))


def test_retime_stops_for_the_gripper():
    joints = np.array([[0.0, 0.0], [0.1, 0.0], [0.2, 0.0]])
    tool = np.array([[0.0, 0, 0], [0.01, 0, 0], [0.02, 0, 0]])
    times, table, at = retime(joints, tool, np.array([1.0, 0.0, 0.0]), PlanConfig(speed=0.01, acceleration=1.0, joint_length=0.0))
    assert table[-1, 2] == 0.0 and table[0, 2] == 1.0
    # Rest-to-rest move to waypoint 1 (1.01 s), a 1 s dwell closing the gripper there, then on (1.01 s).
    np.testing.assert_allclose(at, [0.0, 2.01, 3.02], atol=1e-9)
    dwell = (times > 1.02) & (times < 2.0)
    assert np.allclose(table[dwell, 0], 0.1) and (np.diff(table[dwell, 2]) < 0).all()


def test_errors_name_the_fix():
    flat = synthetic_gripper_trace(READY_POSE, CAMERA, DISPLACEMENT)
    no_depth = flat.traj.copy()
    no_depth[..., 2] = np.nan
    with pytest.raises(PlanningError, match="no depth"):
        plan_trace(TraceFile(no_depth, flat.valid, flat.intrinsics, flat.image_size, ""), CAMERA, READY_POSE)
    away = CameraToBase(make_transform(np.eye(3), np.array([0.0, 0.0, 2.0])))  # looks up, away from the arm
    with pytest.raises(PlanningError, match="outside the 640x480 image"):
        plan_trace(flat, away, READY_POSE)
    with pytest.raises(PlanningError, match="mode"):
        plan_trace(flat, CAMERA, READY_POSE, PlanConfig(mode="dance"))


def test_points_on_the_arm_are_its_links_and_nothing_else():
    frames, tool = SO101.joint_frames(READY_POSE[:5])
    nodes = np.vstack([frames[:, :3, 3], tool[None, :3, 3]])
    midpoints = 0.5 * (nodes[:-1] + nodes[1:])  # on every link's centre line
    beside = tool[:3, 3] + np.array([0.0, 0.0, -0.06])  # 6 cm under the tool, e.g. an object to pick
    housing = np.array([-0.007, -0.045, 0.024])  # on the base's housing, under the first joint
    far = np.array([0.25, 0.1, 0.02])  # on the table, out of reach of every link
    start = np.vstack([midpoints, housing, beside, far, [np.nan] * 3])  # (n + 4, 3)
    points = np.repeat(start[:, None], 2, axis=1)  # (M, 2, 3)
    on_arm = arm_points(points, SO101, READY_POSE[:5], clearance=0.045)
    assert on_arm[:len(midpoints) + 1].all() and not on_arm[len(midpoints) + 1:].any()


def test_table_beside_the_gripper_in_the_image_is_not_the_gripper():
    """A still point next to the tool in the image but 6 cm behind it in depth must not outvote the gripper."""
    trace = synthetic_gripper_trace(READY_POSE, CAMERA, DISPLACEMENT)
    u0, v0, z0 = project(CAMERA.to_camera(tool_at(READY_POSE)), trace.intrinsics)
    start = trace.traj[:, 0]
    behind = np.flatnonzero((np.hypot(start[:, 0] - u0, start[:, 1] - v0) > 40) & (np.hypot(start[:, 0] - u0, start[:, 1] - v0) < 80))
    traj = trace.traj.copy()
    traj[behind, :, :2] = np.array([u0, v0]) + 0.5 * (start[behind, None, :2] - np.array([u0, v0]))  # 2D-near the tool...
    traj[behind, :, 2] = z0 + 0.06  # ... but on the table 6 cm behind it (within the old depth tolerance), and still
    table = TraceFile(traj, trace.valid, trace.intrinsics, trace.image_size, "")
    weights = select_gripper_points(table, CAMERA, tool_at(READY_POSE), PlanConfig())
    assert not (weights[behind] > 0).any()
    plan = plan_trace(table, CAMERA, READY_POSE)
    expected = tool_at(READY_POSE) + CAMERA.base_from_camera[:3, :3] @ DISPLACEMENT
    assert np.linalg.norm(tool_at(plan.joints[-1]) - expected) < 2e-3


def test_retimed_samples_always_move_forward_in_time():
    """The last regular sample of a move could fall a rounding error short of the move's end and so on the
    same clock value as the end itself, and `check_plan` refused the plan ("plan times do not increase"):
    20 of these 1197 moves did, e.g. 4.2 cm across then 6 cm up."""
    config = PlanConfig(speed=0.1)
    for millimetres in range(1, 400):
        for up in (0.04, 0.05, 0.06):
            tool = np.array([[0.0, 0.0, 0.0], [millimetres / 1000, 0.0, 0.0], [millimetres / 1000, 0.0, up]])
            times, table, _ = retime(np.zeros((3, 5)), tool, np.ones(3), config)
            assert np.all(np.diff(times) > 0), (millimetres, up)
            assert times[-1] == pytest.approx(_trapezoid_duration(millimetres / 1000 + up, config.speed, config.acceleration))

