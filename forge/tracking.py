"""2D tracking of the 20x20 query grid: pyramidal Lucas-Kanade, frame to frame, with a
forward-backward check. A point that fails is never re-seeded on whatever lies there now, so every
trace follows one surface point; it can only be found again by its own look in the query frame
(`forge.reacquire`, when `LKSettings.reacquire_every` is set). All grids alive at a frame are tracked
in one LK call.

LK cannot follow a point on a textureless surface (a plain wall, a table top, a robot's painted
link): its window has no gradient. Such a point, in this order:
- it follows dense optical flow (OpenCV's DIS, whose variational refinement fills flat regions from
  their edges) when the flow's own forward-backward check passes;
- it stays exactly where it was when the camera stood still in this frame (the points LK follows
  moved by under `STILL_CAMERA_PX`, median), the window around it changed by under `still_diff` grey
  levels, and the flow moved it by under `STILL_FLOW_PX` or failed (a plain wall: flow noise would
  add up to a drift; a plain object moving is moved by the flow, though its window looks unchanged);
- else it is lost.
In a frame where the camera moves, only points LK found no gradient for get this second chance, not
those failing its forward-backward check (more likely occluded).
Measured against the simulator's exact tracks of six SO-101 demo videos, 320x240: LK alone kept 28 %
of the always-visible points to the end and followed the arm's moving points over 31 % of their
visible frames; with both fallbacks 98 % and 73 %, with 15 of ~390 still points ending over 3 px off
(`benchmarks/forge_bench.py --cases sim_tracking`).

Both fallbacks can carry a point off its surface: dense flow bleeds a gripper's motion onto the plain
block beside it, and an LK window that a passing edge enters follows the edge. So a tracked point whose
colour (`COLOUR_PATCH`-sided mean) differs from its colour in the query frame by more than
`LKSettings.colour_drift` grey levels (mean over channels) is lost: it now lies on another surface.
Re-acquisition may find it again by its look. Off by default (see `ForgeConfig.colour_drift`).
`ForgeConfig.plain_objects` compares a point's colour with the frame before instead (a link's shading
changes slowly as it turns; a point sliding off a ball onto the table changes at once) and looks for lost
points on small plain objects again by their colour (`forge.blobs`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from forge.blobs import BlobFinder
from forge.reacquire import FrameDescriptors, Reacquirer, find_again, screen
from store.trace import grid_points

STILL_CAMERA_PX = 0.25  # median LK motion below which the camera counts as still in a frame
STILL_FLOW_PX = 0.5  # dense flow below this, where nothing changed, is noise: the point stays put
DENSE_FLOW_WIDTH = 320  # wider frames are downscaled to this width for the dense-flow fallback
COLOUR_PATCH = 3  # pixels: side of the square whose mean colour a point's colour check compares
COLOUR_NEAR_PX = 1  # ... at the point or at any pixel this close (a track a pixel off a thin link is still on it)
PLAIN_COLOUR_STEP = 25.0  # `ForgeConfig.plain_objects`: grey levels a point's colour may change from one frame to the next
PLAIN_BLOB_TOLERANCE = 22.0  # ... and of a plain object's region (`forge.blobs`)


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
    """Lucas-Kanade settings: window side (px), pyramid levels, forward-backward threshold (px); for the
    points LK loses, the still-window rule's grey-level threshold and the dense-flow fallback's
    forward-backward threshold (px), 0 turning either off (see the module doc); every how many
    frames lost points are looked for again (`forge.reacquire`; 0: never); the colour change from
    the query frame (grey levels) past which a tracked point is lost (0: never); the colour change from
    one frame to the next past which it is lost (0: never); and the colour tolerance (grey levels) of
    the regions lost points on small plain objects are looked for again in (`forge.blobs`; 0: never)."""

    window: int = 11
    levels: int = 3
    fb_threshold: float = 0.5
    still_diff: float = 0.0
    flow_fallback: float = 0.0
    reacquire_every: int = 0
    colour_drift: float = 0.0
    colour_step: float = 0.0
    blob_tolerance: float = 0.0


def query_frames(start: int, end: int, every: int, min_frames: int) -> list[int]:
    """Query frames of a segment [start, end): every `every` frames while `min_frames` remain."""
    return [q for q in range(start, end, every) if end - q >= min_frames]


def track_grids(
    grey: np.ndarray, start: int, queries: list[int], max_frames: int, settings: LKSettings,
    colour: np.ndarray | None = None,
) -> list[GridTracks]:
    """Track a grid from each query frame through `grey[q : q + max_frames]`, within `grey`.

    Args:
        grey: (T, H, W) uint8 frames of one segment; indices are relative to `start`.
        start: decoded index of grey[0] (query indices are decoded indices).
        queries: decoded query frame indices (ascending).
        max_frames: frames per trace including the query frame.
        colour: (T, H, W, 3) uint8 frames matching `grey`, for the colour check and for finding lost points
            again (grey is used when None).
    Returns:
        One `GridTracks` per query frame.
    """
    height, width = grey.shape[1:]
    grid = grid_points(width, height)  # (K, 2)
    ends = [min(q - start + max_frames, len(grey)) for q in queries]
    tracks = [_new_tracks(q, grid, end - (q - start)) for q, end in zip(queries, ends, strict=True)]
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)
    params = {"winSize": (settings.window, settings.window), "maxLevel": settings.levels, "criteria": criteria}
    dense = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) if settings.flow_fallback > 0 else None
    finders: dict[int, Reacquirer] = {}
    blob_finders: dict[int, BlobFinder] = {}
    looks = grey if colour is None else colour
    checks = [_ColourCheck(looks, threshold, follow) for threshold, follow in
              ((settings.colour_drift, False), (settings.colour_step, True)) if threshold > 0]
    for t in range(1, len(grey)):
        live = [(i, tr) for i, tr in enumerate(tracks) if tr.query_frame - start < t < ends[i]]
        if live:
            _step(live, t, start, grey[t - 1], grey[t], params, settings, width, height, dense)
            for check in checks:
                check.drop_drifted(live, t, start)
            if settings.reacquire_every > 0 and t % settings.reacquire_every == 0:
                _reacquire(live, t, start, looks, grid, finders)
                if settings.blob_tolerance > 0:
                    _reacquire_blobs(live, t, start, looks, grid, blob_finders, settings.blob_tolerance)
    return tracks


def _reacquire(live, t, start, colour, grid, finders: dict) -> None:
    """Look for every live grid's lost points in segment frame t (see `forge.reacquire`)."""
    descriptors = None
    for index, track in live:
        local = t - (track.query_frame - start)
        lost = np.flatnonzero(~track.visible[:, local])
        if len(lost) == 0:
            continue
        if index not in finders:
            query = track.query_frame - start
            finders[index] = Reacquirer(colour[query], grid)
        lost = screen(finders[index], lost)  # only points with a unique look: the frame is matched only for them
        if len(lost) == 0:
            continue
        if descriptors is None:
            descriptors = FrameDescriptors(colour[t], finders[index].scale)
        found, positions = find_again(finders[index], lost, descriptors, colour[t])
        track.uv[lost[found], local] = positions[found]
        track.visible[lost[found], local] = True


def _reacquire_blobs(live, t, start, colour, grid, finders: dict, tolerance: float) -> None:
    """Look for every live grid's lost points on small plain objects in segment frame t (see `forge.blobs`)."""
    for index, track in live:
        local = t - (track.query_frame - start)
        if index not in finders:
            finders[index] = BlobFinder(colour[track.query_frame - start], grid, tolerance)
        lost = np.array([p for p in np.flatnonzero(~track.visible[:, local]) if finders[index].blob(int(p)) is not None], dtype=int)
        if len(lost) == 0:
            continue
        found, positions = finders[index].find_again(lost, colour[t])
        track.uv[lost[found], local] = positions[found]
        track.visible[lost[found], local] = True


class _ColourCheck:
    """Loses tracked points whose colour left their query-frame colour, or with `follow` their colour in the
    frame before (see the module doc). The change common to all of a grid's points in a frame (the median:
    exposure, white balance) is taken out first."""

    def __init__(self, frames: np.ndarray, threshold: float, follow: bool = False) -> None:
        self.frames, self.threshold, self.follow = frames, threshold, follow
        self.reference: dict[int, np.ndarray] = {}  # query frame (segment index) -> (K, C) grid colours
        self.cache: tuple[int, np.ndarray] | None = None
        near = np.arange(-COLOUR_NEAR_PX, COLOUR_NEAR_PX + 1)
        self.offsets = np.stack(np.meshgrid(near, near), -1).reshape(-1, 2)  # (M, 2), (0, 0) in the middle

    def _mean_colour(self, t: int, points: np.ndarray) -> np.ndarray:
        """(..., C) float32 mean colour of the `COLOUR_PATCH` square around each (..., 2) point in frame t."""
        if self.cache is None or self.cache[0] != t:
            blurred = cv2.blur(self.frames[t], (COLOUR_PATCH, COLOUR_PATCH)).astype(np.float32)
            self.cache = (t, blurred.reshape(*blurred.shape[:2], -1))
        image = self.cache[1]
        cols = np.clip(np.round(points[..., 0]).astype(int), 0, image.shape[1] - 1)
        rows = np.clip(np.round(points[..., 1]).astype(int), 0, image.shape[0] - 1)
        return image[rows, cols]

    def drop_drifted(self, live, t: int, start: int) -> None:
        for _, track in live:
            query = track.query_frame - start
            if query not in self.reference:
                self.reference[query] = self._mean_colour(query, track.uv[:, 0])
            local = t - query
            seen = np.flatnonzero(track.visible[:, local])
            if len(seen) == 0:
                continue
            reference = self.reference[query][seen]  # (N, C)
            around = self._mean_colour(t, track.uv[seen, local][:, None] + self.offsets)  # (N, M, C)
            shift = np.median(around[:, len(self.offsets) // 2] - reference, axis=0)  # (C,) at the points themselves
            change = np.abs(around - shift - reference[:, None]).mean(-1).min(-1)  # (N,)
            drifted = seen[change > self.threshold]
            track.visible[drifted, local] = False
            track.uv[drifted, local] = np.nan
            if self.follow:  # the kept points' colour now is the one their next frame is compared with
                kept = seen[change <= self.threshold]
                self.reference[query][kept] = self._mean_colour(t, track.uv[kept, local])


def _new_tracks(query: int, grid: np.ndarray, frames: int) -> GridTracks:
    uv = np.full((len(grid), frames, 2), np.nan, dtype=np.float32)
    uv[:, 0] = grid
    visible = np.zeros((len(grid), frames), dtype=bool)
    visible[:, 0] = True
    return GridTracks(query, uv, visible)


def _step(live, t, start, previous, current, params, settings, width, height, dense=None):
    """Advance every live grid from segment frame t-1 to t with one forward and one backward LK call
    (and, for the points LK loses, one forward and one backward dense flow when `dense` is given)."""
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
    inside = _inside(moved, width, height)
    moved = np.clip(moved, 0.0, [width - 1.0, height - 1.0])
    tracked = status_f.ravel().astype(bool) & status_b.ravel().astype(bool)
    good = tracked & (fb_error < settings.fb_threshold) & inside
    origin = stacked.reshape(-1, 2)  # (N, 2)
    camera_still = bool(good.any()) and np.median(np.linalg.norm(moved[good] - origin[good], axis=-1)) < STILL_CAMERA_PX
    candidates = ~good & (~tracked | camera_still)  # with a moving camera, a failed LK check is taken as an occlusion
    if candidates.any() and (dense is not None or (settings.still_diff > 0 and camera_still)):
        lost = np.flatnonzero(candidates)
        rescued, position = _second_chance(origin[lost], previous, current, settings, dense, camera_still, width, height)
        moved[lost[rescued]] = position[rescued]
        good[lost[rescued]] = True
    cursor = 0
    for track, local, alive in owners:
        ok = good[cursor : cursor + len(alive)]
        track.uv[alive[ok], local] = moved[cursor : cursor + len(alive)][ok]
        track.visible[alive[ok], local] = True
        cursor += len(alive)


def _inside(points: np.ndarray, width: int, height: int, margin: float = 0.5) -> np.ndarray:
    """(N,) bool: (N, 2) pixel positions inside the image; grid points sit on the border pixels, so a
    hair (`margin`) outside is still the same point."""
    inside = (points[:, 0] >= -margin) & (points[:, 0] <= width - 1 + margin)
    return inside & (points[:, 1] >= -margin) & (points[:, 1] <= height - 1 + margin)


def _second_chance(points, previous, current, settings: LKSettings, dense, camera_still: bool, width: int, height: int):
    """Points LK lost: (M,) bool rescued and (M, 2) new positions (see the module doc).

    Dense flow moves a point when its forward-backward check passes; a point in a still frame whose
    window did not change stays exactly where it was when the flow barely moves it (a plain wall: the
    flow's small noise would otherwise add up to a drift) or when the flow fails its check.
    """
    position = points.copy()
    rescued = np.zeros(len(points), dtype=bool)
    if dense is not None:
        ahead = points + _dense_flow_at(dense, previous, current, points)
        back = ahead + _dense_flow_at(dense, current, previous, ahead)
        rescued = (np.linalg.norm(back - points, axis=-1) < settings.flow_fallback) & _inside(ahead, width, height)
        position[rescued] = np.clip(ahead[rescued], 0.0, [width - 1.0, height - 1.0])
    if settings.still_diff > 0 and camera_still:
        small = ~rescued | (np.linalg.norm(position - points, axis=-1) < STILL_FLOW_PX)
        still = small & _unchanged(points, previous, current, settings.window, settings.still_diff)
        position[still] = points[still]
        rescued |= still
    return rescued, position


def _unchanged(points: np.ndarray, previous: np.ndarray, current: np.ndarray, window: int, threshold: float) -> np.ndarray:
    """(N,) bool: the `window`-sided square around each (N, 2) point changed by a mean absolute grey
    difference under `threshold` between the two frames."""
    change = cv2.blur(cv2.absdiff(previous, current).astype(np.float32), (window, window))
    cols = np.clip(np.round(points[:, 0]).astype(int), 0, change.shape[1] - 1)
    rows = np.clip(np.round(points[:, 1]).astype(int), 0, change.shape[0] - 1)
    return change[rows, cols] < threshold


def _dense_flow_at(dense, first: np.ndarray, second: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 2) dense flow first -> second at (N, 2) pixel positions (bilinear), in full-size pixels.

    Frames wider than `DENSE_FLOW_WIDTH` are downscaled for the flow (4x cheaper at 640x480): the
    fallback serves plain regions, where the flow is smooth anyway.
    """
    scale = min(1.0, DENSE_FLOW_WIDTH / first.shape[1])
    if scale < 1.0:
        size = (round(first.shape[1] * scale), round(first.shape[0] * scale))
        first = cv2.resize(first, size, interpolation=cv2.INTER_AREA)
        second = cv2.resize(second, size, interpolation=cv2.INTER_AREA)
    flow = dense.calc(first, second, None)  # (h, w, 2)
    xs = np.ascontiguousarray((points[:, 0] + 0.5) * scale - 0.5, dtype=np.float32).reshape(-1, 1)
    ys = np.ascontiguousarray((points[:, 1] + 0.5) * scale - 0.5, dtype=np.float32).reshape(-1, 1)
    sampled = cv2.remap(flow, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(-1, 2)
    return sampled / scale
