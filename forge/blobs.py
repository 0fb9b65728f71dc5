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
    colour: np.ndarray  # (C,) float32 the point's blurred colour in the query frame
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
            colour = self.image[v, u].astype(np.float32)
            labels, stats, centroids = _regions(self.image, colour, self.tolerance)
            label = labels[v, u]
            x, y, w, h, area = stats[label]
            inside = x > 0 and y > 0 and x + w < width and y + h < height
            self.blobs[point] = (Blob(colour, int(area), np.array([u, v], np.float32) - centroids[label])
                                 if label and MIN_AREA <= area <= MAX_SHARE * width * height and inside else None)
        return self.blobs[point]

    def find_again(self, points: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(M,) bool found and (M, 2) positions in `frame` (H, W[, 3] uint8) of the lost grid `points` (M,)."""
        image = cv2.blur(frame, (3, 3))
        found = np.zeros(len(points), dtype=bool)
        positions = np.full((len(points), 2), np.nan, dtype=np.float32)
        for row, point in enumerate(points):
            blob = self.blob(int(point))
            if blob is None:
                continue
            labels, stats, centroids = _regions(image, blob.colour, self.tolerance)
            areas = stats[1:, cv2.CC_STAT_AREA]
            sized = np.flatnonzero((areas >= AREA_RANGE[0] * blob.area) & (areas <= AREA_RANGE[1] * blob.area)) + 1
            if len(sized) != 1:
                continue
            position = centroids[sized[0]] + blob.offset
            rows, cols = np.nonzero(labels == sized[0])
            nearest = np.argmin((cols - position[0]) ** 2 + (rows - position[1]) ** 2)
            if np.hypot(cols[nearest] - position[0], rows[nearest] - position[1]) > SNAP_PX:
                position = np.array([cols[nearest], rows[nearest]], dtype=np.float64)
            found[row], positions[row] = True, position
        return found, positions


def _regions(image: np.ndarray, colour: np.ndarray, tolerance: float):
    """Labels (H, W), stats (N, 5) and centroids (N, 2) of the 4-connected regions of pixels within
    `tolerance` of `colour` (label 0: the rest)."""
    low, high = np.clip(colour - tolerance, 0, 255), np.clip(colour + tolerance, 0, 255)
    inside = cv2.inRange(image, low, high)
    _, labels, stats, centroids = cv2.connectedComponentsWithStats(inside, connectivity=4)
    return labels, stats, centroids
