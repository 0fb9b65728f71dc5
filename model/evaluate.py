"""Trace errors: average and final displacement, in pixels and (where depth exists) centimetres."""

from __future__ import annotations

import numpy as np
import torch

MOVING_FRACTION = 0.01  # a point moves when it leaves its start by 1 % of the image side (6 px at 640)


def _unproject(traj: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """(N, K, L, 3) `(u, v, z)` and (N, 3, 3) -> (N, K, L, 3) camera-frame metres."""
    fx, fy = intrinsics[:, 0, 0, None, None], intrinsics[:, 1, 1, None, None]  # (N, 1, 1)
    cx, cy = intrinsics[:, 0, 2, None, None], intrinsics[:, 1, 2, None, None]
    u, v, z = traj.unbind(-1)
    return torch.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], dim=-1)


def trace_errors(pred, target, valid, intrinsics=None, visible=None) -> dict[str, float]:
    """ADE and FDE of predicted traces against targets, over real steps after the start.

    ADE averages the per-point distance over every valid step (1..L-1) of every point; FDE takes each
    sample's last valid step. Pixel errors use `(u, v)`; centimetre errors use the 3D points unprojected
    with `intrinsics`, only for samples whose target and prediction both have z.

    Args:
        pred: (N, K, L, 3) predicted `(u, v, z)` pixels and metres (z NaN where no depth).
        target: (N, K, L, 3) ground truth, NaN where unknown.
        valid: (N, L) bool real steps (step 0, the start, is never scored).
        intrinsics: (N, 3, 3) pinhole matrices; without them no centimetre errors are given.
        visible: (N, K, L) bool; when given, only visible target points are scored.
    Returns:
        {"ade_px", "fde_px", "ade_cm", "fde_cm", "count"}; NaN where nothing could be scored.
    """
    pred, target = (torch.as_tensor(np.asarray(a) if not torch.is_tensor(a) else a).double() for a in (pred, target))
    valid = torch.as_tensor(valid).bool().clone()
    valid[:, 0] = False
    scored = valid[:, None, :].expand(pred.shape[:3]).clone()  # (N, K, L)
    if visible is not None:
        scored &= torch.as_tensor(visible).bool()
    pixel = torch.linalg.vector_norm(pred[..., :2] - target[..., :2], dim=-1)  # (N, K, L)
    result = {"count": int(scored.sum())}
    result["ade_px"], result["fde_px"] = _ade_fde(pixel, scored, valid)
    result["ade_cm"] = result["fde_cm"] = float("nan")
    if intrinsics is not None:
        intrinsics = torch.as_tensor(np.asarray(intrinsics) if not torch.is_tensor(intrinsics) else intrinsics).double()
        metric = 100.0 * torch.linalg.vector_norm(_unproject(pred, intrinsics) - _unproject(target, intrinsics), dim=-1)
        result["ade_cm"], result["fde_cm"] = _ade_fde(metric, scored & torch.isfinite(metric), valid)
    return result


def moving_points(target, valid, sides, fraction: float = MOVING_FRACTION) -> torch.Tensor:
    """(N, K, L) bool: the entries of points whose target leaves its start by more than `fraction` of
    `sides` (N,), each sample's longer image side in pixels, at some valid step."""
    target = torch.as_tensor(np.asarray(target) if not torch.is_tensor(target) else target).double()
    valid = torch.as_tensor(valid).bool()
    sides = torch.as_tensor(np.asarray(sides) if not torch.is_tensor(sides) else sides).double()
    shift = torch.linalg.vector_norm(target[..., :2] - target[:, :, :1, :2], dim=-1)  # (N, K, L)
    shift = torch.where(valid[:, None, :] & torch.isfinite(shift), shift, torch.zeros((), dtype=shift.dtype))
    moves = (shift > fraction * sides[:, None, None]).any(dim=2)  # (N, K)
    return moves[:, :, None].expand(target.shape[:3])


def motion_errors(pred, target, valid, sides, fraction: float = MOVING_FRACTION) -> dict[str, float]:
    """Pixel ADE/FDE over the moving points only (`moving_points`), for the prediction and for staying
    still (every point keeps its start): {"ade_moving_px", "fde_moving_px", "still_ade_moving_px",
    "still_fde_moving_px", "moving_points"}. A model that does not beat staying still here has not
    learnt the motion, whatever its all-points ADE (mostly still background) says."""
    target = torch.as_tensor(np.asarray(target) if not torch.is_tensor(target) else target).double()
    moving = moving_points(target, valid, sides, fraction)
    still = target[:, :, :1].expand_as(target)
    model = trace_errors(pred, target, valid, visible=moving)
    baseline = trace_errors(still, target, valid, visible=moving)
    return {"ade_moving_px": model["ade_px"], "fde_moving_px": model["fde_px"], "still_ade_moving_px": baseline["ade_px"],
            "still_fde_moving_px": baseline["fde_px"], "moving_points": int(moving[:, :, 0].sum())}


def _ade_fde(distance: torch.Tensor, scored: torch.Tensor, valid: torch.Tensor) -> tuple[float, float]:
    """Mean distance over scored entries, and over scored entries of each sample's last valid step."""
    scored = scored & torch.isfinite(distance)
    ade = distance[scored].mean() if scored.any() else torch.tensor(float("nan"))
    steps = torch.arange(valid.shape[1], device=valid.device)
    last = torch.where(valid, steps, -1).max(dim=1).values  # (N,)
    final = scored & (steps[None, None, :] == last[:, None, None])  # (N, K, L)
    fde = distance[final].mean() if final.any() else torch.tensor(float("nan"))
    return float(ade), float(fde)
