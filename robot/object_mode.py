"""Object mode: grasp the one object the trace moves and carry it along its path top-down and level, or,
when the trace slides it along its surface, push it from behind, or, when something stands behind it (a
drawer's cabinet), grasp its front and pull (`tracegen execute --mode object`)."""

from __future__ import annotations

import numpy as np

from robot.camera_to_base import CameraToBase
from robot.errors import PlanningError
from robot.kinematics import rotation_exp
from robot.plan_config import PlanConfig, gripper_joint, gripper_states, parse_gripper_schedule
from robot.trace_points import follow_points, ransac_rigid, select_gripper_points
from store.trace import TraceFile


def select_object_points(points: np.ndarray, exclude: np.ndarray, config: PlanConfig) -> np.ndarray:
    """Weights (K,) of the points on the one object that moves: of the groups of moved points that start
    together (`linked_groups`), the one whose point moves furthest; then, of its largest rigid subgroup and
    its subgroup that moves alike (`moving_alike`), the one whose points travel further in all. Predicted
    end points scatter by more than the rigid test's tolerance, so its consensus can be three points that
    happen to fit (a drawer's cabinet corner) or many that barely move (the cabinet top smeared along
    with the drawer), where the drawer's front moves alike and further. A group of one or two points is
    kept whole (a small object may cover a single grid point; it is followed by translation alone)."""
    start, end = points[:, 0], points[:, -1]
    travel = np.linalg.norm(end - start, axis=1)
    moved = (travel > config.moving_threshold) & ~exclude  # NaN -> False
    if not moved.any():
        raise PlanningError(
            f"no trace point off the arm, above the table and within reach moves more than {config.moving_threshold} m; "
            "object mode needs a moving object (use --mode gripper)"
        )
    candidates = np.flatnonzero(moved)
    groups = linked_groups(start[candidates], config.object_link)
    furthest = groups[np.argmax(travel[candidates])]
    members = candidates[groups == furthest]
    keep = np.ones(len(members), dtype=bool)
    if len(members) >= 3:
        loose = PlanConfig(min_rotation_points=3, min_rotation_spread=0.0, ransac_threshold=2 * config.ransac_threshold,
                           ransac_iterations=config.ransac_iterations)
        rigid = ransac_rigid(start[members], end[members], np.ones(len(members)), loose, np.random.default_rng(config.seed))
        keep = moving_alike(end[members] - start[members], config.object_agreement)
        if rigid is not None and travel[members][rigid[2]].sum() >= travel[members][keep].sum():
            keep = rigid[2]
    weights = np.zeros(len(points))
    weights[members[keep]] = 1.0
    return weights


def moving_alike(displacements: np.ndarray, tolerance: float) -> np.ndarray:
    """(M,) bool: of the sets of `displacements` (M, 3) within `tolerance` (metres) of one of them, the one
    whose displacements are longest in sum: the points of an object that slides without turning."""
    near = np.linalg.norm(displacements[:, None] - displacements[None], axis=2) <= tolerance  # (M, M)
    return near[np.argmax(near @ np.linalg.norm(displacements, axis=1))]


def linked_groups(positions: np.ndarray, link: float) -> np.ndarray:
    """(M,) group label of each of `positions` (M, 3): points are in one group when a chain of steps no
    longer than `link` joins them (single linkage)."""
    near = np.linalg.norm(positions[:, None] - positions[None], axis=2) <= link  # (M, M)
    labels = np.arange(len(positions))
    while True:  # each point takes the smallest label among its neighbours until nothing changes
        merged = np.where(near, labels[None], len(positions)).min(1)
        if np.array_equal(merged, labels):
            return labels
        labels = merged


def support_height(xy: np.ndarray, surface: np.ndarray, config: PlanConfig, quantile: float | None = None) -> np.ndarray:
    """(M,) height of the surface under the base-plane points `xy` (M, 2), from `surface` (L, 3): the
    still points' start positions in the base frame, metres: the `quantile` (default `support_quantile`)
    of the heights of those within `support_radius`. 0 (the base plane) where none is near."""
    near = np.linalg.norm(surface[None, :, :2] - xy[:, None], axis=2) <= config.support_radius  # (M, L)
    heights = np.where(near, surface[None, :, 2], np.nan)
    found = near.any(1)
    out = np.zeros(len(xy))
    if found.any():
        out[found] = np.nanquantile(heights[found], config.support_quantile if quantile is None else quantile, axis=1)
    return out


def keep_above_support(path: np.ndarray, surface: np.ndarray, config: PlanConfig) -> np.ndarray:
    """The grasp point's path (S, 3) raised where it would carry the object lower above the surface
    under it than it was held at the start (a predicted path's height errs; the table stops the object
    anyway, and a tool pressed into it is refused by the floor check). A shelf-to-table move still goes down:
    the clearance is measured from the surface under each step."""
    support = support_height(path[:, :2], surface, config)  # (S,)
    clearance = max(path[0, 2] - support[0], 0.0)
    out = path.copy()
    out[:, 2] = np.maximum(path[:, 2], support + clearance)
    return out


def panned(positions: np.ndarray, tool: np.ndarray) -> np.ndarray:
    """(N, 3, 3) turns about the base's vertical axis from the tool's azimuth to each position's.

    A 5-DoF arm cannot hold one fixed tool orientation across the table: asked to, IK settles on a
    compromise that tilts the jaws, and a held object tilts with them (a block carried from one side of the
    arm to the other came down tilted by tens of degrees, and tipped over when let go). The start
    orientation turned with the arm's pan is one it can hold everywhere, keeping the object level.
    """
    turn = np.arctan2(positions[:, 1], positions[:, 0]) - np.arctan2(tool[1, 3], tool[0, 3])  # (N,)
    cos, sin = np.cos(turn), np.sin(turn)
    out = np.zeros((len(positions), 3, 3))
    out[:, 0, 0], out[:, 0, 1], out[:, 1, 0], out[:, 1, 1], out[:, 2, 2] = cos, -sin, sin, cos, 1.0
    return out


def pointing_down(tool: np.ndarray, approach: np.ndarray) -> np.ndarray:
    """(3, 3) the tool rotation `tool[:3, :3]` turned the least so that its `approach` axis points straight down."""
    now, down = tool[:3, :3] @ approach, np.array([0.0, 0.0, -1.0])
    axis = np.cross(now, down)
    angle = float(np.arctan2(np.linalg.norm(axis), now @ down))
    turn = rotation_exp(axis / np.linalg.norm(axis) * angle) if np.linalg.norm(axis) > 1e-9 else np.eye(3)
    return turn @ tool[:3, :3]


def _slide_direction(path: np.ndarray) -> np.ndarray:
    """(2,) unit direction in the base plane from the path's start to its end."""
    travel = path[-1, :2] - path[0, :2]
    return travel / max(float(np.linalg.norm(travel)), 1e-9)


def _depth_behind(path: np.ndarray, object_start: np.ndarray, direction: np.ndarray) -> float:
    """How far the object's back-most moving point lies behind its followed point along `direction`, metres (>= 0)."""
    return float(np.max(np.nan_to_num((path[0, :2] - object_start[:, :2]) @ direction, nan=0.0), initial=0.0))


def push_goals(path: np.ndarray, object_start: np.ndarray, surface: np.ndarray, tool: np.ndarray, approach: np.ndarray,
               config: PlanConfig):
    """Object mode's waypoints for a trace that slides the object: the tool comes down behind it and pushes it
    along the straight line from its start to its end, pointing straight down and turned so the jaws spread
    across the push, open `push_opening` under `gripper="auto"` (else as set): two upright fingertips
    square to the object's face. The tool point stays `push_offset` behind the object's back-most seen point
    and `push_height` above the surface, then goes back up.

    Args:
        path: (S, 3) the object's followed point (centroid of its moving points), base frame, metres.
        object_start: (M, 3) the object's moving points at the start. surface: (L, 3) still points (start).
        tool: (4, 4) the tool's start pose. approach: (3,) the way the tool points, tool frame.
    Returns:
        (positions (N, 3), rotations (N, 3, 3), gripper joint (N,) radians, trace step (N,), -1 on the approach).
    """
    steps = len(path)
    direction = _slide_direction(path)  # (2,) the push's direction in the base plane
    offset = _depth_behind(path, object_start, direction) + config.push_offset  # tool point to the followed point
    along = path[0, :2] + np.clip((path[:, :2] - path[0, :2]) @ direction, 0.0, None)[:, None] * direction  # (S, 2)
    contact = along - offset * direction  # (S, 2): straight on, never back
    ground = np.vstack([contact[:1] - config.push_gap * direction, contact])  # (S + 1, 2): come down clear of it first
    line = np.column_stack([ground, support_height(ground, surface, config) + config.push_height])  # (S + 1, 3)
    up = np.array([0.0, 0.0, config.approach_height])
    positions = np.vstack([tool[None, :3, 3], line[:1] + up, line, line[-1:] + up])
    down = pointing_down(tool, approach)
    jaws = down @ np.asarray(config.jaw_axis, dtype=np.float64)  # (3,) horizontal once pointing down
    across = np.arctan2(direction[1], direction[0]) + np.pi / 2 - np.arctan2(jaws[1], jaws[0])
    across = (across + np.pi / 2) % np.pi - np.pi / 2  # the jaws are symmetric: the smaller of the two turns
    square = np.array([[np.cos(across), -np.sin(across), 0.0], [np.sin(across), np.cos(across), 0.0], [0.0, 0.0, 1.0]])
    rotations = np.concatenate([tool[None, :3, :3], np.repeat((square @ down)[None], len(positions) - 1, 0)])
    if config.gripper == "auto":
        gripper = np.full(len(positions), config.push_opening)
    else:
        pushing = gripper_joint(gripper_states(steps, config, None), config)
        gripper = np.concatenate([pushing[:1].repeat(3), pushing, pushing[-1:]])
    step_index = np.concatenate([[-1, -1, -1], np.arange(steps), [steps - 1]])
    return positions, rotations, gripper, step_index


def blocked_behind(path: np.ndarray, object_start: np.ndarray, surface: np.ndarray, config: PlanConfig) -> bool:
    """Whether a sliding object cannot be pushed: somewhere on the way back from its followed point to where
    `push_goals` would bring the tool down behind it, the still points stand higher than that point (a drawer
    in its cabinet, a block against a wall). Their median height counts, not the support's low quantile: at a
    cabinet's edge the table beside it is near too. The whole way counts, not only the spot where the push
    would start: a cabinet top smeared along with a predicted drawer makes the object reach far back, to
    where nothing stands.

    Args:
        path: (S, 3) the object's followed point. object_start: (M, 3) its moving points at the start.
        surface: (L, 3) still points at the start.
    """
    direction = _slide_direction(path)
    back = _depth_behind(path, object_start, direction) + config.push_offset + config.push_gap
    way = path[0, :2] - np.linspace(0.0, back, max(2, int(np.ceil(back / 0.01)) + 1))[:, None] * direction  # 1 cm apart
    return bool((support_height(way, surface, config, quantile=0.5) > path[0, 2]).any())


def leading_part(object_start: np.ndarray, path: np.ndarray, config: PlanConfig) -> np.ndarray:
    """(3,) where to grasp a sliding object to pull it: its front's middle. Along the slide and in height, the
    mean start of its moving points within `pull_depth` of the front-most one (a drawer's front and its
    handle); across the slide, midway between its outermost moving points, so the pull does not twist it
    (a drawer's handle is central). The front points alone put the grasp to one side: a predicted slide
    a few degrees off the true one makes one end of a 13 cm front lead, and the grid points near the
    gripper are never the object's."""
    direction = _slide_direction(path)
    across = np.array([-direction[1], direction[0]])
    ahead, side = object_start[:, :2] @ direction, object_start[:, :2] @ across  # (M,)
    front = object_start[ahead >= np.nanmax(ahead) - config.pull_depth]
    middle = 0.5 * (np.nanmin(side) + np.nanmax(side))
    return np.r_[(front[:, :2] @ direction).mean() * direction + middle * across, front[:, 2].mean()]


def object_goals(points: np.ndarray, trace: TraceFile, camera: CameraToBase, tool: np.ndarray, config: PlanConfig,
                 on_arm: np.ndarray, approach: np.ndarray):
    """Object mode's waypoints before IK (as `robot.planning.tool_goals` returns them): the tool origin comes
    down onto the object's grasp point and carries it along its path, or, when the trace slides the object
    along its support, comes down behind it and pushes it (`push_goals`), or, when something stands behind
    it (`blocked_behind`), comes down onto its front (`leading_part`) and pulls it along its path.

    Args:
        points: (K, S, 3) base-frame trace, metres. tool: (4, 4) the tool's start pose.
        on_arm: (K,) points on the arm's own links (`arm_points`): never the object.
        approach: (3,) the way the tool points, in the tool frame (`approach_axis`).
    """
    steps = points.shape[1]
    try:  # object mode: never mistake the gripper for the object
        exclude = select_gripper_points(trace, camera, tool[:3, 3], config) > 0
    except PlanningError:
        exclude = np.zeros(points.shape[0], dtype=bool)
    beyond_reach = ~(np.linalg.norm(points[:, 0], axis=1) <= config.object_reach)  # NaN -> beyond
    on_table = ~(points[:, 0, 2] >= config.object_min_height)  # NaN -> not graspable
    weights = select_object_points(points, exclude | on_arm | beyond_reach | on_table, config)
    grasp = (weights @ np.nan_to_num(points[:, 0])) / weights.sum()  # (3,) object centroid at the start
    path, relative, rotated = follow_points(points, weights, grasp, config)
    still = (np.linalg.norm(points[:, -1] - points[:, 0], axis=1) <= config.moving_threshold) & ~exclude & ~on_arm
    surface = points[still & (weights == 0), 0]  # NaN -> not still
    if np.abs(path[:, 2] - path[0, 2]).max() < config.slide_tolerance:  # the trace slides the object
        if not blocked_behind(path, points[weights > 0, 0], surface, config):  # push it
            return push_goals(path, points[weights > 0, 0], surface, tool, approach, config) + (weights > 0, 0, np.zeros(3))
        grasp = leading_part(points[weights > 0, 0], path, config)  # pull it by its front, along its slide
        path, relative, rotated = follow_points(points, weights, grasp, config)
    else:
        path = keep_above_support(path, surface, config)
    held = pointing_down(tool, approach) if config.carry_orientation == "down" else tool[:3, :3]
    rotations = panned(path, tool) @ relative @ held  # (S, 3, 3): level, however far the arm pans
    closed = gripper_states(steps, config, np.ones(steps, dtype=bool))  # auto: hold the object throughout
    before = False if config.gripper == "auto" else bool(closed[0]) if config.gripper in ("open", "closed") else \
        not parse_gripper_schedule(config.gripper)[0][1]
    up = np.array([0.0, 0.0, config.approach_height])
    above = path[0] + up  # come down onto the object, not through it
    positions = np.vstack([tool[None, :3, 3], above[None], path])
    rotations = np.concatenate([tool[None, :3, :3], rotations[:1], rotations])
    closed, step_index = np.concatenate([[before, before], closed]), np.concatenate([[-1, -1], np.arange(steps)])
    if config.gripper == "auto":  # release at the end, then back up
        positions = np.vstack([positions, path[-1:], path[-1:] + up])
        rotations = np.concatenate([rotations, rotations[-1:], rotations[-1:]])
        closed, step_index = np.append(closed, [False, False]), np.append(step_index, [steps - 1, steps - 1])
    return positions, rotations, gripper_joint(closed, config), step_index, weights > 0, rotated, np.zeros(3)
