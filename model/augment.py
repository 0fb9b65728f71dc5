"""Training augmentations that keep the image and the trace consistent.

All functions are pure functions of numpy arrays (OpenCV applies the colour map): they take an image
(H, W, 3) float32 in [0, 1], an optional depth (H, W), the trace `traj` (K, L, 3) in pixels of that image,
and return the transformed versions.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from store.trace import GRID_SIZE


@dataclass(frozen=True)
class CropBox:
    """A crop window in pixels: columns [x0, x0 + width), rows [y0, y0 + height)."""

    x0: int
    y0: int
    width: int
    height: int


def color_jitter(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Random brightness, contrast and saturation factors in [1 - strength, 1 + strength].

    Brightness scales every value, contrast moves them towards or away from the image's mean, saturation
    towards or away from each pixel's grey (its channels' mean). The three compose into one affine colour
    map, applied in a single pass (`cv2.transform`):

        out = s c b x + c b (1 - s) grey(x) + (1 - c) b mean(x),

    the same as applying them one after another up to float rounding, about 6x faster on a 320x240 image
    (it was most of a training sample's preparation).

    Args:
        image: (H, W, 3) float32 in [0, 1].
    Returns:
        (H, W, 3) float32 in [0, 1]; pixel positions are unchanged, so the trace is too.
    """
    brightness, contrast, saturation = rng.uniform(1.0 - strength, 1.0 + strength, size=3)
    keep = saturation * contrast * brightness  # weight of the pixel's own value
    grey = contrast * brightness * (1.0 - saturation) / 3.0  # weight of each channel in the pixel's grey
    offset = (1.0 - contrast) * brightness * float(np.mean(cv2.mean(image)[:3]))  # the contrast's pivot
    matrix = np.full((3, 4), grey)
    matrix[:, :3] += keep * np.eye(3)
    matrix[:, 3] = offset
    out = cv2.transform(np.ascontiguousarray(image, dtype=np.float32), matrix)
    return np.clip(out, 0.0, 1.0, out=out)


def random_crop_box(width: int, height: int, rng: np.random.Generator, min_scale: float) -> CropBox:
    """A window keeping a random fraction in [min_scale, 1] of each side, at a random place."""
    scale = rng.uniform(min_scale, 1.0)
    crop_w, crop_h = max(2, round(width * scale)), max(2, round(height * scale))
    return CropBox(int(rng.integers(0, width - crop_w + 1)), int(rng.integers(0, height - crop_h + 1)), crop_w, crop_h)


def crop(image, depth, traj, intrinsics, box: CropBox):
    """Cut `box` out of the image (and depth); trace pixels and the principal point shift with it.

    Points may fall outside the crop; they keep their (now out-of-image) coordinates.

    Returns:
        image (h, w, 3), depth (h, w) or None, traj (K, L, 3), intrinsics (3, 3).
    """
    rows, cols = slice(box.y0, box.y0 + box.height), slice(box.x0, box.x0 + box.width)
    traj = traj.copy()
    traj[..., 0] -= box.x0
    traj[..., 1] -= box.y0
    intrinsics = intrinsics.copy()
    intrinsics[0, 2] -= box.x0
    intrinsics[1, 2] -= box.y0
    return image[rows, cols], None if depth is None else depth[rows, cols], traj, intrinsics


MIRRORED_WORDS = {"left": "right", "right": "left", "leftwards": "rightwards", "rightwards": "leftwards",
                  "leftward": "rightward", "rightward": "leftward"}


def mirror_instruction(text: str) -> str:
    """The instruction of the mirrored scene: "left" and "right" (and -ward(s) forms) swap, case kept."""
    import re

    def swap(match: re.Match) -> str:
        word = match.group(0)
        mirrored = MIRRORED_WORDS[word.lower()]
        return mirrored.capitalize() if word[0].isupper() else mirrored

    return re.sub(r"\b(?:left|right)(?:wards?)?\b", swap, text, flags=re.IGNORECASE)


def flip_horizontal(image, depth, traj, visible, intrinsics):
    """Mirror left-right: `u -> W - 1 - u`, and grid columns swap so index = row * 20 + col still holds.

    Args:
        traj: (K, L, 3) with K = 400 points in row-major grid order.
        visible: (K, L) bool.
    Returns:
        image, depth, traj, visible, intrinsics, all mirrored.
    """
    width = image.shape[1]
    order = np.arange(GRID_SIZE * GRID_SIZE).reshape(GRID_SIZE, GRID_SIZE)[:, ::-1].ravel()
    traj = traj[order].copy()
    traj[..., 0] = (width - 1) - traj[..., 0]
    intrinsics = intrinsics.copy()
    intrinsics[0, 2] = (width - 1) - intrinsics[0, 2]
    mirrored_depth = None if depth is None else depth[:, ::-1]
    return image[:, ::-1], mirrored_depth, traj, visible[order], intrinsics
