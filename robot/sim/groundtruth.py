"""Exact ground truth for the 20x20 query grid: which surface point each grid pixel sees at frame 0,
and where that body-fixed point is in every later frame.

At frame 0 a ray through each grid pixel (`store.trace.grid_points`) hits a geom; the hit is stored in
the geom's body frame. Later frames move it with the body. A point is visible at frame t when it
projects inside frame t's image, in front of the camera, and a ray from frame t's camera reaches it
first (no other surface within `OCCLUSION_TOLERANCE`).
"""

from __future__ import annotations

import numpy as np

from store.trace import grid_points

OCCLUSION_TOLERANCE = 0.002  # metres
VISIBLE_GROUPS = np.array([1, 1, 1, 0, 0, 0], dtype=np.uint8)  # the geom groups the renderer draws


def pixel_rays(points_uv: np.ndarray, intrinsics: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Unit world directions (N, 3) of the rays through pixels `points_uv` (N, 2)."""
    fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
    local = np.stack([(points_uv[:, 0] - cx) / fx, (points_uv[:, 1] - cy) / fy, np.ones(len(points_uv))], axis=-1)
    world = local @ rotation.T  # (N, 3)
    return world / np.linalg.norm(world, axis=-1, keepdims=True)


def cast_rays(model, data, origin: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hit geom ids (N,) int32 (-1 for none) and distances (N,) metres (inf for none)."""
    import mujoco

    count = len(directions)
    geom = np.full(count, -1, dtype=np.int32)
    dist = np.full(count, -1.0)
    mujoco.mj_multiRay(model, data, np.asarray(origin, float), np.ascontiguousarray(directions, float).ravel(),
                       VISIBLE_GROUPS, 1, -1, geom, dist, None, count, 100.0)
    dist = np.where(geom >= 0, dist, np.inf)
    return geom, dist


class GridTracker:
    """Body-fixed surface points under the grid at frame 0, followed through later frames."""

    def __init__(self, model, data, intrinsics: np.ndarray, rotation: np.ndarray, position: np.ndarray,
                 width: int, height: int):
        self.model = model
        self.intrinsics = intrinsics
        self.width, self.height = width, height
        directions = pixel_rays(grid_points(width, height).astype(np.float64), intrinsics, rotation)
        self.geom, dist = cast_rays(model, data, position, directions)
        hit = self.geom >= 0
        self.body = np.where(hit, model.geom_bodyid[np.maximum(self.geom, 0)], 0)
        points = position + directions * np.where(hit, dist, 0.0)[:, None]  # (K, 3)
        body_pos, body_rot = data.xpos[self.body], data.xmat[self.body].reshape(-1, 3, 3)
        self.local = np.einsum("kji,kj->ki", body_rot, points - body_pos)  # (K, 3) in the body frame
        self.local[~hit] = np.nan

    def world_points(self, data) -> np.ndarray:
        """(K, 3) world positions of the tracked points now (NaN where frame 0 saw nothing)."""
        rot = data.xmat[self.body].reshape(-1, 3, 3)
        return np.einsum("kij,kj->ki", rot, self.local) + data.xpos[self.body]

    def visible(self, data, world: np.ndarray, rotation: np.ndarray, position: np.ndarray) -> np.ndarray:
        """(K,) bool: in view of the camera (`rotation`, `position`) and not occluded."""
        camera = (world - position) @ rotation  # (K, 3) camera frame
        ok = np.isfinite(camera).all(axis=1) & (camera[:, 2] > 1e-3)
        z = np.where(ok, camera[:, 2], 1.0)
        u = self.intrinsics[0, 0] * camera[:, 0] / z + self.intrinsics[0, 2]
        v = self.intrinsics[1, 1] * camera[:, 1] / z + self.intrinsics[1, 2]
        ok &= (u >= -0.5) & (u <= self.width - 0.5) & (v >= -0.5) & (v <= self.height - 0.5)
        offset = np.where(ok[:, None], world - position, [[0.0, 0.0, 1.0]])
        distance = np.linalg.norm(offset, axis=1)
        _, hit = cast_rays(self.model, data, position, offset / distance[:, None])
        return ok & (hit >= distance - OCCLUSION_TOLERANCE)
