"""Rectified-flow math against analytic answers."""

import math

import pytest
import torch

from model.flow import guided, integrate, masked_velocity_loss, sample_path


def test_path_endpoints_and_velocity():
    data, noise = torch.randn(3, 5), torch.randn(3, 5)
    x0, v = sample_path(data, noise, torch.zeros(3))
    x1, _ = sample_path(data, noise, torch.ones(3))
    torch.testing.assert_close(x0, noise)
    torch.testing.assert_close(x1, data)
    torch.testing.assert_close(v, data - noise)
    t = torch.tensor([0.25, 0.5, 0.75])
    xt, _ = sample_path(data, noise, t)
    torch.testing.assert_close(xt, noise + t[:, None] * (data - noise))


@pytest.mark.parametrize("sampler", ["euler", "heun"])
@pytest.mark.parametrize("steps", [1, 3, 7, 100])
def test_straight_path_integrates_exactly_with_any_step_count(sampler, steps):
    """The ideal rectified-flow field of one data point is constant along its path: any count is exact."""
    data, noise = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    velocity = lambda x, t: (data - x) / (1.0 - t[:, None, None]).clamp(min=1e-9)  # noqa: E731
    constant = lambda x, t: (data - noise).expand_as(x)  # noqa: E731
    torch.testing.assert_close(integrate(constant, noise, steps, sampler), data)
    if sampler == "euler":  # the x-dependent form of the same field never evaluates t = 1 under Euler
        torch.testing.assert_close(integrate(velocity, noise, steps, sampler), data, atol=1e-5, rtol=1e-5)


def test_time_dependent_field_euler_first_order_heun_second_order():
    """dx/dt = 2t has x(1) = x(0) + 1: Euler errs by 1/n exactly; Heun's trapezoids are exact and only
    its final Euler step errs, by h^2 = 1/n^2."""
    field = lambda x, t: (2 * t).reshape(-1, 1).expand_as(x)  # noqa: E731
    start = torch.zeros(1, 1, dtype=torch.float64)
    for steps in (1, 4, 10):
        euler = integrate(field, start, steps, "euler").item()
        assert euler == pytest.approx(1.0 - 1.0 / steps, abs=1e-12)
        assert integrate(field, start, steps, "heun").item() == pytest.approx(1.0 - 1.0 / steps**2, abs=1e-12)


def test_heun_calls_the_field_twice_per_step_but_once_on_the_last():
    calls = []
    integrate(lambda x, t: calls.append(t[0].item()) or x, torch.ones(1, 1), 4, "heun")
    assert calls == pytest.approx([0.0, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75])


def test_heun_beats_euler_on_exponential_growth():
    """dx/dt = x: x(1) = e. Euler's error shrinks like 1/n, Heun's like 1/n^2."""
    start = torch.ones(1, 1, dtype=torch.float64)
    errors = {
        (s, n): abs(integrate(lambda x, t: x, start, n, s).item() - math.e) for s in ("euler", "heun") for n in (10, 20)
    }
    assert errors["heun", 10] < errors["euler", 10] / 7
    assert errors["euler", 10] / errors["euler", 20] == pytest.approx(2.0, rel=0.1)
    assert errors["heun", 10] / errors["heun", 20] == pytest.approx(4.0, rel=0.1)


def test_masked_loss_averages_unmasked_entries_only_and_masks_get_no_gradient():
    pred = torch.zeros(2, 3, requires_grad=True)
    target = torch.tensor([[1.0, 2.0, float("nan")], [3.0, float("inf"), 0.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    loss = masked_velocity_loss(pred, target, mask)
    assert loss.item() == pytest.approx((1 + 4 + 9) / 3)
    loss.backward()
    expected = torch.where(mask, 2 * (pred.detach() - torch.nan_to_num(target)) / 3, torch.zeros(()))
    torch.testing.assert_close(pred.grad, expected)
    assert (pred.grad[~mask] == 0).all()


def test_guidance_combines_fields():
    cond = lambda x, t: torch.full_like(x, 3.0)  # noqa: E731
    null = lambda x, t: torch.full_like(x, 1.0)  # noqa: E731
    x, t = torch.zeros(2, 2), torch.zeros(2)
    assert guided(cond, null, 1.0) is cond
    torch.testing.assert_close(guided(cond, null, 2.0)(x, t), torch.full_like(x, 5.0))
    torch.testing.assert_close(guided(cond, null, 0.0)(x, t), torch.full_like(x, 1.0))


def test_bad_sampler_settings_raise():
    with pytest.raises(ValueError):
        integrate(lambda x, t: x, torch.zeros(1, 1), 0, "euler")
    with pytest.raises(ValueError):
        integrate(lambda x, t: x, torch.zeros(1, 1), 4, "rk4")
