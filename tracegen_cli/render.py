"""Trace overlays a person can judge: paths on the reference image coloured by time, plus a z view.

`render_trace_overlay` draws a trace (K points x L steps of `(u, v, z)` in the image's pixels) as two
panels side by side: the photo with every point's path coloured from dark purple (start) to yellow
(last step), and a grey copy with the same paths coloured by z-depth (red near, blue far; the range
spans the moving points' z) with a colour bar in metres; points that barely move are small dots; a 2D-only trace (z NaN) says so in that panel. A banner on top carries the
title (instruction, checkpoint). Small images are upscaled so lines stay visible. Shared by
`tracegen predict --render` and anything else that shows traces (e.g. `inspect --render`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

MIN_PANEL_WIDTH = 480  # small images are upscaled by an integer factor to at least this width
BANNER_HEIGHT = 28  # pixels of the title banner (before nothing: drawn at output scale)
LEGEND_HEIGHT = 26  # pixels of the colour legend under each panel
MIN_MOTION_FRACTION = 0.015  # a point moving less than this share of the image's longer side is drawn as a dot
EXECUTED_COLOUR = (255, 0, 255)  # RGB of an executed (e.g. robot tool) path drawn over the prediction


def _colormap(values: np.ndarray, cmap: int) -> np.ndarray:
    """(N,) values in [0, 1] -> (N, 3) uint8 RGB through an OpenCV colour map."""
    import cv2

    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cmap)[:, 0, ::-1]  # (256, 3) RGB
    index = np.clip(np.nan_to_num(values, nan=0.0) * 255.0, 0, 255).astype(np.int64)
    return lut[index]


def _upscale(image: np.ndarray, scale: int) -> np.ndarray:
    import cv2

    if scale == 1:
        return image.copy()
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)


def _moving(traj: np.ndarray, seen: np.ndarray, min_motion_px: float) -> np.ndarray:
    """(K,) bool: the point leaves its first drawn position by at least `min_motion_px` pixels."""
    first = np.argmax(seen, axis=1)  # (K,)
    start = traj[np.arange(traj.shape[0]), first, :2]  # (K, 2)
    shift = np.linalg.norm(traj[..., :2] - start[:, None], axis=-1)  # (K, L)
    return (np.where(seen, shift, 0.0) >= min_motion_px).any(axis=1)


def _draw_paths(
    canvas: np.ndarray, traj: np.ndarray, seen: np.ndarray, colours: np.ndarray, scale: int, moving: np.ndarray
) -> None:
    """Draw every point's path; `colours` (K, L, 3) RGB per step; `seen` (K, L) steps to draw;
    `moving` (K,) which points get a path (the rest a small dot at their start).

    Three passes so nothing hides the motion: a small dark dot at each still point's start, then
    every moving path (a segment takes the colour of its end step), then a dot at each path's end.
    """
    import cv2

    shift = 4  # sub-pixel precision of cv2 drawing: coordinates in 1/16 pixel
    points = np.round(((traj[..., :2] + 0.5) * scale - 0.5) * (1 << shift))  # (K, L, 2) fixed-point pixels
    points = np.nan_to_num(points).astype(np.int64)
    thickness = max(1, round(scale / 2))
    radius = max(1, (scale + 1) // 3) << shift
    firsts, lasts, paths = [], [], []
    for k in range(traj.shape[0]):
        steps = np.flatnonzero(seen[k])
        if steps.size == 0:
            continue
        if moving[k]:
            paths.append((k, steps))
            lasts.append((k, steps[-1]))
        else:
            firsts.append((k, steps[0]))
    for k, first in firsts:
        cv2.circle(canvas, tuple(points[k, first]), radius, tuple(int(c) for c in colours[k, first]), -1, cv2.LINE_AA, shift)
    for k, steps in paths:
        for a, b in zip(steps[:-1], steps[1:], strict=True):
            colour = tuple(int(c) for c in colours[k, b])
            cv2.line(canvas, tuple(points[k, a]), tuple(points[k, b]), colour, thickness, cv2.LINE_AA, shift)
    for k, last in lasts:  # an arrow-like end: a dark-rimmed dot in the last step's colour
        end_radius = radius + (1 << shift)
        cv2.circle(canvas, tuple(points[k, last]), end_radius + (1 << shift), (20, 20, 20), -1, cv2.LINE_AA, shift)
        cv2.circle(canvas, tuple(points[k, last]), end_radius, tuple(int(c) for c in colours[k, last]), -1, cv2.LINE_AA, shift)


def _legend(width: int, cmap: int, left: str, right: str, label: str) -> np.ndarray:
    """A (LEGEND_HEIGHT, width, 3) strip: a colour bar between two end labels."""
    import cv2

    strip = np.full((LEGEND_HEIGHT, width, 3), 255, dtype=np.uint8)
    bar_left, bar_right = width // 5, width * 3 // 5
    ramp = _colormap(np.linspace(0.0, 1.0, max(1, bar_right - bar_left)), cmap)  # (n, 3)
    strip[6 : LEGEND_HEIGHT - 6, bar_left:bar_right] = ramp[None]
    font, size = cv2.FONT_HERSHEY_SIMPLEX, 0.42
    cv2.putText(strip, left, (4, LEGEND_HEIGHT - 9), font, size, (0, 0, 0), 1, cv2.LINE_AA)
    (text_w, _), _ = cv2.getTextSize(right, font, size, 1)
    cv2.putText(strip, right, (bar_right + 6, LEGEND_HEIGHT - 9), font, size, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(strip, label, (bar_right + 12 + text_w, LEGEND_HEIGHT - 9), font, size, (90, 90, 90), 1, cv2.LINE_AA)
    return strip


ASCII_STAND_INS = {"·": "-", "—": "-", "–": "-", "×": "x", "→": "->", "°": " deg", "…": "...", "“": '"', "”": '"', "’": "'"}


def ascii_text(text: str) -> str:
    """`text` as OpenCV's Hershey fonts can draw it: ASCII only (they draw "??" for anything else)."""
    for char, stand_in in ASCII_STAND_INS.items():
        text = text.replace(char, stand_in)
    return text.encode("ascii", "replace").decode("ascii")


def _banner(width: int, title: str) -> np.ndarray:
    import cv2

    strip = np.full((BANNER_HEIGHT, width, 3), 32, dtype=np.uint8)
    font, size = cv2.FONT_HERSHEY_SIMPLEX, 0.5
    title = text = ascii_text(title)
    while text and cv2.getTextSize(text, font, size, 1)[0][0] > width - 12:
        text = text[:-2]
    if text != title:
        text = text[:-1] + "~"
    cv2.putText(strip, text, (6, BANNER_HEIGHT - 9), font, size, (240, 240, 240), 1, cv2.LINE_AA)
    return strip


def _z_range(z: np.ndarray, moving: np.ndarray) -> tuple[float, float]:
    """Colour range of z: the 2nd..98th percentile over the moving points (all points when none move)."""
    values = z[moving] if np.isfinite(z[moving]).any() else z
    values = values[np.isfinite(values)]
    return float(np.percentile(values, 2)), float(np.percentile(values, 98))


def _steps_to_draw(traj: np.ndarray, valid: np.ndarray, visible: np.ndarray | None) -> np.ndarray:
    """(K, L) bool: valid steps with finite u, v (and visible, when a mask is given)."""
    seen = valid[None, :] & np.isfinite(traj[..., :2]).all(-1)  # (K, L)
    return seen & visible if visible is not None else seen


def render_trace_overlay(
    image: np.ndarray,
    traj: np.ndarray,
    valid: np.ndarray,
    visible: np.ndarray | None = None,
    title: str = "",
    executed_uv: np.ndarray | None = None,
) -> np.ndarray:
    """Two panels: the paths coloured by time on the image, and coloured by z on a grey copy.

    Args:
        image: (H, W, 3) uint8 RGB reference image.
        traj: (K, L, 3) `(u, v, z)`, pixels of `image` and metres (z NaN for a 2D-only trace).
        valid: (L,) bool real steps.
        visible: optional (K, L) bool; hidden steps are not drawn.
        title: text of the banner on top (instruction, checkpoint, ...).
        executed_uv: optional (T, 2) pixels of a path that was executed (the robot tool projected into
            the image), drawn in magenta over the time panel to compare with the prediction.
    Returns:
        (BANNER + s*H + LEGEND, 2 * s*W, 3) uint8 RGB, s the integer upscale factor.
    Raises:
        ValueError: shapes that do not agree.
    """
    import cv2

    traj = np.asarray(traj, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image has shape {image.shape} dtype {image.dtype}; expected uint8 (H, W, 3)")
    if traj.ndim != 3 or traj.shape[2] != 3 or valid.shape != (traj.shape[1],):
        raise ValueError(f"traj {traj.shape} / valid {valid.shape} do not match (K, L, 3) / (L,)")
    height, width = image.shape[:2]
    scale = max(1, int(np.ceil(MIN_PANEL_WIDTH / width)))
    seen = _steps_to_draw(traj, valid, visible)
    moving = _moving(traj, seen, MIN_MOTION_FRACTION * max(width, height))
    last = max(1, int(np.flatnonzero(valid).max()) if valid.any() else 1)

    time_colours = _colormap(np.arange(traj.shape[1]) / last, cv2.COLORMAP_PLASMA)  # (L, 3)
    time_panel = _upscale(image, scale)
    _draw_paths(time_panel, traj, seen, np.broadcast_to(time_colours, traj.shape), scale, moving)
    if executed_uv is not None:
        _draw_executed(time_panel, np.asarray(executed_uv, dtype=np.float64), scale)
    time_legend = _legend(time_panel.shape[1], cv2.COLORMAP_PLASMA, "step 0", f"{last}", "time")

    grey = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    depth_panel = _upscale((grey.astype(np.float32) * 0.6 + 60).astype(np.uint8), scale)
    z = np.where(seen, traj[..., 2], np.nan)
    if np.isfinite(z).any():
        near, far = _z_range(z, moving)
        z_unit = np.clip((z - near) / max(far - near, 1e-6), 0.0, 1.0)  # (K, L)
        _draw_paths(depth_panel, traj, seen & np.isfinite(z), _colormap(1.0 - z_unit, cv2.COLORMAP_JET), scale, moving)
        depth_legend = _legend(depth_panel.shape[1], cv2.COLORMAP_JET, f"far {far:.3f}", f"near {near:.3f}", "z (m)")
    else:
        _draw_paths(depth_panel, traj, seen, np.full(traj.shape, 200, dtype=np.uint8), scale, moving)
        cv2.putText(depth_panel, "2D only: no depth, z unknown", (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.7,
                    (255, 80, 80), 2, cv2.LINE_AA)
        depth_legend = np.full((LEGEND_HEIGHT, depth_panel.shape[1], 3), 255, dtype=np.uint8)

    panels = np.concatenate([np.concatenate([time_panel, time_legend]), np.concatenate([depth_panel, depth_legend])], axis=1)
    return np.concatenate([_banner(panels.shape[1], title), panels])


def _draw_executed(canvas: np.ndarray, executed_uv: np.ndarray, scale: int) -> None:
    """A thick magenta polyline with an end dot: the (T, 2) executed path, image pixels."""
    import cv2

    path = executed_uv[np.isfinite(executed_uv).all(axis=1)]
    if len(path) < 2:
        return
    shift = 4
    points = np.round(((path + 0.5) * scale - 0.5) * (1 << shift)).astype(np.int64)  # (T, 2) fixed-point
    cv2.polylines(canvas, [points.reshape(-1, 1, 2)], False, EXECUTED_COLOUR, max(2, scale), cv2.LINE_AA, shift)
    cv2.circle(canvas, tuple(points[-1]), (2 * scale + 2) << shift, EXECUTED_COLOUR, -1, cv2.LINE_AA, shift)


def save_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an RGB image as PNG atomically (temporary name in the same folder, then rename)."""
    import cv2

    path = Path(path)
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise ValueError(f"could not encode a {rgb.shape} image as PNG")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(encoded.tobytes())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
