"""Bundle adjustment of every frame's pose on the dense grid tracks.

pycolmap reconstructs a few keyframes from SIFT; the grid tracks (400 points per query frame, sub-pixel
LK) then fix every frame: static tracks are triangulated, and poses and points are refined together
by robust (Huber) least squares with a sparse Jacobian. Moving points are the tracks that a fixed
world point cannot explain.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import lil_matrix
from scipy.spatial.transform import Rotation

from forge.lift import static_threshold, triangulate_tracks
from forge.tracking import GridTracks

log = logging.getLogger(__name__)

STATIC_RESIDUAL_PX = 3.0  # a triangulated track this close to its observations seeds the adjustment
MIN_PARALLAX_DEG = 1.0
MIN_OBSERVATIONS = 8
MAX_POINTS = 250  # tracks entering the adjustment (a seeded random subset): keeps it to seconds


@dataclass
class Observations:
    """Flattened 2D observations of static points: frame, point and pixel of each."""

    frame: np.ndarray  # (N,) int
    point: np.ndarray  # (N,) int
    uv: np.ndarray  # (N, 2) pixels


def collect_static(tracks: list[GridTracks], start: int, poses: np.ndarray, intrinsics: np.ndarray):
    """Triangulate every track with the current poses; keep those a fixed point explains.

    Returns:
        points (P, 3) world, and their `Observations` in segment frame indices.
    """
    points, frames, owners, pixels = [], [], [], []
    for track in tracks:
        offset = track.query_frame - start
        window = poses[offset : offset + track.num_frames]
        xyz, residual, parallax = triangulate_tracks(track.uv.astype(np.float64), track.visible, window, intrinsics)
        keep = (residual < min(STATIC_RESIDUAL_PX, static_threshold(residual))) & (parallax >= MIN_PARALLAX_DEG)
        keep &= track.visible.sum(1) >= MIN_OBSERVATIONS
        for k in np.flatnonzero(keep):
            seen = np.flatnonzero(track.visible[k])
            frames.append(seen + offset)
            owners.append(np.full(len(seen), len(points)))
            pixels.append(track.uv[k, seen].astype(np.float64))
            points.append(xyz[k])
    if not points:
        return np.zeros((0, 3)), Observations(np.zeros(0, int), np.zeros(0, int), np.zeros((0, 2)))
    return np.asarray(points), Observations(np.concatenate(frames), np.concatenate(owners), np.concatenate(pixels))


def adjust(poses: np.ndarray, points: np.ndarray, obs: Observations, intrinsics: np.ndarray,
           max_evaluations: int = 60) -> tuple[np.ndarray, np.ndarray, float]:
    """Refine poses (frame 0 held fixed) and points by Huber least squares on reprojection error.

    Args:
        poses: (F, 4, 4) world-to-camera, points: (P, 3), obs: observations, intrinsics: (3, 3).
    Returns:
        poses (F, 4, 4), points (P, 3), and the final RMS reprojection error in pixels.
    """
    num_frames, num_points = len(poses), len(points)
    pose_params = np.concatenate([Rotation.from_matrix(poses[1:, :3, :3]).as_rotvec(), poses[1:, :3, 3]], 1)  # (F-1, 6)
    start = np.concatenate([pose_params.ravel(), points.ravel()])
    fixed = poses[0]
    fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]

    def residuals(params: np.ndarray) -> np.ndarray:
        frame_params = params[: 6 * (num_frames - 1)].reshape(-1, 6)
        xyz = params[6 * (num_frames - 1) :].reshape(-1, 3)
        rotations = np.concatenate([fixed[None, :3, :3], Rotation.from_rotvec(frame_params[:, :3]).as_matrix()])
        translations = np.concatenate([fixed[None, :3, 3], frame_params[:, 3:]])
        cam = np.einsum("nij,nj->ni", rotations[obs.frame], xyz[obs.point]) + translations[obs.frame]  # (N, 3)
        z = np.where(np.abs(cam[:, 2]) < 1e-9, 1e-9, cam[:, 2])
        u, v = fx * cam[:, 0] / z + cx, fy * cam[:, 1] / z + cy
        return np.stack([u - obs.uv[:, 0], v - obs.uv[:, 1]], 1).ravel()  # (2N,)

    sparsity = _sparsity(obs, num_frames, num_points)
    result = least_squares(residuals, start, jac_sparsity=sparsity, loss="huber", f_scale=1.0, x_scale="jac",
                           method="trf", max_nfev=max_evaluations, xtol=1e-8, ftol=1e-8)
    frame_params = result.x[: 6 * (num_frames - 1)].reshape(-1, 6)
    refined = poses.copy()
    refined[1:, :3, :3] = Rotation.from_rotvec(frame_params[:, :3]).as_matrix()
    refined[1:, :3, 3] = frame_params[:, 3:]
    rms = float(np.sqrt(np.mean(result.fun**2))) if len(result.fun) else 0.0
    return refined, result.x[6 * (num_frames - 1) :].reshape(-1, 3), rms


def _sparsity(obs: Observations, num_frames: int, num_points: int):
    count = len(obs.frame)
    sparsity = lil_matrix((2 * count, 6 * (num_frames - 1) + 3 * num_points), dtype=np.uint8)
    rows = np.arange(count)
    moving_frame = obs.frame > 0
    for axis in range(6):
        column = 6 * (obs.frame[moving_frame] - 1) + axis
        sparsity[2 * rows[moving_frame], column] = 1
        sparsity[2 * rows[moving_frame] + 1, column] = 1
    for axis in range(3):
        column = 6 * (num_frames - 1) + 3 * obs.point + axis
        sparsity[2 * rows, column] = 1
        sparsity[2 * rows + 1, column] = 1
    return sparsity


def refine_poses(tracks: list[GridTracks], start: int, poses: np.ndarray, intrinsics: np.ndarray,
                 rounds: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Alternate static-track selection and bundle adjustment.

    Returns:
        poses (F, 4, 4) and every static world point (P, 3) triangulated with the final poses.
    """
    for round_index in range(rounds):
        points, obs = collect_static(tracks, start, poses, intrinsics)
        if len(points) < 20:
            log.debug("bundle adjustment skipped: %d static tracks", len(points))
            break
        chosen, chosen_obs = _subset(points, obs, seed)
        poses, _, rms = adjust(poses, chosen, chosen_obs, intrinsics)
        log.debug("bundle round %d: %d points, %d observations, rms %.3f px", round_index, len(chosen),
                  len(chosen_obs.frame), rms)
    points, _ = collect_static(tracks, start, poses, intrinsics)
    return poses, points


def _subset(points: np.ndarray, obs: Observations, seed: int) -> tuple[np.ndarray, Observations]:
    """At most MAX_POINTS points and their observations, renumbered."""
    if len(points) <= MAX_POINTS:
        return points, obs
    chosen = np.sort(np.random.default_rng(seed).choice(len(points), MAX_POINTS, replace=False))
    renumber = np.full(len(points), -1)
    renumber[chosen] = np.arange(len(chosen))
    keep = renumber[obs.point] >= 0
    return points[chosen], Observations(obs.frame[keep], renumber[obs.point[keep]], obs.uv[keep])
