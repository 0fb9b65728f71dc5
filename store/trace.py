"""The trace conventions every package shares (DESIGN.md section 3), stated once.

A trace is the future path of the K = 400 points of a 20x20 grid laid on a reference image:
`traj[k, l] = (u, v, z)` with `u, v` pixels of the reference camera (x = column, y = row, origin at
the top-left pixel centre) and `z` the z-depth in metres along the reference camera's optical axis
(NaN when there is no depth). Camera motion is removed: every step is in the reference camera.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from store.errors import TraceFileError

GRID_SIZE = 20
NUM_POINTS = GRID_SIZE * GRID_SIZE  # K
MAX_STEPS = 128  # retargeted steps after the start
TRACE_LENGTH = MAX_STEPS + 1  # start + steps, the store's L axis
MODEL_STEPS = 32  # the model predicts the start plus this many steps
ARC_STEP = 0.05  # arc length between retargeted steps, in normalised (u/W, v/H, z) units
FAST_FRACTION = 0.02  # share of fastest points whose mean motion defines progress


def grid_points(width: int, height: int) -> np.ndarray:
    """The query grid on a `width` x `height` image.

    Returns:
        (K, 2) float32 `(u, v)` pixels, row-major: index = row * 20 + col.
    """
    if width < 2 or height < 2:
        raise TraceFileError(f"image size {width}x{height} is too small for a trace grid; need at least 2x2")
    us = np.linspace(0.0, width - 1.0, GRID_SIZE, dtype=np.float64)
    vs = np.linspace(0.0, height - 1.0, GRID_SIZE, dtype=np.float64)
    vv, uu = np.meshgrid(vs, us, indexing="ij")  # (20, 20): rows are v
    return np.stack([uu.ravel(), vv.ravel()], axis=-1).astype(np.float32)


def unproject(uvz: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Camera-frame 3D points from `(u, v, z)`: `X = (u - cx) z / fx`, `Y = (v - cy) z / fy`.

    Args:
        uvz: (..., 3) pixels and metres.
        intrinsics: (3, 3) pinhole matrix.
    Returns:
        (..., 3) float64 metres in the camera frame (x right, y down, z forward).
    """
    fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
    u, v, z = (np.asarray(uvz, dtype=np.float64)[..., i] for i in range(3))
    return np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=-1)


def project(points: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """`(u, v, z)` of camera-frame 3D points; the inverse of `unproject`.

    Args:
        points: (..., 3) metres in the camera frame.
        intrinsics: (3, 3) pinhole matrix.
    Returns:
        (..., 3) float64 pixels and metres.
    """
    fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
    x, y, z = (np.asarray(points, dtype=np.float64)[..., i] for i in range(3))
    return np.stack([fx * x / z + cx, fy * y / z + cy, z], axis=-1)


@dataclass(frozen=True)
class RetargetedTrace:
    """A trace resampled at equal arc length (see `retarget_arc_length`).

    Attributes:
        traj: (K, 129, 3) float32 `(u, v, z)`; NaN past the last valid step.
        valid: (129,) bool, true for real steps (the start is always valid).
        visible: (K, 129) bool, the point was seen at that step.
        frame_index: (129,) float32 fractional source frame of each step; NaN past the last.
    """

    traj: np.ndarray
    valid: np.ndarray
    visible: np.ndarray
    frame_index: np.ndarray

    @property
    def num_steps(self) -> int:
        """Number of valid steps after the start."""
        return int(self.valid.sum()) - 1


def progress_per_frame(
    raw: np.ndarray, visible: np.ndarray, width: int, height: int, fast_fraction: float = FAST_FRACTION
) -> np.ndarray:
    """Progress of each frame transition: the mean segment length of the fastest points.

    Lengths are measured in normalised units (u/W, v/H, z in metres); z enters only where both ends
    have a depth. Only points visible at both ends of a transition count.

    Args:
        raw: (K, F, 3) per-frame trace.
        visible: (K, F) bool.
    Returns:
        (F-1,) float64 progress per transition (0 where no point was visible).
    """
    scale = np.array([1.0 / width, 1.0 / height, 1.0])
    norm = np.asarray(raw, dtype=np.float64) * scale  # (K, F, 3)
    seg = norm[:, 1:] - norm[:, :-1]  # (K, F-1, 3)
    seg[..., 2] = np.where(np.isnan(seg[..., 2]), 0.0, seg[..., 2])
    length = np.sqrt((seg**2).sum(-1))  # (K, F-1); NaN where u or v is unknown
    usable = visible[:, 1:] & visible[:, :-1] & np.isfinite(length)
    length = np.where(usable, length, -1.0)  # -1 marks unusable: it sorts last
    count = max(1, math.ceil(fast_fraction * raw.shape[0]))
    fastest = -np.sort(-length, axis=0)[:count]  # (count, F-1), descending
    fastest = np.where(fastest >= 0, fastest, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # transitions with no usable point
        progress = np.nanmean(fastest, axis=0)
    return np.nan_to_num(progress.astype(np.float64), nan=0.0)


def retarget_arc_length(
    raw: np.ndarray,
    visible: np.ndarray,
    width: int,
    height: int,
    step: float = ARC_STEP,
    max_steps: int = MAX_STEPS,
    fast_fraction: float = FAST_FRACTION,
) -> RetargetedTrace:
    """Speed retargeting (TraceForge): resample all points together at equal arc-length intervals.

    A frame transition's progress is the mean 3D segment length of the fastest `fast_fraction` of
    points (normalised u/W, v/H, z). Steps are placed where cumulative progress crosses multiples of
    `step`, so the same motion done fast or slow gives the same trace; at most `max_steps` steps.

    Args:
        raw: (K, F, 3) `(u, v, z)` per video frame, in the reference camera; z may be NaN.
        visible: (K, F) bool.
        width, height: reference image size in pixels.
    Returns:
        A `RetargetedTrace` padded to `max_steps + 1` steps.
    """
    raw = np.asarray(raw, dtype=np.float64)
    visible = np.asarray(visible, dtype=bool)
    if raw.ndim != 3 or raw.shape[2] != 3 or visible.shape != raw.shape[:2]:
        raise TraceFileError(
            f"raw trace shape {raw.shape} / visible {visible.shape} do not match (K, F, 3) / (K, F)"
        )
    num_points, num_frames = raw.shape[:2]
    cumulative = np.concatenate([[0.0], np.cumsum(progress_per_frame(raw, visible, width, height, fast_fraction))])
    count = min(max_steps, int(math.floor(cumulative[-1] / step + 1e-9)))
    targets = step * np.arange(count + 1)  # (n+1,)
    frames = _frames_at_progress(cumulative, targets)  # (n+1,) fractional frame indices

    lower = np.clip(np.floor(frames).astype(int), 0, num_frames - 1)
    upper = np.clip(lower + 1, 0, num_frames - 1)
    alpha = (frames - lower)[None, :, None]  # (1, n+1, 1)
    upper_values = np.where(alpha > 0, raw[:, upper], 0.0)  # 0 * NaN would poison exact steps
    resampled = (1 - alpha) * raw[:, lower] + alpha * upper_values  # (K, n+1, 3)
    exact = alpha[..., 0] == 0
    seen = np.where(exact, visible[:, lower], visible[:, lower] & visible[:, upper])

    length = max_steps + 1
    traj = np.full((num_points, length, 3), np.nan, dtype=np.float32)
    traj[:, : count + 1] = resampled
    valid = np.zeros(length, dtype=bool)
    valid[: count + 1] = True
    vis = np.zeros((num_points, length), dtype=bool)
    vis[:, : count + 1] = seen
    frame_index = np.full(length, np.nan, dtype=np.float32)
    frame_index[: count + 1] = frames
    return RetargetedTrace(traj=traj, valid=valid, visible=vis, frame_index=frame_index)


def _frames_at_progress(cumulative: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Fractional frame index where the non-decreasing `cumulative` progress first reaches each target."""
    num_frames = len(cumulative)
    if num_frames == 1:
        return np.zeros_like(targets)
    index = np.clip(np.searchsorted(cumulative, targets - 1e-12, side="left"), 1, num_frames - 1)
    start, end = cumulative[index - 1], cumulative[index]
    span = end - start
    alpha = np.where(span > 0, (targets - start) / np.where(span > 0, span, 1.0), 0.0)
    frames = index - 1 + np.clip(alpha, 0.0, 1.0)
    frames[targets <= cumulative[0]] = 0.0
    return frames


# --------------------------------------------------------------------------------------------------
# Trace files: predict's output and execute's input.

TRACE_FILE_KEYS = ("traj", "valid", "intrinsics", "image_size", "instruction", "checkpoint_id")


@dataclass(frozen=True)
class TraceFile:
    """A predicted (or exported) trace, as written by `tracegen predict`.

    Attributes:
        traj: (K, L+1, 3) float32 `(u, v, z)` in the reference camera; z NaN for a 2D-only trace.
        valid: (L+1,) bool.
        intrinsics: (3, 3) float32 pinhole matrix of the reference camera.
        image_size: (H, W).
        instruction: the task instruction.
        checkpoint_id: id of the checkpoint that produced it ("" when not from a model).
        samples: optional (N, K, L+1, 3) float32 further hypotheses (traj is samples[0] when given).
    """

    traj: np.ndarray
    valid: np.ndarray
    intrinsics: np.ndarray
    image_size: tuple[int, int]
    instruction: str
    checkpoint_id: str = ""
    samples: np.ndarray | None = None

    @property
    def has_depth(self) -> bool:
        return bool(np.isfinite(self.traj[:, 0, 2]).any())

    def __post_init__(self) -> None:
        _validate_trace_arrays(self.traj, self.valid, self.intrinsics, self.image_size, self.samples, "trace")


def _validate_trace_arrays(traj, valid, intrinsics, image_size, samples, where: str) -> None:
    if traj.dtype != np.float32 or traj.ndim != 3 or traj.shape[0] != NUM_POINTS or traj.shape[2] != 3:
        raise TraceFileError(f"{where}: traj has shape {traj.shape} dtype {traj.dtype}; expected float32 ({NUM_POINTS}, L+1, 3)")
    if valid.dtype != np.bool_ or valid.shape != (traj.shape[1],):
        raise TraceFileError(f"{where}: valid has shape {valid.shape} dtype {valid.dtype}; expected bool ({traj.shape[1]},)")
    if not valid[0]:
        raise TraceFileError(f"{where}: valid[0] is false; the start of a trace is always valid")
    if intrinsics.shape != (3, 3) or not np.isfinite(intrinsics).all() or intrinsics[0, 0] <= 0 or intrinsics[1, 1] <= 0:
        raise TraceFileError(f"{where}: intrinsics {intrinsics.tolist()} is not a 3x3 pinhole matrix with fx, fy > 0")
    if len(image_size) != 2 or min(image_size) < 2:
        raise TraceFileError(f"{where}: image_size {tuple(image_size)} is not (H, W) of a real image")
    if samples is not None and (samples.ndim != 4 or samples.shape[1:] != traj.shape):
        raise TraceFileError(f"{where}: samples has shape {samples.shape}; expected (N, {', '.join(map(str, traj.shape))})")


def save_trace_file(path: str | Path, trace: TraceFile) -> Path:
    """Write a trace `.npz` atomically (temporary name, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    arrays = {
        "traj": trace.traj,
        "valid": trace.valid,
        "intrinsics": trace.intrinsics.astype(np.float32),
        "image_size": np.asarray(trace.image_size, dtype=np.int32),
        "instruction": np.asarray(trace.instruction),
        "checkpoint_id": np.asarray(trace.checkpoint_id),
    }
    if trace.samples is not None:
        arrays["samples"] = trace.samples
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return path


def load_trace_file(path: str | Path) -> TraceFile:
    """Read and validate a trace `.npz`; every mismatch is named in a `TraceFileError`."""
    path = Path(path)
    if not path.is_file():
        raise TraceFileError(f"trace file {path} does not exist; pass the .npz written by `tracegen predict`")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in TRACE_FILE_KEYS if key not in data]
            if missing:
                raise TraceFileError(f"trace file {path} lacks {', '.join(missing)}; it was not written by `tracegen predict`")
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        if isinstance(exc, TraceFileError):
            raise
        raise TraceFileError(f"trace file {path} is not a readable .npz ({exc}); re-create it with `tracegen predict`") from exc
    size = tuple(int(x) for x in np.asarray(arrays["image_size"]).ravel())
    return TraceFile(
        traj=arrays["traj"],
        valid=arrays["valid"],
        intrinsics=arrays["intrinsics"].astype(np.float32),
        image_size=size,  # type: ignore[arg-type]
        instruction=str(arrays["instruction"]),
        checkpoint_id=str(arrays["checkpoint_id"]),
        samples=arrays.get("samples"),
    )
