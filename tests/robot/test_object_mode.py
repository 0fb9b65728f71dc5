"""Object mode: the one moving object found among the trace's points, grasped and carried top-down above
the surface under it, or pushed where the trace slides it."""

import math

import numpy as np
import pytest

from robot.execute import READY_POSE, synthetic_gripper_trace, synthetic_tabletop_trace
from robot.kinematics import SO101
from robot.object_mode import blocked_behind, leading_part, select_object_points
from robot.plan_config import PlanConfig
from robot.planning import approach_axis, plan_trace
from robot.trace_points import lift_trace
from store.trace import TraceFile, project
from tests.robot.test_planning import CAMERA, DISPLACEMENT, tool_at

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


def test_object_mode_pulls_an_object_that_slides_out_of_something_standing_behind_it():
    """A drawer: the trace slides the object 10 cm away from a cabinet 7.5 cm tall that stands right behind it.
    No push can start inside the cabinet, so the tool comes down onto the object's front and pulls it along
    the slide, closed, at the height it grasped it (not raised over the cabinet). Without the cabinet the
    same trace is a push."""
    s = np.linspace(0.0, 1.0, 33)[:, None]
    slide = s * np.array([0.10, 0.0, 0.0])
    centre = (-0.05, -0.22)
    cabinet = lambda x, y: np.where(x < centre[0] - 0.012, 0.075, 0.0)  # noqa: E731
    trace, block = tabletop_trace(slide, cabinet, centre=centre)
    start = lift_trace(trace, CAMERA)[block, 0]
    for depth, front in ((PlanConfig().pull_depth, start), (0.005, start[start[:, 0] > centre[0]])):
        config = PlanConfig(mode="object", pull_depth=depth)
        plan = plan_trace(trace, CAMERA, READY_POSE, config)
        w, key = plan.waypoints, plan.waypoints.key
        grasp = front.mean(0)  # the whole top within 1.5 cm of its front; with 5 mm, its front row only
        assert len(front) == (4 if depth > 0.01 else 2)
        np.testing.assert_allclose(w.position[key][2], grasp, atol=1e-6)  # came down onto it ...
        np.testing.assert_allclose(w.position[key][1], grasp + [0.0, 0.0, config.approach_height], atol=1e-6)
        np.testing.assert_allclose(w.position[key][2 + 32], grasp + [0.10, 0.0, 0.0], atol=1e-6)  # ... pulled it 10 cm
        pulling = key & (w.step >= 0)
        np.testing.assert_allclose(w.position[pulling][:-1, 2], grasp[2], atol=1e-6)  # level, not over the cabinet
        assert (w.gripper[pulling][:-2] == config.gripper_closed).all() and w.gripper[-1] == config.gripper_open
    flat, _ = tabletop_trace(slide, lambda x, y: np.zeros_like(x), centre=centre)
    pushed = plan_trace(flat, CAMERA, READY_POSE, PlanConfig(mode="object"))
    assert (pushed.waypoints.gripper[pushed.waypoints.step >= -1][1:] == PlanConfig().push_opening).all()


def _moved(start: np.ndarray, displacement: np.ndarray) -> np.ndarray:
    """(K, 2, 3) a two-step trace from start (K, 3) and displacement (K, 3)."""
    return np.stack([start, start + displacement], axis=1)


def test_object_is_the_part_that_moves_alike_and_furthest():
    """A predicted drawer: its front's five points slide 7 cm with end points scattered by up to 2.5 cm (no
    four of them fit one rigid motion within the 1 cm test), and the cabinet top behind it, five points
    linked to the front, is smeared 2 cm along rigidly. The object is the front; before, the rigid test's
    consensus stood for it: the smeared top, or any three points of the front that happened to fit."""
    config = PlanConfig(mode="object")
    front = np.array([[0.0, y, z] for y, z in ((-0.26, 0.04), (-0.23, 0.02), (-0.20, 0.05), (-0.17, 0.03), (-0.14, 0.04))])
    scatter = np.array([[0.0, 0.0, 0.0], [0.02, 0.005, -0.01], [-0.01, 0.015, 0.0], [0.015, -0.01, 0.01], [-0.02, -0.005, 0.005]])
    top = np.array([[-0.03 - 0.03 * i, -0.2 + 0.02 * (i % 2), 0.075] for i in range(5)])
    start = np.vstack([front, top])
    displacement = np.vstack([np.array([0.07, 0.0, 0.0]) + scatter, np.tile([0.02, 0.0, 0.0], (5, 1))])
    weights = select_object_points(_moved(start, displacement), np.zeros(10, dtype=bool), config)
    np.testing.assert_array_equal(weights, [1.0] * 5 + [0.0] * 5)
    alone = select_object_points(_moved(front, displacement[:5]), np.zeros(5, dtype=bool), config)
    np.testing.assert_array_equal(alone, np.ones(5))  # the whole front, not three of it


def test_object_that_turns_is_kept_whole_by_the_rigid_test():
    """A block turned a quarter turn while carried 10 cm: its corners move 4-14 cm, not alike, but rigidly."""
    config = PlanConfig(mode="object")
    corners = np.array([[0.2 + dx, dy, 0.03] for dx in (-0.02, 0.02) for dy in (-0.02, 0.02)] + [[0.2, 0.0, 0.05]])
    centre = np.array([0.2, 0.0, 0.0])
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    end = (corners - centre) @ turn.T + centre + [0.0, 0.10, 0.0]
    weights = select_object_points(np.stack([corners, end], axis=1), np.zeros(5, dtype=bool), config)
    np.testing.assert_array_equal(weights, np.ones(5))


def test_a_drawer_is_blocked_by_its_cabinet_though_the_table_beside_it_is_near():
    """Where a push would start, behind a drawer sliding out along +x, four still points of its cabinet top
    stand 7.5 cm tall and three of the table beside the cabinet lie within the support radius too: most
    of what stands there is taller than the drawer's front, so it is pulled; with the table alone, pushed."""
    config = PlanConfig(mode="object")
    path = np.array([[0.0, -0.22, 0.045], [0.07, -0.22, 0.045]])
    drawer = np.array([[0.0, -0.24, 0.045], [0.0, -0.20, 0.045]])
    spot = path[0, :2] - (config.push_offset + config.push_gap) * np.array([1.0, 0.0])
    cabinet = np.array([[spot[0] + dx, spot[1] + dy, 0.075] for dx, dy in ((0.0, 0.0), (-0.02, 0.01), (0.01, -0.02), (-0.01, -0.01))])
    table = np.array([[spot[0] + dx, spot[1] + dy, 0.0] for dx, dy in ((0.0, 0.04), (0.03, 0.03), (-0.02, -0.04))])
    assert blocked_behind(path, drawer, np.vstack([cabinet, table]), config)
    assert not blocked_behind(path, drawer, table, config)
    # The cabinet top's back smeared along with the drawer: the object reaches 12 cm behind its front, where
    # a push would start nothing stands, but the cabinet's still part stands on the way there.
    smeared = np.vstack([drawer, [[-0.12, -0.22, 0.075]]])
    far = spot - 0.12 * np.array([1.0, 0.0])
    assert np.linalg.norm(cabinet[:, :2] - far, axis=1).min() > config.support_radius
    assert blocked_behind(path, smeared, np.vstack([cabinet, table]), config)


def test_a_drawer_is_pulled_at_its_fronts_middle_though_the_slide_is_predicted_askew():
    """A drawer front 13 cm wide, centred at y = -0.22 m, slides out along +x; the trace shows two of its
    points (those nearer the gripper are the gripper's) and the cabinet top smeared along behind it, and
    slides it 10 degrees askew. Its leading points sit at one end of the front: grasped there, the handle
    in the middle would be 4.5 cm away. The grasp is midway across the whole object, within 1.5 cm."""
    config = PlanConfig(mode="object")
    face = np.array([[0.0, -0.28, 0.04], [0.0, -0.25, 0.04]])
    top = np.array([[x, y, 0.075] for x in (-0.03, -0.07) for y in (-0.28, -0.22, -0.16)])
    askew = np.radians(-10.0)
    path = np.array([[0.0, -0.22, 0.05], [0.07 * np.cos(askew), -0.22 + 0.07 * np.sin(askew), 0.05]])
    grasp = leading_part(np.vstack([face, top]), path, config)
    assert np.linalg.norm(grasp[:2] - [0.0, -0.22]) < 0.015 and grasp[2] == pytest.approx(0.04)
    assert np.linalg.norm(face[:, :2].mean(0) - [0.0, -0.22]) > 0.04  # where the leading points alone put it
