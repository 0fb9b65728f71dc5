"""Finding points on small plain-coloured objects again by their colour.

A ball or block of one plain colour gives Lucas-Kanade nothing to follow, and `forge.reacquire`'s
templates miss it once its shading changes (it turns, or a gripper's shadow falls on it). Its colour
stays. In the query frame, a grid point's blob is the 4-connected region of pixels within `tolerance`
grey levels (each channel, after a 3x3 blur) of the point's colour that holds it, when that region is an
object's size (`MIN_AREA` pixels to `MAX_SHARE` of the image) and does not touch the border (a wall or a
table is no blob). A lost blob point is looked for in a later frame among the regions of its colour: when
exactly one has 0.4-2.5x its area, the point goes where it sat in that region (the region's centroid plus
the point's offset from its centroid in the query frame). Two regions of that colour and size (two such
objects, or the object and a look-alike) place nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MIN_AREA = 20  # pixels: smaller regions are specks of texture
MAX_SHARE = 0.02  # of the image: larger regions are surfaces, not objects
AREA_RANGE = (0.4, 2.5)  # a region found again has this share of the query frame's area (occlusion, distance)
SNAP_PX = 2.0  # a position further than this outside its region is moved to the region's nearest pixel


@dataclass(frozen=True)
class Blob:
    colour: np.ndarray  # (C,) float32 the point's blurred colour in the query frame (C = 1: grey)
    area: int  # pixels of its region there
    offset: np.ndarray  # (2,) the point minus its region's centroid, pixels


class BlobFinder:
    """The blobs of one grid's points, from its query frame.

    Args:
        query_colour: (H, W, 3) colour (or (H, W) grey) uint8 query frame.
        grid: (K, 2) float pixel positions of the grid in the query frame.
        tolerance: grey levels per channel a pixel may differ from the point's colour and be of its region.
    """

    def __init__(self, query_colour: np.ndarray, grid: np.ndarray, tolerance: float) -> None:
        self.tolerance = tolerance
        self.image = cv2.blur(query_colour, (3, 3))
        height, width = self.image.shape[:2]
        self.pixels = np.clip(np.round(grid), 0, [width - 1, height - 1]).astype(int)  # (K, 2)
        self.blobs: dict[int, Blob | None] = {}  # filled as points are lost: most never are

    def blob(self, point: int) -> Blob | None:
        """The blob of grid point `point` in the query frame, or None when its region is no object's."""
        if point not in self.blobs:
            u, v = self.pixels[point]
            height, width = self.image.shape[:2]
            area, (x, y, w, h), region = _region_at(self.image, int(u), int(v), self.tolerance)
            inside = x > 0 and y > 0 and x + w < width and y + h < height
            if MIN_AREA <= area <= MAX_SHARE * width * height and inside:
                rows, cols = np.nonzero(region)
                centroid = np.array([x + cols.mean(), y + rows.mean()])
                self.blobs[point] = Blob(np.atleast_1d(self.image[v, u]).astype(np.float32), int(area),
                                         np.array([u, v], np.float32) - centroid)
            else:
                self.blobs[point] = None
        return self.blobs[point]

    def find_again(self, points: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(M,) bool found and (M, 2) positions in `frame` (H, W[, 3] uint8) of the lost grid `points` (M,)."""
        image = cv2.blur(frame, (3, 3))
        found = np.zeros(len(points), dtype=bool)
        positions = np.full((len(points), 2), np.nan, dtype=np.float32)
        regions: dict[bytes, tuple] = {}  # points of one plain object often share a colour
        for row, point in enumerate(points):
            blob = self.blob(int(point))
            if blob is None:
                continue
            key = blob.colour.tobytes()
            if key not in regions:
                regions[key] = _regions(image, blob.colour, self.tolerance)
            labels, stats, centroids = regions[key]
            areas = stats[1:, cv2.CC_STAT_AREA]
            sized = np.flatnonzero((areas >= AREA_RANGE[0] * blob.area) & (areas <= AREA_RANGE[1] * blob.area)) + 1
            if len(sized) != 1:
                continue
            position = centroids[sized[0]] + blob.offset
            x, y, w, h = stats[sized[0], :4]
            rows, cols = np.nonzero(labels[y:y + h, x:x + w] == sized[0])
            rows, cols = rows + y, cols + x
            nearest = np.argmin((cols - position[0]) ** 2 + (rows - position[1]) ** 2)
            if np.hypot(cols[nearest] - position[0], rows[nearest] - position[1]) > SNAP_PX:
                position = np.array([cols[nearest], rows[nearest]], dtype=np.float64)
            found[row], positions[row] = True, position
        return found, positions


def _regions(image: np.ndarray, colour: np.ndarray, tolerance: float):
    """Labels (H, W), stats (N, 5) and centroids (N, 2) of the 4-connected regions of pixels within
    `tolerance` of `colour` (label 0: the rest)."""
    colour = np.atleast_1d(colour)  # a grey pixel is one channel
    low, high = np.clip(colour - tolerance, 0, 255), np.clip(colour + tolerance, 0, 255)
    inside = cv2.inRange(image, low, high)
    _, labels, stats, centroids = cv2.connectedComponentsWithStats(inside, connectivity=4)
    return labels, stats, centroids


def _region_at(image: np.ndarray, u: int, v: int, tolerance: float) -> tuple[int, tuple[int, int, int, int], np.ndarray]:
    """Area, bounding box (x, y, w, h) and (h, w) mask within that box of the 4-connected region of pixels
    within `tolerance` of pixel (u, v)'s colour that holds it: `_regions`' region there, by one flood fill."""
    height, width = image.shape[:2]
    mask = np.zeros((height + 2, width + 2), np.uint8)
    flags = 4 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (1 << 8)
    diff = (tolerance,) * 3
    area, _, _, (x, y, w, h) = cv2.floodFill(image, mask, (u, v), 0, diff, diff, flags)
    return int(area), (x, y, w, h), mask[1 + y:1 + y + h, 1 + x:1 + x + w]
