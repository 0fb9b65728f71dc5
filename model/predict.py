"""Inference: sample traces for one image (+ depth) and instruction.

`predict_traces` is the API `tracegen predict` and `adapt` call; `sample_deltas` is the batched
sampler training's validation shares.
"""

from __future__ import annotations

import numpy as np
import torch

from model.errors import ModelError
from model.flow import guided, integrate
from model.network import Condition, TraceFlowNet
from model.normalize import deltas_to_traj
from model.samples import depth_to_input, image_to_input
from store.trace import NUM_POINTS, grid_points


class PredictError(ModelError, ValueError):
    """Inputs to prediction that do not fit the model (bad image, depth or intrinsics)."""


def _null_condition(model: TraceFlowNet, cond: Condition, image, depth, has_depth, texts) -> Condition:
    drop = torch.ones(image.shape[0], dtype=torch.bool, device=image.device)
    return model.condition(image, depth, has_depth, texts, cond.start, drop)


@torch.no_grad()
def sample_deltas(
    model: TraceFlowNet,
    image: torch.Tensor,
    depth: torch.Tensor,
    has_depth: torch.Tensor,
    texts: list[str],
    start: torch.Tensor,
    steps: int,
    sampler: str,
    guidance: float,
    generator: torch.Generator,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Sample normalised deltas for a batch of conditions.

    Args:
        image: (B, 3, S, S), depth: (B, 2, S, S), has_depth: (B,), texts: B strings, start: (B, K, 3).
        steps, sampler: ODE steps and "heun" or "euler"; guidance: classifier-free guidance scale.
        generator: CPU generator for the initial noise.
        temperature: scale of the initial noise: 1 samples the learnt distribution, lower values pull
            towards its mean trace (0: deterministic; measured, 0.5 lowers the ADE of weakly trained
            models), as diffusion policies do for smoother robot motion.
    Returns:
        (B, K, steps_of_model, 3) normalised deltas, clamped to the +-1 range the model was trained on.
    """
    cond = model.condition(image, depth, has_depth, texts, start)
    velocity_cond = lambda x, t: model.velocity(x, t, cond)  # noqa: E731
    velocity = velocity_cond
    if guidance != 1.0:
        null = _null_condition(model, cond, image, depth, has_depth, texts)
        velocity = guided(velocity_cond, lambda x, t: model.velocity(x, t, null), guidance)
    shape = (image.shape[0], NUM_POINTS, model.cfg.steps, 3)
    noise = temperature * torch.randn(shape, generator=generator).to(image.device)  # (B, K, S, 3)
    return integrate(velocity, noise, steps, sampler).clamp(-1.0, 1.0)


def _check_inputs(image: np.ndarray, depth: np.ndarray | None, intrinsics: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise PredictError(f"image has shape {image.shape} dtype {image.dtype}; expected uint8 (H, W, 3) RGB")
    if depth is not None and depth.shape != image.shape[:2]:
        raise PredictError(f"depth has shape {depth.shape}; expected {image.shape[:2]} like the image (or no depth)")
    if intrinsics.shape != (3, 3) or intrinsics[0, 0] <= 0 or intrinsics[1, 1] <= 0:
        raise PredictError(f"intrinsics {intrinsics.tolist()} is not a 3x3 pinhole matrix with fx, fy > 0")


def predict_traces(
    model: TraceFlowNet,
    image: np.ndarray,
    depth: np.ndarray | None,
    intrinsics: np.ndarray,
    instruction: str,
    num_samples: int = 1,
    steps: int | None = None,
    guidance: float | None = None,
    seed: int = 0,
    sampler: str | None = None,
    temperature: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Predict `num_samples` traces of the 20x20 grid on `image`.

    Args:
        model: a `TraceFlowNet` (e.g. from `load_checkpoint`).
        image: (H, W, 3) uint8 RGB reference frame.
        depth: (H, W) metres (NaN where unknown) or None for a 2D-only prediction.
        intrinsics: (3, 3) pinhole matrix of the image (kept for the caller; traces are in pixels).
        instruction: the task in words.
        num_samples: hypotheses to draw.
        steps, guidance, sampler: sampler settings; None uses the model config's defaults.
        seed: seeds the initial noise.
        temperature: scale of the initial noise (see `sample_deltas`), in [0, 1].
    Returns:
        traj (N, 400, steps+1, 3) float32 `(u, v, z)` in pixels of `image` and metres (z NaN without
        depth), and valid (steps+1,) bool (every predicted step is real).
    """
    image, intrinsics = np.asarray(image), np.asarray(intrinsics, dtype=np.float32)
    depth = None if depth is None else np.asarray(depth, dtype=np.float32)
    _check_inputs(image, depth, intrinsics)
    if not 0.0 <= temperature <= 1.0:
        raise PredictError(f"temperature {temperature} is outside [0, 1]; 1 samples, 0 gives the mean-seeking trace")
    cfg, device = model.cfg, next(model.parameters()).device
    height, width = image.shape[:2]
    grid = grid_points(width, height)  # (K, 2)
    start = np.zeros((NUM_POINTS, 3), dtype=np.float32)
    start[:, 0], start[:, 1] = (grid[:, 0] + 0.5) / width, (grid[:, 1] + 0.5) / height
    has_depth = depth is not None and bool(np.isfinite(depth).any())
    if has_depth:
        rows, cols = np.round(grid[:, 1]).astype(int), np.round(grid[:, 0]).astype(int)
        start[:, 2] = np.nan_to_num(depth[rows, cols], nan=float(np.nanmedian(depth)))
    batch = lambda a: torch.as_tensor(a).unsqueeze(0).expand(num_samples, *a.shape).to(device)  # noqa: E731
    model.eval()
    deltas = sample_deltas(
        model,
        batch(image_to_input(image, cfg.image_size)),
        batch(depth_to_input(depth if has_depth else None, cfg.image_size)),
        batch(np.array(has_depth)),
        [instruction] * num_samples,
        batch(start),
        steps or cfg.sample_steps,
        sampler or cfg.sampler,
        cfg.guidance if guidance is None else guidance,
        torch.Generator().manual_seed(seed),
        temperature,
    )  # (N, K, S, 3)
    traj = deltas_to_traj(batch(start), deltas, width, height, has_depth)  # (N, K, S+1, 3)
    return traj.float().cpu().numpy(), np.ones(cfg.steps + 1, dtype=bool)
