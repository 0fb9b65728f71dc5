"""2D tracking of the 20x20 query grid: pyramidal Lucas-Kanade, frame to frame, with a
forward-backward check. A point that fails once is lost for good (never re-seeded), so every trace
follows one surface point. All grids alive at a frame are tracked in one LK call.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from store.trace import grid_points


@dataclass
class GridTracks:
    """The grid laid on one query frame, followed through the next frames.

    Attributes:
        query_frame: index of the query frame in the decoded frames.
        uv: (K, F, 2) float32 pixels per frame (NaN once lost); uv[:, 0] is the grid.
        visible: (K, F) bool, tracked and inside the image.
    """

    query_frame: int
    uv: np.ndarray
    visible: np.ndarray

    @property
    def num_frames(self) -> int:
        return self.uv.shape[1]


@dataclass(frozen=True)
class LKSettings:
    """Lucas-Kanade settings: window side (px), pyramid levels, forward-backward threshold (px)."""

    window: int = 11
    levels: int = 3
    fb_threshold: float = 0.5


def query_frames(start: int, end: int, every: int, min_frames: int) -> list[int]:
    """Query frames of a segment [start, end): every `every` frames while `min_frames` remain."""
    return [q for q in range(start, end, every) if end - q >= min_frames]


def track_grids(
    grey: np.ndarray, start: int, queries: list[int], max_frames: int, settings: LKSettings
) -> list[GridTracks]:
    """Track a grid from each query frame through `grey[q : q + max_frames]`, within `grey`.

    Args:
        grey: (T, H, W) uint8 frames of one segment; indices are relative to `start`.
        start: decoded index of grey[0] (query indices are decoded indices).
        queries: decoded query frame indices (ascending).
        max_frames: frames per trace including the query frame.
    Returns:
        One `GridTracks` per query frame.
    """
    height, width = grey.shape[1:]
    grid = grid_points(width, height)  # (K, 2)
    ends = [min(q - start + max_frames, len(grey)) for q in queries]
    tracks = [_new_tracks(q, grid, end - (q - start)) for q, end in zip(queries, ends, strict=True)]
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)
    params = {"winSize": (settings.window, settings.window), "maxLevel": settings.levels, "criteria": criteria}
    for t in range(1, len(grey)):
        live = [(i, tr) for i, tr in enumerate(tracks) if tr.query_frame - start < t < ends[i]]
        if live:
            _step(live, t, start, grey[t - 1], grey[t], params, settings, width, height)
    return tracks


def _new_tracks(query: int, grid: np.ndarray, frames: int) -> GridTracks:
    uv = np.full((len(grid), frames, 2), np.nan, dtype=np.float32)
    uv[:, 0] = grid
    visible = np.zeros((len(grid), frames), dtype=bool)
    visible[:, 0] = True
    return GridTracks(query, uv, visible)


def _step(live, t, start, previous, current, params, settings, width, height):
    """Advance every live grid from segment frame t-1 to t with one forward and one backward LK call."""
    points, owners = [], []
    for _, track in live:
        local = t - (track.query_frame - start)  # column of `track` for segment frame t
        alive = np.flatnonzero(track.visible[:, local - 1])
        points.append(track.uv[alive, local - 1])
        owners.append((track, local, alive))
    stacked = np.concatenate(points).reshape(-1, 1, 2).astype(np.float32)  # (N, 1, 2)
    if len(stacked) == 0:
        return
    forward, status_f, _ = cv2.calcOpticalFlowPyrLK(previous, current, stacked, None, **params)
    backward, status_b, _ = cv2.calcOpticalFlowPyrLK(current, previous, forward, None, **params)
    fb_error = np.linalg.norm((backward - stacked).reshape(-1, 2), axis=-1)  # (N,)
    moved = forward.reshape(-1, 2)  # (N, 2)
    margin = 0.5  # grid points sit on the border pixels; a hair outside is still the same point
    inside = (moved[:, 0] >= -margin) & (moved[:, 0] <= width - 1 + margin)
    inside &= (moved[:, 1] >= -margin) & (moved[:, 1] <= height - 1 + margin)
    moved = np.clip(moved, 0.0, [width - 1.0, height - 1.0])
    tracked = status_f.ravel().astype(bool) & status_b.ravel().astype(bool)
    good = tracked & (fb_error < settings.fb_threshold) & inside
    cursor = 0
    for track, local, alive in owners:
        ok = good[cursor : cursor + len(alive)]
        track.uv[alive[ok], local] = moved[cursor : cursor + len(alive)][ok]
        track.visible[alive[ok], local] = True
        cursor += len(alive)

