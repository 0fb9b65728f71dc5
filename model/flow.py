"""Rectified flow, apart from any network: path sample, masked velocity loss, guidance, ODE samplers.

Convention: `x_t = (1 - t) * noise + t * data`, t from 0 (noise) to 1 (data); the network predicts
the velocity `data - noise`. Samplers integrate `dx/dt = velocity(x, t)` over a uniform grid of
`steps` intervals on [0, 1]; the step size is `1 / steps` for every count.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x (B, ...), t (B,)) -> (B, ...)


def sample_path(data: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Point on the linear path at time `t` (B,) and the target velocity; both shaped like `data`."""
    t_ = t.reshape(-1, *([1] * (data.dim() - 1)))  # (B, 1, ...)
    return (1.0 - t_) * noise + t_ * data, data - noise


def masked_velocity_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries where `mask` is true only (masked entries get no gradient)."""
    zero = torch.zeros((), device=pred.device)
    target = torch.where(mask, target.float(), zero)  # NaN/inf under the mask must not reach the backward
    error = torch.where(mask, pred.float() - target, zero)
    return (error**2).sum() / mask.sum().clamp(min=1)


def guided(velocity_cond: Velocity, velocity_null: Velocity, scale: float) -> Velocity:
    """Classifier-free guidance: `v_null + scale * (v_cond - v_null)`; scale 1 is the conditional field."""
    if scale == 1.0:
        return velocity_cond
    return lambda x, t: velocity_null(x, t) + scale * (velocity_cond(x, t) - velocity_null(x, t))


def integrate(velocity: Velocity, noise: torch.Tensor, steps: int, sampler: str = "heun") -> torch.Tensor:
    """Integrate from t=0 (`noise`) to t=1 with `steps` uniform steps of Euler or Heun (2nd order).

    Euler costs one velocity call per step. Heun adds the trapezoidal corrector on every step but the
    last, as EDM's sampler does: the field of an x-predicting network, (x_hat - x) / (1 - t), is
    singular at t = 1, so the final step is Euler (it lands on x_hat exactly). Heun costs 2*steps - 1
    calls and stays second order (one Euler step adds a local error of order dt^2).
    """
    if steps < 1 or sampler not in ("euler", "heun"):
        raise ValueError(f"need steps >= 1 and sampler 'euler' or 'heun', got {steps}, {sampler!r}")
    x = noise
    times = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64).tolist()
    batch = torch.ones(noise.shape[0], device=noise.device, dtype=noise.dtype)  # (B,)
    for t0, t1 in zip(times[:-1], times[1:], strict=True):
        dt = t1 - t0
        v0 = velocity(x, batch * t0)
        if sampler == "euler" or t1 == 1.0:
            x = x + dt * v0
        else:
            x_pred = x + dt * v0
            x = x + 0.5 * dt * (v0 + velocity(x_pred, batch * t1))
    return x
