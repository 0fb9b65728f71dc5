"""Planning: a synthetic trace with a known 3D displacement becomes a plan that ends there."""

import math

import numpy as np
import pytest

from robot.camera_to_base import CameraToBase
from robot.errors import PlanningError
from robot.execute import READY_POSE, synthetic_gripper_trace, synthetic_tabletop_trace
from robot.kinematics import SO101, make_transform, rotation_exp, rotation_log
from robot.plan_config import PlanConfig, parse_gripper_schedule
from robot.planning import _trapezoid_arc, _trapezoid_duration, approach_axis, plan_trace, retime
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


LIFTED = DISPLACEMENT + CAMERA.base_from_camera[:3, :3].T @ np.array([0.0, 0.0, 0.03])  # 3.5 cm up in the base frame


def object_only_traj(displacement: np.ndarray = LIFTED) -> tuple[TraceFile, np.ndarray]:
    """A trace where only an object beside the gripper moves (e.g. a human demo): the synthetic
    gripper trace with the gripper's points held still, the object picked up (a trace that keeps it level
    is a push). Returns (the synthetic trace, the edited traj)."""
    moving = synthetic_gripper_trace(READY_POSE, CAMERA, displacement, object_offset_px=(0, 70), grasp_step=0)
    u0, v0, _ = project(CAMERA.to_camera(tool_at(READY_POSE)), moving.intrinsics)
    start = moving.traj[:, 0]
    near_tool = np.hypot(start[:, 0] - u0, start[:, 1] - v0) <= 40
    traj = moving.traj.copy()
    traj[near_tool, :33] = start[near_tool, None]
    return moving, traj


def test_object_mode_reaches_then_follows_the_object():
    moving, traj = object_only_traj()
    trace = TraceFile(traj, moving.valid, moving.intrinsics, moving.image_size, "")
    plan = plan_trace(trace, CAMERA, READY_POSE, PlanConfig(mode="object"))
    points = lift_trace(trace, CAMERA)
    on_object = np.linalg.norm(points[:, 32] - points[:, 0], axis=1) > 0.01
    assert on_object.sum() >= 3 and (plan.followed == on_object).all()
    grasp = points[on_object, 0].mean(0)
    key = plan.waypoints.key
    config = PlanConfig()
    up = np.array([0.0, 0.0, config.approach_height])
    assert (plan.waypoints.step[key][:2] == -1).all()  # the approach from the present pose, via a point above the object
    np.testing.assert_allclose(plan.waypoints.position[key][1], grasp + up, atol=1e-9)
    np.testing.assert_allclose(plan.waypoints.position[key][2], grasp, atol=1e-9)
    placed = grasp + CAMERA.base_from_camera[:3, :3] @ LIFTED
    np.testing.assert_allclose(plan.waypoints.position[key][-2], placed, atol=1e-6)  # released where the trace ends
    np.testing.assert_allclose(plan.waypoints.position[key][-1], placed + up, atol=1e-6)  # then back up
    assert np.linalg.norm(tool_at(plan.joints[-1]) - plan.waypoints.position[-1]) < 1e-4
    states = plan.waypoints.gripper[key]
    assert (states[:2] == config.gripper_open).all() and (states[2:-2] == config.gripper_closed).all()
    assert (states[-2:] == config.gripper_open).all()


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


def test_object_mode_never_takes_the_far_background_for_the_object():
    """A predicted wobble of a point 2 m away moves it by centimetres in 3D: it is out of reach, not an object."""
    moving, traj = object_only_traj()
    start = moving.traj[:, 0]
    wall = np.arange(20)  # the top row: pushed 2.5 m away and made to drift together by 2 px per step
    traj[wall, :33, 2] = 2.5
    traj[wall, :33, 0] = start[wall, None, 0] + 2.0 * np.arange(33)
    trace = TraceFile(traj, moving.valid, moving.intrinsics, moving.image_size, "")
    points = lift_trace(trace, CAMERA)
    assert (np.linalg.norm(points[wall, 32] - points[wall, 0], axis=1) > 0.05).all()  # more than the object moves
    plan = plan_trace(trace, CAMERA, READY_POSE, PlanConfig(mode="object"))
    on_object = np.linalg.norm(points[:, 32] - points[:, 0], axis=1) > 0.01
    on_object[wall] = False
    assert on_object.sum() < len(wall)  # the wall is the larger rigid group of moving points
    assert not plan.followed[wall].any() and (plan.followed == on_object).all()


def test_object_mode_never_takes_the_table_top_for_the_object():
    """Table points the prediction smears along (more of them than the object's) cannot be picked up."""
    moving, traj = object_only_traj()
    table = np.arange(380, 400)  # the bottom row, put on the table top within reach and made to slide 3 cm together
    on_table = np.stack([np.linspace(0.12, 0.3, len(table)), np.full(len(table), 0.12), np.zeros(len(table))], axis=1)
    slide = np.linspace(0.0, 0.03, 33)[:, None] * np.array([1.0, 0.0, 0.0])  # (33, 3)
    base_path = on_table[:, None] + slide[None]  # (20, 33, 3) base frame
    camera_path = np.stack([CAMERA.to_camera(step) for step in base_path.transpose(1, 0, 2)], axis=1)  # (20, 33, 3)
    traj[table, :33] = project(camera_path, moving.intrinsics)
    trace = TraceFile(traj, moving.valid, moving.intrinsics, moving.image_size, "")
    points = lift_trace(trace, CAMERA)
    np.testing.assert_allclose(points[table, :33], base_path, atol=1e-5)
    plan = plan_trace(trace, CAMERA, READY_POSE, PlanConfig(mode="object"))
    on_object = np.linalg.norm(points[:, 32] - points[:, 0], axis=1) > 0.01
    on_object[table] = False
    assert on_object.sum() < len(table)  # the table points are the larger rigid group of moving points
    assert not plan.followed[table].any() and (plan.followed == on_object).all()


def tabletop_trace(block_path: np.ndarray, surface_height, centre=(0.2, 0.0)) -> tuple[TraceFile, np.ndarray]:
    """A block's top moving by `block_path` (S, 3) among still points on a surface, seen by CAMERA
    (`robot.execute.synthetic_tabletop_trace`). Returns the trace and the block's point indices."""
    return synthetic_tabletop_trace(block_path, CAMERA, centre, surface_height)


def with_wobbling_neighbour(trace: TraceFile, neighbour: np.ndarray, wobble: np.ndarray) -> tuple[TraceFile, np.ndarray]:
    """`trace` with the points `neighbour` raised 3.5 cm (a container's rim) and all moved by `wobble` (3,),
    base frame, metres, at the end: the prediction's nudge of a still thing. Returns the trace and its points."""
    points = lift_trace(trace, CAMERA)
    points[neighbour, :, 2] += 0.035
    points[neighbour] += np.linspace(0.0, 1.0, points.shape[1])[None, :, None] * wobble
    traj = trace.traj.copy()
    camera_path = np.stack([CAMERA.to_camera(step) for step in points[neighbour].transpose(1, 0, 2)], axis=1)
    traj[neighbour, : points.shape[1]] = project(camera_path, trace.intrinsics)
    nudged = TraceFile(traj, trace.valid, trace.intrinsics, trace.image_size, "")
    return nudged, lift_trace(nudged, CAMERA)


@pytest.mark.parametrize("object_points", [4, 1])
def test_object_mode_takes_the_object_that_moves_furthest_not_a_nudged_neighbour(object_points):
    """A small object (a ball covers one or two grid points) carried 12 cm beside a container whose rim the
    prediction nudges by 1.5 cm: the rim points are more (the largest rigid group) and, taken with the object,
    pulled the grasp 4-10 cm off a simulated ball in 11 of 48 trials. Points that start apart are other things."""
    s = np.linspace(0.0, 1.0, 33)[:, None]
    trace, block = tabletop_trace(s * np.array([0.0, 0.12, 0.03]), None)
    if object_points == 1:  # the other three stay on the table: a one-point object
        trace.traj[block[1:], :33] = trace.traj[block[1:], :1]
        block = block[:1]
    start = lift_trace(trace, CAMERA)[:, 0]
    gap = np.linalg.norm(start[:, :2] - start[block].mean(0)[:2], axis=1)
    neighbour = np.flatnonzero((gap > 0.10) & (gap < 0.12) & (start[:, 1] < start[block, 1].min()))[:6]
    assert len(neighbour) == 6
    trace, points = with_wobbling_neighbour(trace, neighbour, np.array([0.012, 0.009, 0.0]))
    plan = plan_trace(trace, CAMERA, READY_POSE, PlanConfig(mode="object"))
    assert plan.followed[block].all() and plan.followed.sum() == len(block)
    key = plan.waypoints.key
    np.testing.assert_allclose(plan.waypoints.position[key][2], points[block, 0].mean(0), atol=1e-9)  # grasped there


def test_object_mode_keeps_a_carried_object_above_the_table():
    """A predicted carry whose height sinks into the table keeps the block as high above the table as it was grasped."""
    s = np.linspace(0.0, 1.0, 33)[:, None]
    sinking = s * np.array([0.0, 0.10, -0.04])  # 10 cm across, ending 1 cm under the table
    trace, block = tabletop_trace(sinking, lambda x, y: np.zeros_like(x))
    plan = plan_trace(trace, CAMERA, READY_POSE, PlanConfig(mode="object"))
    assert plan.followed[block].all() and plan.followed.sum() == len(block)
    grasp = lift_trace(trace, CAMERA)[block, 0].mean(0)
    carried = plan.waypoints.position[plan.waypoints.key & (plan.waypoints.step >= 0)][:-1]  # the carry, then the lift
    assert carried[:, 2].min() == pytest.approx(grasp[2], abs=1e-6)  # never lower than it was held above the table
    np.testing.assert_allclose(carried[-1], grasp + [0.0, 0.10, 0.0], atol=1e-6)  # released on the table at the trace's x, y


def test_object_mode_lets_an_object_come_down_from_a_shelf():
    """The clearance counts from the surface under each step: a block taken off a 10 cm shelf may go down to the table."""
    shelf = lambda x, y: np.where(y < 0.05, 0.10, 0.0)  # noqa: E731
    s = np.linspace(0.0, 1.0, 33)[:, None]
    down = s * np.array([0.0, 0.12, -0.10])  # off the shelf onto the table in front of it
    trace, block = tabletop_trace(down, shelf)
    plan = plan_trace(trace, CAMERA, READY_POSE, PlanConfig(mode="object"))
    grasp = lift_trace(trace, CAMERA)[block, 0].mean(0)
    carried = plan.waypoints.position[plan.waypoints.key & (plan.waypoints.step >= 0)][:-1]
    np.testing.assert_allclose(carried[-1], grasp + [0.0, 0.12, -0.10], atol=1e-6)  # released on the table, not held at shelf height


def test_object_mode_carries_the_object_level_across_the_arms_front():
    """A 5-DoF arm cannot hold one tool orientation across the table; asked to, IK tilted the jaws (and the
    block in them) by tens of degrees. Top-down, turned with the pan, keeps the jaw axis, and so the held
    object, as level as it was grasped. Asked to keep the ready pose's slant instead, IK folded the arm
    into its elbow and wrist limits on the way up and missed this lifted carry by centimetres."""
    s = np.linspace(0.0, 1.0, 33)[:, None]
    across = s * np.array([-0.22, 0.0, 0.0]) + np.sin(np.pi * s) * [0.0, 0.0, 0.05]  # 30 degrees right to 30 left, lifted
    trace, block = tabletop_trace(across, lambda x, y: np.zeros_like(x), centre=(0.11, -0.19))
    plan = plan_trace(trace, CAMERA, READY_POSE, PlanConfig(mode="object"))
    carrying = plan.waypoints.key & (plan.waypoints.step >= 0)
    assert plan.waypoints.position_error.max() < 1e-3  # within reach all the way
    carried = plan.waypoints.joints[carrying][:-1]
    tools = [SO101.forward(joints[:5]) for joints in carried]
    pointing = approach_axis(SO101, READY_POSE[:5])
    assert all((tool[:3, :3] @ pointing)[2] < -math.cos(math.radians(5)) for tool in tools)  # top-down
    jaw_tilt = np.degrees([math.asin(tool[2, 0]) for tool in tools])  # the jaw axis against the horizontal
    assert np.abs(jaw_tilt - jaw_tilt[0]).max() < 4.0
    yaw = [math.atan2(tool[1, 0], tool[0, 0]) for tool in tools]
    pan = math.atan2(tools[-1][1, 3], tools[-1][0, 3]) - math.atan2(tools[0][1, 3], tools[0][0, 3])
    assert math.degrees(abs(yaw[-1] - yaw[0] - pan)) < 6.0  # the jaws turn with the arm


def test_object_mode_pushes_an_object_the_trace_slides_along_the_table():
    """A trace that slides the object over the table (a sweep) is pushed, not carried: the tool comes down
    behind the object, clear of it, then moves along the object's line at push height, pointing straight
    down with the part-open jaws spread across the push, and goes back up where the trace ends."""
    s = np.linspace(0.0, 1.0, 33)[:, None]
    slide = s * np.array([0.10, 0.0, 0.0]) + np.sin(np.pi * s) * [0.0, 0.0, 0.004]  # 10 cm across the arm's front
    trace, block = tabletop_trace(slide, lambda x, y: np.zeros_like(x), centre=(-0.05, -0.22))
    config = PlanConfig(mode="object")
    plan = plan_trace(trace, CAMERA, READY_POSE, config)
    assert plan.followed[block].all() and plan.followed.sum() == len(block)
    start = lift_trace(trace, CAMERA)[block, 0]  # (4, 3) the block's top at the start
    centre, direction = start.mean(0), np.array([1.0, 0.0])
    offset = (centre[:2] - start[:, :2]).dot(direction).max() + config.push_offset  # behind its back-most point
    key, w = plan.waypoints.key, plan.waypoints
    pushing = key & (w.step >= 0)
    pushed = w.position[pushing][:-1]  # the push, then the lift
    np.testing.assert_allclose(pushed[:, 2], config.push_height, atol=1e-6)  # above the table, not at the block's top
    np.testing.assert_allclose(pushed[:, 1], centre[1], atol=1e-6)  # on the object's line
    assert pushed[0, 0] == pytest.approx(centre[0] - offset, abs=1e-6)
    assert pushed[-1, 0] == pytest.approx(centre[0] + 0.10 - offset, abs=1e-6)  # the object ends where the trace ends
    assert np.all(np.diff(pushed[:, 0]) >= -1e-12)  # straight on, never back
    approach = w.position[key & (w.step < 0)]  # present pose, above the start, the start: behind the block, clear of it
    np.testing.assert_allclose(approach[2], [centre[0] - offset - config.push_gap, centre[1], config.push_height], atol=1e-6)
    np.testing.assert_allclose(approach[1], approach[2] + [0.0, 0.0, config.approach_height], atol=1e-6)
    np.testing.assert_allclose(w.position[key][-1], pushed[-1] + [0.0, 0.0, config.approach_height], atol=1e-6)
    assert w.position_error[key].max() < 1e-3
    pointing = approach_axis(SO101, READY_POSE[:5])
    for joints in w.joints[pushing]:
        tool = SO101.forward(joints[:5])
        assert (tool[:3, :3] @ pointing)[2] < -math.cos(math.radians(3))  # straight down, within 3 degrees
        jaws = tool[:3, :3] @ np.asarray(config.jaw_axis)
        assert abs(jaws[:2] @ direction) < math.sin(math.radians(3)) * np.linalg.norm(jaws[:2])  # across the push
    assert (w.gripper[w.step >= -1][1:] == config.push_opening).all()  # part-open: two fingertips, no grasp
    closed = plan_trace(trace, CAMERA, READY_POSE, PlanConfig(mode="object", gripper="closed"))
    assert (closed.waypoints.gripper == config.gripper_closed).all()
    carried = plan_trace(trace, CAMERA, READY_POSE, PlanConfig(mode="object", slide_tolerance=0.003))
    assert carried.waypoints.position[carried.waypoints.key][2, 2] == pytest.approx(centre[2], abs=1e-6)  # 4 mm up: a carry


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

