"""Lift 2D grid tracks to `(u, v, z)` in the reference (query) camera, removing camera motion.

Four ways, one per depth source:
- `lift_with_depth`: sensor depth at each frame, unprojected in that frame's camera, moved to the
  reference camera with the known poses.
- `lift_sfm`: no sensor depth, moving camera, SfM poses and sparse points. A point whose track fits a
  fixed world point (multi-view triangulation, small reprojection error) is static: its 3D position
  is that point. The other points move: their query-frame depth comes from the sparse scene depth
  around them, and their later positions from one rigid motion fitted to all of them by PnP
  (rigid-cluster PnP from their query-frame positions). Metric-free: the reconstruction's scale.
- `lift_2d_static`: static camera, no depth: `u, v` as tracked, z NaN.
- `lift_2d_homography`: moving camera, no depth: `u, v` mapped back to the reference image by the
  background homography of each frame (exact for a distant or planar background), z NaN.
"""

from __future__ import annotations

import cv2
import numpy as np

from forge.depth import sample_depth
from forge.tracking import GridTracks
from store.trace import project, unproject

STATIC_REPROJECTION_PX = 1.0  # a track within this (or 4x the median residual) of a fixed point is static
STATIC_MEDIAN_FACTOR = 4.0
MIN_TRIANGULATION_DEG = 2.0  # below this parallax a triangulated point is too uncertain
MIN_TRIANGULATION_FRAMES = 8  # ... and with fewer frames its residual says little
KEEP_SHARE = 0.5  # each refit of the local depth model keeps the best-explained half of its points
REFITS = 3
DEPTH_JUMP = 0.1  # a sensor-depth change above this fraction of z between two frames: the point slid off its surface


def relative_poses(world_to_camera: np.ndarray) -> np.ndarray:
    """(F, 4, 4) transforms from camera t to camera 0 (the reference): `T_0 @ inv(T_t)`."""
    return np.einsum("ij,njk->nik", world_to_camera[0], np.linalg.inv(world_to_camera))


def lift_with_depth(track: GridTracks, depth: np.ndarray, intrinsics: np.ndarray,
                    world_to_camera: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sensor-depth lifting.

    Args:
        track: K points over F frames.
        depth: (F, H, W) metres for the track's frames, NaN unknown.
        intrinsics: (3, 3).
        world_to_camera: (F, 4, 4) for the track's frames.
    Returns:
        raw (K, F, 3) `(u, v, z)` in the reference camera, visible (K, F) bool.
    """
    num_points, num_frames = track.visible.shape
    cam_to_ref = relative_poses(world_to_camera)  # (F, 4, 4)
    raw = np.full((num_points, num_frames, 3), np.nan)
    for f in range(num_frames):
        z = sample_depth(depth[f], track.uv[:, f])  # (K,)
        xyz = unproject(np.concatenate([track.uv[:, f], z[:, None]], 1), intrinsics)  # (K, 3) camera f
        xyz_ref = xyz @ cam_to_ref[f, :3, :3].T + cam_to_ref[f, :3, 3]
        raw[:, f] = project(xyz_ref, intrinsics)
    if np.allclose(cam_to_ref, np.eye(4)):  # static camera: keep the tracked pixels exactly
        raw[..., :2] = track.uv
    visible = track.visible & np.isfinite(raw).all(-1)
    return raw, visible & ~depth_jumped(raw[..., 2], visible)


def depth_jumped(z: np.ndarray, visible: np.ndarray, fraction: float = DEPTH_JUMP) -> np.ndarray:
    """(K, F) bool: from the first frame where a point's depth changes by more than `fraction` of its
    previous depth on; a 2D track that crossed an occluding edge now reads the depth of another
    surface (10 % of z in one frame is 1.5 m/s at 1 m and 15 fps: no tabletop motion does that).
    Left alone, such a jump is a fake motion of tens of centimetres.

    Args:
        z: (K, F) depth, NaN unknown; visible: (K, F) bool.
    """
    previous = np.where(visible[:, :-1], z[:, :-1], np.nan)
    change = np.abs(z[:, 1:] - previous) > fraction * np.abs(previous)  # (K, F-1); NaN compares false
    jumped = np.zeros_like(visible)
    jumped[:, 1:] = np.maximum.accumulate(change & visible[:, 1:], axis=1)
    return jumped


def lift_2d_static(track: GridTracks) -> tuple[np.ndarray, np.ndarray]:
    """Static camera, no depth: (K, F, 3) with z NaN, and visibility as tracked."""
    raw = np.concatenate([track.uv, np.full(track.uv.shape[:2] + (1,), np.nan)], -1).astype(np.float64)
    return raw, track.visible.copy()


def lift_2d_homography(track: GridTracks, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Moving camera, no depth: undo each frame's background homography (RANSAC over the grid).

    Returns:
        raw (K, F, 3) with z NaN, visible (K, F) (false for frames whose homography failed).
    """
    cv2.setRNGSeed(seed)
    raw, visible = lift_2d_static(track)
    grid = track.uv[:, 0]
    for f in range(1, track.num_frames):
        seen = track.visible[:, f]
        if seen.sum() < 8:
            visible[:, f] = False
            continue
        homography, _ = cv2.findHomography(track.uv[seen, f], grid[seen], cv2.RANSAC, 2.0)
        if homography is None:
            visible[:, f] = False
            continue
        mapped = cv2.perspectiveTransform(track.uv[:, f].reshape(-1, 1, 2).astype(np.float64), homography)
        raw[:, f, :2] = mapped.reshape(-1, 2)
    raw[~visible] = np.nan
    return raw, visible


def sparse_depth(points_world: np.ndarray, world_to_camera: np.ndarray, intrinsics: np.ndarray,
                 query_uv: np.ndarray, neighbours: int = 128) -> np.ndarray:
    """Depth at `query_uv` (N, 2) from sparse static world points seen by one camera.

    Around each query pixel, inverse depth is fitted as an affine function of (u, v) over its
    `neighbours` nearest projected points, then refitted on the best-explained half, REFITS times: the
    dominant local plane, e.g. the support surface under a moved object (whose own points are not
    static, so not among the sparse points). Planes are exact: their inverse depth is affine in the
    image. Measured on the synthetic scene: 128 neighbours give 1.3 % mean query-depth error where
    24 give 5.6 %.

    Returns:
        (N,) z in the camera of `world_to_camera`, NaN when too few points project in front of it.
    """
    from scipy.spatial import cKDTree

    cam = points_world @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]  # (M, 3)
    cam = cam[np.isfinite(cam).all(1) & (cam[:, 2] > 0)]
    depth = np.full(len(query_uv), np.nan)
    finite = np.isfinite(query_uv).all(-1)
    if len(cam) < 8 or not finite.any():
        return depth
    uvz = project(cam, intrinsics)  # (M, 3)
    query = query_uv[finite].astype(np.float64)  # (n, 2)
    _, index = cKDTree(uvz[:, :2]).query(query, k=min(neighbours, len(uvz)))  # (n, k)
    offsets = (uvz[index, :2] - query[:, None, :]) / 100.0  # (n, k, 2): centred, so the constant is the answer
    design = np.concatenate([np.ones(index.shape + (1,)), offsets], -1)  # (n, k, 3)
    target = 1.0 / uvz[index, 2]  # (n, k)
    weights = np.ones(index.shape)
    for _ in range(REFITS):
        coef = _weighted_affine(design, target, weights)  # (n, 3)
        error = np.abs(np.einsum("nkc,nc->nk", design, coef) - target)
        weights = (error <= np.quantile(error, KEEP_SHARE, axis=1, keepdims=True)).astype(np.float64)
    depth[finite] = 1.0 / _weighted_affine(design, target, weights)[:, 0]
    return depth


def _weighted_affine(design: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Batched weighted least squares: (n, k, 3) design, (n, k) target and weights -> (n, 3)."""
    normal = np.einsum("nkc,nk,nkd->ncd", design, weights, design) + 1e-9 * np.eye(3)
    right = np.einsum("nkc,nk,nk->nc", design, weights, target)
    return np.linalg.solve(normal, right[..., None])[..., 0]


def triangulate_tracks(uv: np.ndarray, visible: np.ndarray, world_to_camera: np.ndarray,
                       intrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear (DLT) triangulation of every track as a fixed world point, batched over tracks.

    Args:
        uv: (K, F, 2), visible: (K, F), world_to_camera: (F, 4, 4).
    Returns:
        points (K, 3) world, residual (K,) RMS reprojection error in px (inf when not triangulable),
        parallax (K,) degrees: the widest angle between the first visible ray and any other.
    """
    num_points = uv.shape[0]
    projections = intrinsics @ world_to_camera[:, :3, :]  # (F, 3, 4)
    seen = visible & np.isfinite(uv).all(-1)  # (K, F)
    u, v = np.nan_to_num(uv[..., 0]), np.nan_to_num(uv[..., 1])  # (K, F)
    rows_u = u[..., None] * projections[None, :, 2] - projections[None, :, 0]  # (K, F, 4)
    rows_v = v[..., None] * projections[None, :, 2] - projections[None, :, 1]
    system = np.concatenate([rows_u, rows_v], 1) * np.concatenate([seen, seen], 1)[..., None]  # (K, 2F, 4)
    _, _, vt = np.linalg.svd(system, full_matrices=False)  # full U would be (2F, 2F) per track
    homogeneous = vt[:, -1]  # (K, 4)
    usable = (seen.sum(1) >= 3) & (np.abs(homogeneous[:, 3]) > 1e-12)
    points = np.full((num_points, 3), np.nan)
    points[usable] = homogeneous[usable, :3] / homogeneous[usable, 3:]
    cam = np.einsum("fij,kj->kfi", world_to_camera[:, :3, :3], np.nan_to_num(points)) + world_to_camera[None, :, :3, 3]
    in_front = np.where(seen, cam[..., 2] > 0, True).all(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        reprojected = project(cam, intrinsics)[..., :2]  # (K, F, 2)
        squared = np.where(seen, ((reprojected - np.nan_to_num(uv)) ** 2).sum(-1), 0.0)
        residual = np.sqrt(squared.sum(1) / np.maximum(seen.sum(1), 1))
    good = usable & in_front & np.isfinite(residual)
    residual = np.where(good, residual, np.inf)
    points[~good] = np.nan
    centres = np.einsum("fji,fj->fi", world_to_camera[:, :3, :3], -world_to_camera[:, :3, 3])  # (F, 3)
    rays = np.nan_to_num(points)[:, None, :] - centres[None]  # (K, F, 3)
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True) + 1e-12
    first = rays[np.arange(num_points), np.argmax(seen, axis=1)]  # (K, 3)
    cosines = np.where(seen, np.einsum("kfi,ki->kf", rays, first), 1.0)
    parallax = np.where(good, np.degrees(np.arccos(np.clip(cosines.min(1), -1, 1))), 0.0)
    return points, residual, parallax


def lift_sfm(track: GridTracks, world_to_camera: np.ndarray, intrinsics: np.ndarray,
             scene_points: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    """Lifting from a reconstruction (see the module docstring).

    Args:
        track: K points over F frames.
        world_to_camera: (F, 4, 4) SfM poses of the track's frames.
        intrinsics: (3, 3).
        scene_points: (M, 3) triangulated static world points of the segment.
    Returns:
        raw (K, F, 3) in the reference camera, visible (K, F), stats {static, moving, pnp_frames}.
    """
    uv, seen = track.uv.astype(np.float64), track.visible
    points, residual, parallax = triangulate_tracks(uv, seen, world_to_camera, intrinsics)
    query_z = sparse_depth(scene_points, world_to_camera[0], intrinsics, uv[:, 0])  # (K,)
    query_world = _to_world(unproject(np.concatenate([uv[:, 0], query_z[:, None]], 1), intrinsics), world_to_camera[0])
    static = residual < static_threshold(residual)
    well_placed = static & (parallax >= MIN_TRIANGULATION_DEG) & (seen.sum(1) >= MIN_TRIANGULATION_FRAMES)
    world_static = np.where(well_placed[:, None], points, query_world)  # (K, 3)
    moving = np.isfinite(residual) & ~static & np.isfinite(query_world).all(-1)
    static |= ~np.isfinite(residual)  # seen too briefly to tell: held at its query-frame depth

    num_points, num_frames = seen.shape
    cam_to_ref = relative_poses(world_to_camera)
    world_to_ref = world_to_camera[0]
    raw = np.full((num_points, num_frames, 3), np.nan)
    ref_static = world_static @ world_to_ref[:3, :3].T + world_to_ref[:3, 3]  # (K, 3)
    raw[static] = project(ref_static[static], intrinsics)[:, None, :]
    visible = seen & static[:, None] & np.isfinite(raw).all(-1)
    pnp_frames = 0
    if moving.sum() >= 6:
        raw[moving, 0] = project(ref_static[moving], intrinsics)
        visible[moving, 0] = seen[moving, 0]
        cv2.setRNGSeed(seed)
        for f in range(1, num_frames):
            cam = _rigid_pnp(query_world[moving], uv[moving, f], seen[moving, f], intrinsics)
            if cam is None:
                continue
            pnp_frames += 1
            ref = cam @ cam_to_ref[f, :3, :3].T + cam_to_ref[f, :3, 3]
            raw[moving, f] = project(ref, intrinsics)
            visible[moving, f] = seen[moving, f]
    raw[~visible] = np.nan
    return raw, visible, {"static": int(static.sum()), "moving": int(moving.sum()), "pnp_frames": pnp_frames}


def static_threshold(residual: np.ndarray) -> float:
    """Reprojection residual (px) below which a track counts as a fixed world point: 4x the median
    residual of all tracks (most of a scene is static), at least STATIC_REPROJECTION_PX."""
    finite = residual[np.isfinite(residual)]
    median = float(np.median(finite)) if len(finite) else 0.0
    return max(STATIC_REPROJECTION_PX, STATIC_MEDIAN_FACTOR * median)


def _to_world(points_cam: np.ndarray, world_to_camera: np.ndarray) -> np.ndarray:
    rotation, translation = world_to_camera[:3, :3], world_to_camera[:3, 3]
    return (points_cam - translation) @ rotation


def _rigid_pnp(object_world: np.ndarray, image_uv: np.ndarray, seen: np.ndarray,
               intrinsics: np.ndarray) -> np.ndarray | None:
    """Camera-frame positions (N, 3) of a rigid cluster at one frame, or None when PnP fails."""
    if seen.sum() < 6:
        return None
    ok, rvec, tvec, inliers = cv2.solvePnPRansac(
        object_world[seen], image_uv[seen], intrinsics, None, reprojectionError=3.0, iterationsCount=200,
        flags=cv2.SOLVEPNP_SQPNP,
    )
    if not ok or inliers is None or len(inliers) < 6:
        return None
    inliers = inliers.ravel()
    rvec, tvec = cv2.solvePnPRefineLM(object_world[seen][inliers], image_uv[seen][inliers], intrinsics, None, rvec, tvec)
    rotation, _ = cv2.Rodrigues(rvec)
    return object_world @ rotation.T + tvec.ravel()
