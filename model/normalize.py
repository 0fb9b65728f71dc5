"""The model's coordinates: per-step deltas normalised by fixed scales, integrated from the start.

A trace `(u, v, z)` (pixels of a W x H image, metres) becomes
  start  = ((u0 + 0.5) / W, (v0 + 0.5) / H, z0)                      the grid and its depth
  delta  = (du / (0.05 W), dv / (0.05 H), dz / 0.04 m), clamped to +-1   one row per step
so the network sees resolution-free numbers of order one (DESIGN.md section 5). Integration
(`deltas_to_traj`) is the inverse, exact wherever no delta was clamped.

A trace shorter than the model's horizon ended because its scene came to rest (the speed retargeting adds
a step only when something moves) or its shot ended: its points are held where they ended, zero deltas
the network learns (the published TraceGen fills a trace past its end with its last value too). Masking
those steps instead left them untrained, and predictions drifted there, back from where the object was
put down (`benchmarks/fit_check.py` on 20 unseen `place_block` layouts, an adapted model: the carried block
0.76 of its way at the step the true trace ended, 0.62 at the horizon's end, which execute plays; adapted
with the hold, 0.77 at both).
"""

from __future__ import annotations

import numpy as np
import torch

UV_STEP_SCALE = 0.05  # a unit delta moves 5 % of the image side per step
Z_STEP_SCALE = 0.04  # a unit delta moves 4 cm per step
DELTA_CLAMP = 1.0

NORMALIZATION = {
    "kind": "clamped-step-deltas",
    "uv_step_scale": UV_STEP_SCALE,
    "z_step_scale_m": Z_STEP_SCALE,
    "clamp": DELTA_CLAMP,
    "start": "(u + 0.5) / W, (v + 0.5) / H, z metres",
}


def traj_to_deltas(
    traj: np.ndarray, valid: np.ndarray, width: float, height: float, steps: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised start, deltas and loss mask of one trace.

    Args:
        traj: (K, L+1, 3) float `(u, v, z)` pixels and metres, NaN where unknown; L >= steps.
        valid: (L+1,) bool, real steps.
        width, height: size in pixels of the image the trace's pixels refer to.
        steps: number of steps after the start to keep.
    Returns:
        start (K, 3) float32 (z 0 where unknown), deltas (K, steps, 3) float32 in [-1, 1] (0 where
        masked), mask (K, steps, 3) bool: true where the delta is a real target (both ends valid and
        finite; the z channel only where both ends have a depth), and after the last valid step, where
        the point is known there (it is held: a zero delta).
    """
    traj = np.asarray(traj, dtype=np.float64)[:, : steps + 1]  # (K, steps+1, 3)
    step_valid = np.asarray(valid, dtype=bool)[: steps + 1]
    scale = np.array([UV_STEP_SCALE * width, UV_STEP_SCALE * height, Z_STEP_SCALE])
    raw = (traj[:, 1:] - traj[:, :-1]) / scale  # (K, steps, 3)
    pair_valid = step_valid[1:] & step_valid[:-1]  # (steps,)
    mask = np.isfinite(raw) & pair_valid[None, :, None]  # (K, steps, 3)
    mask[..., :2] &= mask[..., :2].all(-1, keepdims=True)  # u and v stand or fall together
    deltas = np.where(mask, np.clip(np.nan_to_num(raw), -DELTA_CLAMP, DELTA_CLAMP), 0.0)
    real = np.flatnonzero(step_valid)
    if len(real) and real[-1] < steps:  # ended inside the horizon: held there from its last valid step on
        last = int(real[-1])
        known = np.isfinite(traj[:, last])  # (K, 3)
        known[:, :2] &= known[:, :2].all(-1, keepdims=True)
        mask[:, last:] = known[:, None, :]
        deltas[:, last:] = 0.0
    start = np.stack([(traj[:, 0, 0] + 0.5) / width, (traj[:, 0, 1] + 0.5) / height, traj[:, 0, 2]], -1)
    start = np.nan_to_num(start, nan=0.0)  # (K, 3)
    return start.astype(np.float32), deltas.astype(np.float32), mask


def deltas_to_traj(start: torch.Tensor, deltas: torch.Tensor, width, height, has_depth) -> torch.Tensor:
    """Integrate normalised deltas from the start back to pixels and metres.

    Args:
        start: (..., K, 3) normalised start as from `traj_to_deltas`.
        deltas: (..., K, S, 3) normalised deltas.
        width, height: image size in pixels (floats, or (...) tensors broadcast over the batch).
        has_depth: bool or (...) bool tensor; where false the z channel is NaN.
    Returns:
        (..., K, S+1, 3) float32 `(u, v, z)`: start then one row per step.
    """
    width = torch.as_tensor(width, dtype=torch.float32, device=deltas.device)[..., None, None]  # (..., 1, 1)
    height = torch.as_tensor(height, dtype=torch.float32, device=deltas.device)[..., None, None]
    start_uvz = torch.stack(
        [start[..., 0] * width[..., 0] - 0.5, start[..., 1] * height[..., 0] - 0.5, start[..., 2]], -1
    )  # (..., K, 3)
    step_scale = torch.stack(
        [UV_STEP_SCALE * width, UV_STEP_SCALE * height, torch.full_like(width, Z_STEP_SCALE)], -1
    )  # (..., 1, 1, 3)
    path = start_uvz.unsqueeze(-2) + torch.cumsum(deltas.float() * step_scale, dim=-2)  # (..., K, S, 3)
    traj = torch.cat([start_uvz.unsqueeze(-2), path], dim=-2)  # (..., K, S+1, 3)
    no_depth = ~torch.as_tensor(has_depth, dtype=torch.bool, device=deltas.device)[..., None, None]
    traj[..., 2] = torch.where(no_depth, torch.full_like(traj[..., 2], float("nan")), traj[..., 2])
    return traj
