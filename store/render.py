"""Drawing a sample's traces on its reference image (the picture `tracegen inspect --render` writes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from store.errors import StoreError
from store.samples import VideoSamples

MIN_PANEL_WIDTH = 512  # small reference frames are upscaled so the lines stay readable


def _colour_lut(colormap: int) -> np.ndarray:
    import cv2

    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    return cv2.applyColorMap(ramp, colormap)[:, 0, :]  # (256, 3) BGR


def _draw_panel(image_bgr: np.ndarray, traj: np.ndarray, seen: np.ndarray, values: np.ndarray, lut: np.ndarray, scale: float) -> np.ndarray:
    """Segments of every point coloured by `values` (0..1) through `lut`; start dots in white.

    Args:
        traj: (K, n, 3) trace in reference pixels; seen: (K, n) bool.
        values: (n-1,) per step or (K, n-1) per segment, in [0, 1]; NaN skips the segment.
    """
    import cv2

    panel = image_bgr.copy()
    points = traj[..., :2] * scale  # (K, n, 2) panel pixels
    start, end = points[:, :-1], points[:, 1:]  # (K, n-1, 2)
    values = np.broadcast_to(values, start.shape[:2])  # (K, n-1)
    drawable = seen[:, :-1] & seen[:, 1:] & np.isfinite(start).all(-1) & np.isfinite(end).all(-1) & np.isfinite(values)
    level = np.zeros(values.shape, dtype=np.int64)
    level[drawable] = np.round(np.clip(values[drawable], 0, 1) * 255).astype(np.int64)
    segments = np.stack([start, end], axis=2)  # (K, n-1, 2, 2)
    for colour_index in np.unique(level[drawable]):
        chosen = drawable & (level == colour_index)
        lines = np.round(segments[chosen]).astype(np.int32)  # (m, 2, 2)
        colour = tuple(int(c) for c in lut[colour_index])
        cv2.polylines(panel, list(lines), False, colour, 1, cv2.LINE_AA)
    for point, visible in zip(points[:, 0], seen[:, 0], strict=True):
        if visible and np.isfinite(point).all():
            cv2.circle(panel, tuple(np.round(point).astype(int)), 2, (255, 255, 255), -1, cv2.LINE_AA)
    return panel


def render_sample(samples: VideoSamples, index: int, out_path: str | Path) -> Path:
    """Draw sample `index`'s traces on its reference image and write a PNG.

    The left panel colours each segment by time (early = dark blue, late = yellow, viridis); when the
    trace has depth a right panel colours it by z (near = red, far = blue, turbo over the sample's
    z range). Points visible at the start get white dots; only valid steps where a point is visible are drawn.

    Returns:
        The PNG path.
    """
    import cv2

    if not 0 <= index < samples.num_samples:
        raise StoreError(f"sample {index} does not exist; this video has samples 0..{samples.num_samples - 1}")
    steps = int(samples.valid[index].sum())
    traj = samples.traces[index, :, :steps].astype(np.float64)  # (K, n, 3)
    seen = samples.visible[index, :, :steps]  # (K, n)
    height, width = samples.image_size
    scale = max(1.0, MIN_PANEL_WIDTH / width)
    size = (int(round(width * scale)), int(round(height * scale)))
    base = cv2.resize(np.ascontiguousarray(samples.image[index][:, :, ::-1]), size, interpolation=cv2.INTER_NEAREST)
    base = (base * 0.7).astype(np.uint8)  # dim the photo so the traces stand out
    shift = (scale - 1.0) / 2.0  # pixel centres move when upscaling
    traj_panel = traj.copy()
    traj_panel[..., :2] += shift / scale
    time_values = np.linspace(0.0, 1.0, max(steps - 1, 1))  # (n-1,)
    panels = [_draw_panel(base, traj_panel, seen, time_values, _colour_lut(cv2.COLORMAP_VIRIDIS), scale)]
    z = traj[..., 2]
    finite = np.isfinite(z) & seen  # the colour range spans the drawn points only
    if finite.any():
        low, high = float(z[finite].min()), float(z[finite].max())
        mid_z = (z[:, :-1] + z[:, 1:]) / 2.0  # (K, n-1)
        depth_values = 1.0 - (mid_z - low) / max(high - low, 1e-9)  # near -> 1 (red in turbo)
        panels.append(_draw_panel(base, traj_panel, seen, depth_values, _colour_lut(cv2.COLORMAP_TURBO), scale))
    picture = np.concatenate(panels, axis=1) if len(panels) > 1 else panels[0]
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out_path), picture):
        raise StoreError(f"cannot write {out_path}; pick a .png path in a writable folder")
    return out_path
