"""RGB-D odometry on the grid tracks: with sensor depth, a moving camera's pose relative to the query
frame follows from the static grid points' 3D positions in both frames (robust Kabsch alignment);
points that move (the manipulated object) are RANSAC outliers. No SfM and no scale ambiguity.
"""

from __future__ import annotations

import numpy as np

from forge.depth import sample_depth
from forge.tracking import GridTracks
from store.trace import unproject

HYPOTHESES = 128  # RANSAC triplets per frame
MIN_POINTS = 12


def kabsch(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rigid (4, 4) transform T minimising |T source - target|, batched over leading axes.

    Args:
        source, target: (..., N, 3).
    Returns:
        (..., 4, 4).
    """
    source_mean, target_mean = source.mean(-2, keepdims=True), target.mean(-2, keepdims=True)
    covariance = np.swapaxes(source - source_mean, -1, -2) @ (target - target_mean)  # (..., 3, 3)
    u, _, vt = np.linalg.svd(covariance)
    sign = np.sign(np.linalg.det(np.swapaxes(vt, -1, -2) @ np.swapaxes(u, -1, -2)))
    fix = np.broadcast_to(np.eye(3), covariance.shape).copy()
    fix[..., 2, 2] = sign
    rotation = np.swapaxes(vt, -1, -2) @ fix @ np.swapaxes(u, -1, -2)
    transform = np.broadcast_to(np.eye(4), covariance.shape[:-2] + (4, 4)).copy()
    transform[..., :3, :3] = rotation
    transform[..., :3, 3] = target_mean[..., 0, :] - (rotation @ source_mean[..., 0, :, None])[..., 0]
    return transform


def robust_rigid(source: np.ndarray, target: np.ndarray, threshold: float, rng: np.random.Generator):
    """RANSAC Kabsch: (4, 4) transform of the largest rigid consensus, refitted on its inliers.

    Returns:
        transform (4, 4) or None, inlier mask (N,).
    """
    count = len(source)
    if count < MIN_POINTS:
        return None, np.zeros(count, bool)
    triplets = np.stack([rng.choice(count, 3, replace=False) for _ in range(HYPOTHESES)])  # (H, 3)
    candidates = kabsch(source[triplets], target[triplets])  # (H, 4, 4)
    moved = np.einsum("hij,nj->hni", candidates[:, :3, :3], source) + candidates[:, None, :3, 3]  # (H, N, 3)
    inliers = np.linalg.norm(moved - target[None], axis=-1) < threshold  # (H, N)
    best = inliers[np.argmax(inliers.sum(1))]
    if best.sum() < MIN_POINTS:
        return None, best
    transform = kabsch(source[best], target[best])
    residual = np.linalg.norm(source @ transform[:3, :3].T + transform[:3, 3] - target, axis=-1)
    inliers = residual < threshold
    return kabsch(source[inliers], target[inliers]), inliers


def poses_from_depth(track: GridTracks, depth: np.ndarray, intrinsics: np.ndarray, seed: int = 0,
                     threshold_share: float = 0.01) -> np.ndarray:
    """Camera-t-to-reference transforms (F, 4, 4) of one track's frames from its points' depth.

    Args:
        track: K points over F frames (frame 0 is the reference).
        depth: (F, H, W) metres for those frames.
        threshold_share: inlier distance as a share of the median reference depth.
    Returns:
        (F, 4, 4); NaN for frames with too few static points to align.
    """
    rng = np.random.default_rng(seed)
    num_frames = track.num_frames
    points = np.full((track.uv.shape[0], num_frames, 3), np.nan)
    for f in range(num_frames):
        z = sample_depth(depth[f], track.uv[:, f])
        points[:, f] = unproject(np.concatenate([track.uv[:, f], z[:, None]], 1), intrinsics)
    reference = points[:, 0]
    threshold = threshold_share * float(np.nanmedian(reference[:, 2]))
    transforms = np.full((num_frames, 4, 4), np.nan)
    transforms[0] = np.eye(4)
    for f in range(1, num_frames):
        usable = track.visible[:, f] & np.isfinite(points[:, f]).all(-1) & np.isfinite(reference).all(-1)
        transform, _ = robust_rigid(points[usable, f], reference[usable], threshold, rng)
        if transform is not None:
            transforms[f] = transform
    return transforms


def chain_poses(tracks: list[GridTracks], relative: list[np.ndarray], start: int, end: int) -> np.ndarray:
    """World-to-camera (F, 4, 4) for a segment from per-track camera-to-query transforms; the world is
    the segment's first camera. Each query frame's pose comes from an earlier track covering it;
    frames no track could align are interpolated.
    """
    from forge.camera import interpolate_poses

    world_from_camera = np.full((end - start, 4, 4), np.nan)
    world_from_camera[0] = np.eye(4)
    for track, transforms in zip(tracks, relative, strict=True):
        offset = track.query_frame - start
        anchor = world_from_camera[offset]
        if not np.isfinite(anchor).all():
            continue
        for f in range(track.num_frames):
            if not np.isfinite(world_from_camera[offset + f]).all() and np.isfinite(transforms[f]).all():
                world_from_camera[offset + f] = anchor @ transforms[f]
    known = np.isfinite(world_from_camera).all((1, 2))
    world_to_camera = np.where(known[:, None, None], np.linalg.inv(np.where(known[:, None, None],
                                                                            world_from_camera, np.eye(4))), 0.0)
    return interpolate_poses(world_to_camera, known)
