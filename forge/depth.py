"""Sensor depth: `<name>.depth.npz` (key `depth`, (T, H, W) metres) or a `<name>.depth/` folder of 16-bit
PNGs in declared units; 0 or NaN means unknown. Depth is resampled to the decoded frames' size."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from forge.errors import DepthError
from forge.inputs import IMAGE_SUFFIXES


def load_sensor_depth(path: Path | np.ndarray, units: float, frame_ids: np.ndarray, source_frames: int,
                      source_size: tuple[int, int], decoded_size: tuple[int, int]) -> np.ndarray:
    """Depth of the kept frames in metres, at the decoded size.

    Args:
        path: `.depth.npz` file, `.depth/` folder, or a (T, H, W) array in metres.
        units: metres per PNG unit (ignored for npz, which is metres).
        frame_ids: (T,) source index of each kept frame.
        source_frames: frames in the source video.
        source_size, decoded_size: (H, W) of the source and decoded frames.
    Returns:
        (T, h, w) float32, NaN where unknown.
    Raises:
        DepthError: unreadable depth, or a frame count or shape that does not match the video.
    """
    if isinstance(path, np.ndarray):  # depth carried inside a tracker .npz source
        if path.ndim != 3:
            raise DepthError(f"depth array has shape {path.shape}; expected (T, H, W)")
        _check_count(Path("depths"), len(path), source_frames)
        depth = path[frame_ids].astype(np.float32)
        path = Path("depths")
    elif path.is_dir():
        depth = _png_depth(path, units, frame_ids, source_frames)
    else:
        depth = _npz_depth(path, frame_ids, source_frames)
    height, width = depth.shape[1:]
    if (height, width) != tuple(source_size):
        source_aspect, depth_aspect = source_size[1] / source_size[0], width / height
        if abs(source_aspect - depth_aspect) > 0.01 * source_aspect:
            raise DepthError(
                f"{path}: depth frames are {width}x{height} but the video is {source_size[1]}x{source_size[0]}; "
                "write depth at the video's size (or its aspect ratio)"
            )
    depth = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan).astype(np.float32)
    if depth.shape[1:] != tuple(decoded_size):
        dsize = (decoded_size[1], decoded_size[0])
        depth = np.stack([cv2.resize(d, dsize, interpolation=cv2.INTER_NEAREST) for d in depth])
    return depth


def _npz_depth(path: Path, frame_ids: np.ndarray, source_frames: int) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as data:
            if "depth" not in data:
                raise DepthError(f"{path}: no 'depth' array (keys: {', '.join(data.files)}); save it under key 'depth'")
            depth = data["depth"]
    except (OSError, ValueError) as exc:
        raise DepthError(f"{path}: not a readable .npz ({exc}); re-save it with numpy.savez") from exc
    if depth.ndim != 3:
        raise DepthError(f"{path}: depth has shape {depth.shape}; expected (T, H, W)")
    _check_count(path, len(depth), source_frames)
    return depth[frame_ids].astype(np.float32)


def _png_depth(path: Path, units: float, frame_ids: np.ndarray, source_frames: int) -> np.ndarray:
    names = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    _check_count(path, len(names), source_frames)
    frames = []
    for index in frame_ids:
        image = cv2.imread(str(names[index]), cv2.IMREAD_UNCHANGED)
        if image is None or image.ndim != 2:
            raise DepthError(f"{names[index]}: not a single-channel depth PNG; write 16-bit grey PNGs")
        frames.append(image.astype(np.float32) * units)
    if len({f.shape for f in frames}) > 1:
        raise DepthError(f"{path}: depth PNGs differ in size; write every frame at the video's size")
    return np.stack(frames)


def _check_count(path: Path, count: int, source_frames: int) -> None:
    if count != source_frames:
        raise DepthError(
            f"{path}: {count} depth frames for a video of {source_frames} frames; write one depth frame per video frame"
        )


def sample_depth(depth: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Depth at sub-pixel positions: the nearest pixel (never blends across an object's edge).

    Args:
        depth: (H, W) metres, NaN unknown.
        uv: (N, 2) pixels, NaN allowed.
    Returns:
        (N,) metres, NaN where unknown or outside.
    """
    out = np.full(len(uv), np.nan, dtype=np.float64)
    finite = np.isfinite(uv).all(-1)
    cols = np.round(uv[finite, 0]).astype(int)
    rows = np.round(uv[finite, 1]).astype(int)
    inside = (cols >= 0) & (cols < depth.shape[1]) & (rows >= 0) & (rows < depth.shape[0])
    values = np.full(len(cols), np.nan)
    values[inside] = depth[rows[inside], cols[inside]]
    out[finite] = values
    return out
