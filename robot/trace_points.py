"""What the trace's points are and how they move, in the arm's base frame: lifted to 3D, on the gripper or
on the arm's own links, and followed by a rigid motion (RANSAC-Kabsch) when enough well-spread points
agree, else by their mean displacement. What the gripper holds is `robot.comotion`."""

from __future__ import annotations

import numpy as np

from robot.camera_to_base import CameraToBase, kabsch
from robot.errors import PlanningError
from robot.kinematics import KinematicChain
from robot.plan_config import PlanConfig
from store.trace import TraceFile, project, unproject


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
