"""From a predicted 3D trace to a timed joint plan.

trace (u, v, z) in the reference camera -> camera-frame 3D (intrinsics) -> base frame (camera-to-base)
-> the points to follow (on the gripper, or on the moving object: grasped and carried top-down, or
pushed where the trace slides it) -> tool waypoints (their weighted mean displacement, plus a rotation
only when enough well-spread points agree: RANSAC-Kabsch) -> joint waypoints (warm-started IK) -> a table sampled at a fixed rate, re-timed by arc length with
speed and acceleration limits, with the gripper opened/closed by co-motion or a schedule.

Nothing here touches hardware; `robot.safety.check_plan` then vets the whole plan before motion.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import numpy as np

from robot.camera_to_base import CameraToBase, kabsch
from robot.errors import PlanningError
from robot.kinematics import SO101, IKConfig, KinematicChain, rotation_exp, rotation_log
from store.trace import TraceFile, project, unproject

log = logging.getLogger(__name__)

MODES = ("gripper", "object")


@dataclass(frozen=True)
class PlanConfig:
    """How a trace becomes motion.

    Attributes:
        mode: "gripper" follows the trace points on the gripper; "object" grasps the moving object
            and carries it along its path, level (see `carry_orientation`), or pushes it from behind
            when the trace slides it along its surface (see `slide_tolerance`).
        gripper: "auto" (co-motion), "open", "closed", or a schedule "close@12,open@30" (trace steps).
        speed: cruise speed of the tool along the path, m/s.
        acceleration: tool acceleration limit, m/s^2.
        joint_length: metres of path one radian of the fastest joint counts as (bounds joint speed
            at speed / joint_length rad/s where the tool barely moves).
        sample_rate_hz: rate of the planned joint table.
        max_segment: longest tool move between two IK waypoints, metres.
        gripper_radius_px: grid points this close to the projected tool are gripper points...
        gripper_depth_tolerance: ... this close in depth, metres...
        gripper_radius_m: ... and this close to the tool in 3D, metres (a grid point beside the gripper
            in the image but on the table behind it is not on the gripper).
        gripper_mask: (K,) bool, the gripper points given explicitly (overrides the three above).
        min_rotation_points: rotation is followed only when at least this many points agree...
        min_rotation_spread: ... spread at least this much (RMS off their main axis, metres).
        ransac_threshold: inlier distance of RANSAC-Kabsch, metres.
        ransac_iterations: RANSAC hypotheses per step.
        moving_threshold: a point moved when it left its start by this much, metres.
        comotion_min_step: a point moves over a step when it moves more than this, metres...
        comotion_ratio: ... and it moves with the gripper when its offset to the tool changes by less
            than this fraction of its motion.
        min_comoving: co-moving points needed to say the gripper holds something.
        hold_reach: a co-moving point farther than this from the controlled gripper point is not held
            by it (a predicted smear of the arm's surroundings moves with the gripper too), metres.
        arm_clearance: trace points starting this close to the arm's links (the polyline through its
            joints and tool at the start pose) are the arm itself: never an object, never "held", metres.
        object_reach: object mode only takes points that start this close to the base origin for the
            object (a predicted wobble of the far background is no object to grasp), metres...
        object_min_height: ... and at least this high above the base's plane (the table the arm stands
            on: a predicted smear of the table top is no object to pick up), metres.
        object_link: object mode's moving points are one object when their start positions chain together
            in steps no longer than this (a 4.2 cm block's predicted points lie up to 5.3 cm apart); the object
            is the group whose point moves furthest (a predicted nudge of a container 10 cm away is another,
            nearly still group), metres.
        support_radius: object mode keeps a carried object above the surface under it: the surface's
            height under a point is a low quantile (`support_quantile`) of the start heights of the
            still trace points within this distance in the base plane (the table, not what stands on
            it; the base plane where there are none), metres.
        support_quantile: see `support_radius`.
        approach_height: object mode comes down onto the grasp point from this far above it and goes
            back up as far after the release, metres.
        carry_orientation: object mode's tool orientation while it holds the object, turned with the arm's
            pan so a 5-DoF arm can keep it anywhere: "down" (top-down) or "start" (the start pose's, slant
            and all; from a slanted start IK folds the arm into its limits on lifted carries:
            `benchmarks/plan_reach.py`).
        slide_tolerance: object mode pushes the object instead of grasping it when its path stays within
            this height of its start (the trace slides it along its surface: a sweep; a pick-and-place lifts
            it, a move off a shelf takes it down), metres...
        push_offset: ... holding the tool point this far behind the object's back-most moving point seen
            in the push direction (the jaws' half thickness plus what the grid leaves unseen of the
            object), metres...
        push_height: ... this high above the surface under it, metres...
        push_gap: ... starting this much further back, so it comes down clear of the object, metres;
            the tool points straight down, turned so the jaws spread across the push...
        push_opening: ... open this far under `gripper="auto"` (two fingertips a few centimetres apart
            hold the object's face square; one point lets it turn and slide off), radians.
        jaw_axis: the axis the moving jaw opens along, in the tool frame (the SO-101's).
        gripper_open: gripper joint when open, radians.
        gripper_closed: gripper joint when closed, radians.
        gripper_dwell: pause while the gripper opens or closes, seconds.
        ik: inverse-kinematics settings.
        seed: RANSAC seed.
    """

    mode: str = "gripper"
    gripper: str = "auto"
    speed: float = 0.03
    acceleration: float = 0.1
    joint_length: float = 0.1
    sample_rate_hz: float = 100.0
    max_segment: float = 0.005
    gripper_radius_px: float = 40.0
    gripper_depth_tolerance: float = 0.08
    gripper_radius_m: float = 0.05
    gripper_mask: np.ndarray | None = None
    min_rotation_points: int = 6
    min_rotation_spread: float = 0.01
    ransac_threshold: float = 0.005
    ransac_iterations: int = 64
    moving_threshold: float = 0.01
    comotion_min_step: float = 0.001
    comotion_ratio: float = 0.3
    min_comoving: int = 1
    hold_reach: float = 0.08
    arm_clearance: float = 0.045
    object_reach: float = 0.5
    object_min_height: float = 0.01
    object_link: float = 0.07
    support_radius: float = 0.05
    support_quantile: float = 0.25
    approach_height: float = 0.06
    carry_orientation: str = "down"
    slide_tolerance: float = 0.01
    push_offset: float = 0.025
    push_height: float = 0.01
    push_gap: float = 0.03
    push_opening: float = 0.4
    jaw_axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
    gripper_open: float = 1.0
    gripper_closed: float = 0.0
    gripper_dwell: float = 1.0
    ik: IKConfig = field(default_factory=lambda: IKConfig(limit_margin=0.02))
    seed: int = 0


@dataclass(frozen=True)
class Waypoints:
    """Tool waypoints and their IK solutions (N rows), as shown by `--dry-run`.

    Attributes:
        step: (N,) int trace step each waypoint leads to (-1 on the approach in object mode).
        key: (N,) bool, the waypoint is a trace step (the others were inserted to keep moves short).
        position: (N, 3) goal of the controlled point (`Plan.control_offset`) in the base frame, metres.
        joints: (N, n) IK solution, radians.
        gripper: (N,) gripper joint, radians.
        position_error: (N,) IK residual, metres.
        orientation_error: (N,) angle between the tool and its soft orientation goal, radians.
        time: (N,) when the plan passes the waypoint, seconds.
    """

    step: np.ndarray
    key: np.ndarray
    position: np.ndarray
    joints: np.ndarray
    gripper: np.ndarray
    position_error: np.ndarray
    orientation_error: np.ndarray
    time: np.ndarray


@dataclass(frozen=True)
class Plan:
    """A timed joint plan for the arm joints plus the gripper.

    Attributes:
        times: (T,) seconds from the start, at `sample_rate_hz`.
        joints: (T, n + 1) radians: the arm joints in chain order, then the gripper.
        waypoints: the IK waypoints the table interpolates.
        followed: (K,) bool, the trace points the tool follows.
        rotation_steps: trace steps where a rotation was followed.
        mode: "gripper" or "object".
        control_offset: (3,) the point the waypoints steer, in the tool frame, metres (in gripper
            mode where the followed points sit on the gripper; zero = the tool origin).
    """

    times: np.ndarray
    joints: np.ndarray
    waypoints: Waypoints
    followed: np.ndarray
    rotation_steps: int
    mode: str
    control_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))

    @property
    def duration(self) -> float:
        return float(self.times[-1])


def parse_gripper_schedule(text: str) -> list[tuple[int, bool]]:
    """`"close@12,open@30"` -> [(12, True), (30, False)] (step, closed), sorted by step."""
    events = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"(open|close|closed)@(\d+)", part)
        if not match:
            raise PlanningError(f"gripper schedule item {part!r} is not open@STEP or close@STEP; e.g. 'close@12,open@30'")
        events.append((int(match.group(2)), match.group(1) != "open"))
    if not events:
        raise PlanningError(f"gripper schedule {text!r} is empty; e.g. 'close@12,open@30'")
    return sorted(events)


def lift_trace(trace: TraceFile, camera: CameraToBase) -> np.ndarray:
    """Valid steps of a trace as base-frame 3D points.

    Returns:
        (K, S, 3) float64 metres; NaN where a point has no value (S = valid steps, start included).
    """
    if not trace.has_depth:
        raise PlanningError("the trace has no depth (z is NaN); execute needs a 3D trace: predict with a depth image")
    steps = np.flatnonzero(trace.valid)
    if not np.array_equal(steps, np.arange(len(steps))):
        raise PlanningError(f"trace valid mask {trace.valid.astype(int).tolist()} has gaps; valid steps must come first")
    uvz = trace.traj[:, steps].astype(np.float64)  # (K, S, 3)
    uvz[~(uvz[..., 2] > 0)] = np.nan  # no depth, or behind the camera
    return camera.to_base(unproject(uvz, trace.intrinsics))  # (K, S, 3)


def ransac_rigid(source, target, weights, config: PlanConfig, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Rigid motion most points agree on, or None when too few well-spread points agree.

    Args:
        source, target: (M, 3) the same points at two times, metres.
        weights: (M,) point weights.
    Returns:
        ((3, 3) R, (3,) t, (M,) inlier mask) with target ≈ source @ R.T + t.
    """
    count = len(source)
    if count < max(3, config.min_rotation_points):
        return None
    best = np.zeros(count, dtype=bool)
    for _ in range(config.ransac_iterations):
        pick = rng.choice(count, 3, replace=False)
        rotation, translation = kabsch(source[pick], target[pick])
        inliers = np.linalg.norm(source @ rotation.T + translation - target, axis=1) < config.ransac_threshold
        if inliers.sum() > best.sum():
            best = inliers
    if best.sum() < config.min_rotation_points:
        return None
    centred = source[best] - source[best].mean(0)
    spread = np.linalg.svd(centred, compute_uv=False)[1] / np.sqrt(best.sum())
    if spread < config.min_rotation_spread:
        return None
    rotation, translation = kabsch(source[best], target[best], weights[best])
    return rotation, translation, best


def select_gripper_points(trace: TraceFile, camera: CameraToBase, tool_position: np.ndarray, config: PlanConfig) -> np.ndarray:
    """Weights (K,) of the grid points on the gripper: near the tool projected into the image."""
    if config.gripper_mask is not None:
        mask = np.asarray(config.gripper_mask, dtype=bool)
        if mask.shape != (trace.traj.shape[0],) or not mask.any():
            raise PlanningError(f"gripper mask has shape {mask.shape} or is empty; pass ({trace.traj.shape[0]},) bool with some true")
        return mask.astype(np.float64)
    u, v, z = project(camera.to_camera(tool_position), trace.intrinsics)
    height, width = trace.image_size
    if not (z > 0 and -config.gripper_radius_px <= u <= width + config.gripper_radius_px
            and -config.gripper_radius_px <= v <= height + config.gripper_radius_px):
        raise PlanningError(
            f"the gripper projects to (u={u:.0f}, v={v:.0f}, z={z:.2f} m), outside the {width}x{height} image; "
            "check --camera-to-base or use --mode object"
        )
    start = trace.traj[:, 0].astype(np.float64)  # (K, 3)
    distance = np.hypot(start[:, 0] - u, start[:, 1] - v)  # (K,) pixels
    start_3d = camera.to_base(unproject(start, trace.intrinsics))  # (K, 3) base frame, NaN without depth
    distance_3d = np.linalg.norm(start_3d - tool_position, axis=1)  # (K,) metres
    with np.errstate(invalid="ignore"):
        near = ((distance <= config.gripper_radius_px) & (np.abs(start[:, 2] - z) <= config.gripper_depth_tolerance)
                & (distance_3d <= config.gripper_radius_m))
    if not near.any():
        raise PlanningError(
            f"no trace point lies within {config.gripper_radius_px:.0f} px, {config.gripper_depth_tolerance} m in depth and "
            f"{config.gripper_radius_m} m in 3D of the gripper at (u={u:.0f}, v={v:.0f}, z={z:.2f} m); "
            "check --camera-to-base, or use --mode object"
        )
    sigma = config.gripper_radius_m / 2.0
    return np.where(near, np.exp(-0.5 * (np.nan_to_num(distance_3d) / sigma) ** 2), 0.0)


def follow_points(points: np.ndarray, weights: np.ndarray, anchor: np.ndarray, config: PlanConfig):
    """Where `anchor` goes if it moves like the weighted `points`.

    Args:
        points: (K, S, 3) base-frame trace, metres (NaN where unknown).
        weights: (K,) weights of the followed points (0 = ignored).
        anchor: (3,) the point carried along (the tool, or the grasp point), metres.
    Returns:
        ((S, 3) anchor positions, (S, 3, 3) rotations relative to the start, number of rotated steps).
    """
    rng = np.random.default_rng(config.seed)
    steps = points.shape[1]
    positions, rotations, rotated = np.empty((steps, 3)), np.repeat(np.eye(3)[None], steps, 0), 0
    positions[0] = anchor
    for step in range(1, steps):
        seen = (weights > 0) & np.isfinite(points[:, 0]).all(1) & np.isfinite(points[:, step]).all(1)
        if not seen.any():  # nothing followed is visible: hold the last goal
            positions[step], rotations[step] = positions[step - 1], rotations[step - 1]
            continue
        source, target, w = points[seen, 0], points[seen, step], weights[seen]
        rigid = ransac_rigid(source, target, w, config, rng)
        if rigid is None:
            positions[step] = anchor + (w @ (target - source)) / w.sum()
            continue
        rotation, translation, _ = rigid
        positions[step], rotations[step] = rotation @ anchor + translation, rotation
        rotated += 1
    return positions, rotations, rotated


def gripper_closed_by_comotion(
    points: np.ndarray, followed: np.ndarray, fringe: np.ndarray, tool_path: np.ndarray, config: PlanConfig
) -> np.ndarray:
    """(S,) bool: the gripper holds something when points off the gripper move together with it.

    A held point keeps its offset from the tool while both move: over a step it moves more than
    `comotion_min_step`, its offset to the tool changes by less than `comotion_ratio` of that, and it
    lies within `hold_reach` of the tool. The
    state at waypoint i governs the move i -> i+1, so the gripper closes before the object moves.

    Args:
        points: (K, S, 3) base-frame trace. followed: (K,) the gripper points.
        fringe: (K,) points near the gripper that may be its rim (never taken for an object).
        tool_path: (S, 3) tool positions.
    """
    motion = np.diff(points, axis=1)  # (K, S-1, 3)
    tool_motion = np.diff(tool_path, axis=0)  # (S-1, 3)
    offset_change = motion - tool_motion[None]  # (K, S-1, 3)
    moved = np.linalg.norm(motion, axis=2)  # (K, S-1); NaN where unknown
    held = (moved > config.comotion_min_step) & (np.linalg.norm(offset_change, axis=2) < config.comotion_ratio * moved)
    held &= np.linalg.norm(points[:, :-1] - tool_path[None, :-1], axis=2) < config.hold_reach  # within the gripper's grasp
    candidates = ~followed & ~fringe  # points off the gripper and its rim
    holding = (held & candidates[:, None]).sum(0) >= config.min_comoving  # (S-1,) per move
    tool_moves = np.linalg.norm(tool_motion, axis=1) > config.comotion_min_step
    closed = np.zeros(points.shape[1], dtype=bool)
    for move in range(len(holding)):  # while the tool rests nothing can be told: keep the state
        closed[move] = holding[move] if tool_moves[move] else (closed[move - 1] if move else False)
    closed[-1] = closed[-2] if len(closed) > 1 else False
    return closed


def gripper_states(steps: int, config: PlanConfig, auto: np.ndarray | None) -> np.ndarray:
    """(S,) bool closed-state per trace step from the `gripper` setting."""
    if config.gripper in ("open", "closed"):
        return np.full(steps, config.gripper == "closed")
    if config.gripper == "auto":
        return np.zeros(steps, dtype=bool) if auto is None else auto
    events = parse_gripper_schedule(config.gripper)
    states = np.full(steps, not events[0][1])
    for step, closed in events:
        if step >= steps:
            raise PlanningError(f"gripper schedule step {step} is past the trace's last step {steps - 1}")
        states[step:] = closed
    return states


def arm_points(points: np.ndarray, chain: KinematicChain, joints: np.ndarray, clearance: float) -> np.ndarray:
    """(K,) bool: the trace points that start on the arm itself (a capsule model of its links).

    Args:
        points: (K, S, 3) base-frame trace, metres. joints: (n,) the arm's start pose, radians.
        clearance: radius of the capsules around the segments base origin -> joint -> ... -> tool, metres.
    """
    frames, tool = chain.joint_frames(joints)
    nodes = np.vstack([np.zeros((1, 3)), frames[:, :3, 3], tool[None, :3, 3]])  # (n + 2, 3): the base's housing first
    start = points[:, 0]  # (K, 3)
    nearest = np.full(len(start), np.inf)
    for a, b in zip(nodes[:-1], nodes[1:], strict=True):
        segment = b - a
        along = np.clip((start - a) @ segment / max(float(segment @ segment), 1e-12), 0.0, 1.0)  # (K,)
        nearest = np.fmin(nearest, np.linalg.norm(start - (a + along[:, None] * segment), axis=1))
    return nearest <= clearance  # NaN (no depth) -> False


def select_object_points(points: np.ndarray, exclude: np.ndarray, config: PlanConfig) -> np.ndarray:
    """Weights (K,) of the points on the one object that moves: of the groups of moved points that start
    together (`linked_groups`), the one whose point moves furthest, then its largest rigid subgroup (a
    small object may cover a single grid point; it is followed by translation alone)."""
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
    loose = PlanConfig(min_rotation_points=3, min_rotation_spread=0.0, ransac_threshold=2 * config.ransac_threshold,
                       ransac_iterations=config.ransac_iterations)
    rigid = ransac_rigid(start[members], end[members], np.ones(len(members)), loose, np.random.default_rng(config.seed))
    weights = np.zeros(len(points))
    weights[members if rigid is None else members[rigid[2]]] = 1.0
    return weights


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


def support_height(xy: np.ndarray, surface: np.ndarray, config: PlanConfig) -> np.ndarray:
    """(M,) height of the surface under the base-plane points `xy` (M, 2), from `surface` (L, 3): the
    still points' start positions in the base frame, metres. 0 (the base plane) where none is near."""
    near = np.linalg.norm(surface[None, :, :2] - xy[:, None], axis=2) <= config.support_radius  # (M, L)
    heights = np.where(near, surface[None, :, 2], np.nan)
    found = near.any(1)
    out = np.zeros(len(xy))
    if found.any():
        out[found] = np.nanquantile(heights[found], config.support_quantile, axis=1)
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


def _densify(positions, rotations, gripper, steps, max_segment):
    """Insert waypoints so no tool move exceeds `max_segment`; rotations interpolate on SO(3).

    Inserted points carry the gripper joint of the segment's start; `key` marks the originals.
    """
    out_p, out_r, out_c, out_s, out_k = [positions[0]], [rotations[0]], [gripper[0]], [steps[0]], [True]
    for index in range(1, len(positions)):
        pieces = max(1, int(np.ceil(np.linalg.norm(positions[index] - positions[index - 1]) / max_segment)))
        relative = rotation_log(rotations[index] @ rotations[index - 1].T)
        for piece in range(1, pieces + 1):
            fraction = piece / pieces
            out_p.append(positions[index - 1] + fraction * (positions[index] - positions[index - 1]))
            out_r.append(rotation_exp(fraction * relative) @ rotations[index - 1])
            last = piece == pieces
            out_c.append(gripper[index] if last else gripper[index - 1])
            out_s.append(steps[index])
            out_k.append(last)
    return np.array(out_p), np.array(out_r), np.array(out_c), np.array(out_s), np.array(out_k)


def _trapezoid_arc(times: np.ndarray, length: float, speed: float, acceleration: float) -> np.ndarray:
    """Arc length reached at `times` by a rest-to-rest move with speed and acceleration limits."""
    peak = min(speed, np.sqrt(length * acceleration))
    ramp = peak / acceleration  # seconds to reach the peak speed
    duration = 2 * ramp + (length - peak * ramp) / peak
    t = np.clip(times, 0.0, duration)
    rising = 0.5 * acceleration * t**2
    cruising = 0.5 * peak * ramp + peak * (t - ramp)
    falling = length - 0.5 * acceleration * (duration - t) ** 2
    return np.where(t < ramp, rising, np.where(t <= duration - ramp, cruising, falling))


def _trapezoid_duration(length: float, speed: float, acceleration: float) -> float:
    peak = min(speed, np.sqrt(length * acceleration))
    return 0.0 if length <= 0 else 2 * peak / acceleration + (length - peak**2 / acceleration) / peak


def retime(joints: np.ndarray, tool: np.ndarray, gripper: np.ndarray, config: PlanConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample the waypoint path at `sample_rate_hz`, stopping with a dwell wherever the gripper changes.

    Path length per segment is max(tool distance, joint_length * largest joint change), so the tool
    never exceeds `speed` and the joints never exceed speed / joint_length.

    Args:
        joints: (N, n) waypoint joints, radians. tool: (N, 3) tool positions, metres.
        gripper: (N,) gripper joint after arriving at each waypoint, radians.
    Returns:
        ((T,) times in s, (T, n + 1) joints + gripper in radians, (N,) time at each waypoint in s).
    """
    rows = np.hstack([joints, gripper[:, None]])  # (N, n+1)
    seg = np.maximum(np.linalg.norm(np.diff(tool, axis=0), axis=1),
                     config.joint_length * np.abs(np.diff(joints, axis=0)).max(1, initial=0.0))  # (N-1,)
    arc = np.concatenate([[0.0], np.cumsum(seg)])  # (N,)
    dt = 1.0 / config.sample_rate_hz
    times, table, waypoint_time = [np.zeros(1)], [rows[:1]], np.zeros(len(rows))
    changes = {i for i in range(1, len(rows)) if gripper[i] != gripper[i - 1]}
    clock, start = 0.0, 0
    for stop in sorted(changes | {len(rows) - 1}):
        length = arc[stop] - arc[start]  # move start -> stop holding the gripper, rest to rest
        duration = _trapezoid_duration(length, config.speed, config.acceleration)
        if duration > 0:
            local = np.append(np.arange(dt, duration - 1e-9, dt), duration)  # (m,); none a rounding error before the end
            s = arc[start] + _trapezoid_arc(local, length, config.speed, config.acceleration)
            piece = np.stack([np.interp(s, arc[start:stop + 1], rows[start:stop + 1, j]) for j in range(rows.shape[1] - 1)], 1)
            times.append(clock + local)
            table.append(np.hstack([piece, np.full((len(local), 1), gripper[start])]))
            waypoint_time[start:stop + 1] = clock + np.interp(arc[start:stop + 1], s, local, left=0.0)
            clock += duration
        waypoint_time[stop] = clock
        if stop in changes:  # open or close at this pose, ramping the gripper during a dwell
            local = np.append(np.arange(dt, config.gripper_dwell - 1e-9, dt), config.gripper_dwell)
            ramp = gripper[stop - 1] + (local / config.gripper_dwell) * (gripper[stop] - gripper[stop - 1])
            times.append(clock + local)
            table.append(np.hstack([np.repeat(rows[stop:stop + 1, :-1], len(local), 0), ramp[:, None]]))
            clock += config.gripper_dwell
            waypoint_time[stop] = clock
        start = stop
    return np.concatenate(times), np.vstack(table), waypoint_time


def tool_goals(points: np.ndarray, trace: TraceFile, camera: CameraToBase, tool: np.ndarray, config: PlanConfig,
               on_arm: np.ndarray | None = None, approach: np.ndarray | None = None):
    """Waypoints before IK: goals of the controlled point (N, 3), tool rotations (N, 3, 3), gripper
    joint (N,) radians, trace step (N,) (-1 on the approach), the followed points (K,), the number of rotated
    steps, and the controlled point in the tool frame (3,). `on_arm` (K,) marks points on the arm's own
    links (`arm_points`): never taken for an object or for something held. `approach` (3,) is the way the
    tool points, in the tool frame (`approach_axis`; default its -z): a push points it straight down.

    Gripper mode controls the point on the gripper where the followed points are (their weighted
    centroid), so the arm reproduces what the trace shows there even when the tool turns and the
    rotation cannot be estimated; object mode brings the tool origin to the object's grasp point, or, when
    the trace slides the object along its support, behind it to push it (`push_goals`).
    """
    steps = points.shape[1]
    on_arm = np.zeros(points.shape[0], dtype=bool) if on_arm is None else on_arm
    if config.mode == "gripper":
        weights = select_gripper_points(trace, camera, tool[:3, 3], config)
        seen = (weights > 0) & np.isfinite(points[:, 0]).all(1)
        if not seen.any():
            raise PlanningError("none of the trace points on the gripper has a depth at the start; re-predict with depth")
        anchor = (weights[seen] @ points[seen, 0]) / weights[seen].sum()  # (3,) base frame
        path, relative, rotated = follow_points(points, weights, anchor, config)
        wide = PlanConfig(gripper_radius_px=1.5 * config.gripper_radius_px, gripper_depth_tolerance=config.gripper_depth_tolerance,
                          gripper_radius_m=config.gripper_radius_m)  # the links are `on_arm`: objects may come close
        fringe = (select_gripper_points(trace, camera, tool[:3, 3], wide) > 0) | on_arm
        closed = gripper_states(steps, config, gripper_closed_by_comotion(points, weights > 0, fringe, path, config))
        offset = tool[:3, :3].T @ (anchor - tool[:3, 3])  # (3,) tool frame
        return path, relative @ tool[:3, :3], gripper_joint(closed, config), np.arange(steps), weights > 0, rotated, offset
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
    approach = np.array([0.0, 0.0, -1.0]) if approach is None else approach
    if np.abs(path[:, 2] - path[0, 2]).max() < config.slide_tolerance:  # the trace slides the object: push it
        return push_goals(path, points[weights > 0, 0], surface, tool, approach, config) + (weights > 0, 0, np.zeros(3))
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


def gripper_joint(closed: np.ndarray, config: PlanConfig) -> np.ndarray:
    """(N,) gripper joint, radians, for the closed states (N,) bool."""
    return np.where(closed, config.gripper_closed, config.gripper_open).astype(np.float64)


def approach_axis(chain: KinematicChain, joints: np.ndarray) -> np.ndarray:
    """(3,) unit vector the tool points along, in the tool frame: from the last joint to the tool point."""
    frames, tool = chain.joint_frames(joints)
    pointing = tool[:3, 3] - frames[-1, :3, 3]
    return tool[:3, :3].T @ pointing / max(float(np.linalg.norm(pointing)), 1e-9)


def pointing_down(tool: np.ndarray, approach: np.ndarray) -> np.ndarray:
    """(3, 3) the tool rotation `tool[:3, :3]` turned the least so that its `approach` axis points straight down."""
    now, down = tool[:3, :3] @ approach, np.array([0.0, 0.0, -1.0])
    axis = np.cross(now, down)
    angle = float(np.arctan2(np.linalg.norm(axis), now @ down))
    turn = rotation_exp(axis / np.linalg.norm(axis) * angle) if np.linalg.norm(axis) > 1e-9 else np.eye(3)
    return turn @ tool[:3, :3]


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
    travel = path[-1, :2] - path[0, :2]
    direction = travel / max(float(np.linalg.norm(travel)), 1e-9)  # (2,) the push's direction in the base plane
    behind = float(np.max(np.nan_to_num((path[0, :2] - object_start[:, :2]) @ direction, nan=0.0), initial=0.0))
    offset = behind + config.push_offset  # tool point to the object's followed point, along the push
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


def plan_trace(
    trace: TraceFile,
    camera: CameraToBase,
    start_joints: np.ndarray,
    config: PlanConfig = PlanConfig(),
    chain: KinematicChain = SO101,
) -> Plan:
    """Turn a 3D trace into a timed joint plan starting from the arm's present pose.

    Args:
        trace: the predicted trace (must have depth).
        camera: the reference camera's pose in the base frame.
        start_joints: (n + 1,) present joints then gripper, radians.
        config: planning settings.
        chain: the arm's kinematics.
    Returns:
        The `Plan` (not yet safety-checked: see `robot.safety.check_plan`).
    """
    if config.mode not in MODES:
        raise PlanningError(f"mode {config.mode!r} is unknown; use one of {', '.join(MODES)}")
    if config.carry_orientation not in ("down", "start"):
        raise PlanningError(f"carry orientation {config.carry_orientation!r} is unknown; use down or start")
    if config.speed <= 0 or config.acceleration <= 0:
        raise PlanningError(f"speed {config.speed} m/s and acceleration {config.acceleration} m/s^2 must be positive")
    start_joints = np.asarray(start_joints, dtype=np.float64)
    if start_joints.shape != (chain.num_joints + 1,) or not np.isfinite(start_joints).all():
        raise PlanningError(f"start joints {start_joints.tolist()} must be {chain.num_joints} arm joints plus the gripper")
    points = lift_trace(trace, camera)  # (K, S, 3)
    tool = chain.forward(start_joints[:-1])
    on_arm = arm_points(points, chain, start_joints[:-1], config.arm_clearance)
    positions, rotations, gripper, steps, followed, rotated, offset = tool_goals(
        points, trace, camera, tool, config, on_arm, approach_axis(chain, start_joints[:-1]))
    positions, rotations, gripper, steps, key = _densify(positions, rotations, gripper, steps, config.max_segment)
    results = chain.inverse_path(positions, start_joints[:-1], rotations, config.ik, offset)
    # Row 0 is the present pose; the gripper ramps from its present opening during a dwell if needed.
    joints = np.vstack([start_joints[:-1], [r.joints for r in results]])  # (N+1, n)
    gripper = np.concatenate([[start_joints[-1]], gripper])
    tool_path = np.vstack([tool[:3, :3] @ offset + tool[:3, 3], positions])  # (N+1, 3) controlled point
    times, table, waypoint_time = retime(joints, tool_path, gripper, config)
    waypoints = Waypoints(
        step=steps, key=key, position=positions, joints=joints[1:], gripper=gripper[1:],
        position_error=np.array([r.position_error for r in results]),
        orientation_error=np.array([r.orientation_error for r in results]), time=waypoint_time[1:],
    )
    log.info("planned %d waypoints over %.2f s; %d of %d steps rotate", len(steps), times[-1], rotated, points.shape[1] - 1)
    return Plan(times, table, waypoints, followed, rotated, config.mode, offset)
