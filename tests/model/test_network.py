"""The network: shapes, tokenisation round trip, zero-init, the null condition, gradient masking."""

import pytest
import torch

from model.config import preset
from model.flow import masked_velocity_loss
from model.network import TraceFlowNet, count_parameters


def _inputs(cfg, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    size = cfg.image_size
    return dict(
        image=torch.rand(batch, 3, size, size, generator=g) * 2 - 1,
        depth=torch.rand(batch, 2, size, size, generator=g),
        has_depth=torch.tensor([True, False][:batch]),
        texts=["move the red block left", ""][:batch],
        start=torch.rand(batch, 400, 3, generator=g),
    )


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return preset("tiny", depth=2)


@pytest.mark.parametrize("patch", [(1, 32), (2, 32), (2, 8), (4, 16)])
def test_tokenize_untokenize_round_trip(patch):
    cfg = preset("tiny", depth=1, point_patch=patch[0], time_patch=patch[1])
    model = TraceFlowNet(cfg)
    x = torch.randn(2, 400, 32, 3)
    tokens = model.tokenize(x, torch.zeros(2, 400, 6))
    assert tokens.shape == (2, cfg.num_tokens, patch[0] ** 2 * (patch[1] * 3 + 6))
    torch.testing.assert_close(model.untokenize(tokens[..., : patch[0] ** 2 * patch[1] * 3]), x)


def test_zero_init_v_prediction_gives_zero_velocity(tiny):
    model = TraceFlowNet(preset("tiny", depth=2, prediction="v"))
    x = torch.randn(2, 400, 32, 3)
    v = model(x, torch.rand(2), **_inputs(model.cfg))
    assert v.shape == (2, 400, 32, 3) and (v == 0).all()


def test_zero_init_x_prediction_gives_zero_velocity_and_an_open_gate_flows_to_x_hat(tiny):
    model = TraceFlowNet(tiny)
    x, t = torch.randn(2, 400, 32, 3), torch.tensor([0.0, 0.5])
    assert (model(x, t, **_inputs(tiny)) == 0).all()
    with torch.no_grad():
        model.skip_gate.fill_(1.0)  # tanh(1e4) = 1: the trained regime, v = (x_hat - x) / (1 - t) with x_hat = 0
    torch.testing.assert_close(model(x, t, **_inputs(tiny)), -x / (1 - t).reshape(-1, 1, 1, 1))


@pytest.mark.parametrize("trace_input", ["time-scaled", "raw"])
def test_time_scaled_input_makes_x_hat_at_t0_the_condition_s_alone(trace_input):
    """At t = 0, x_t is pure noise, independent of the data: the best x_hat is the condition's mean
    trace. With time-scaled input the head cannot see the noise there; with raw input it can."""
    cfg = preset("tiny", depth=1, trace_input=trace_input)
    model = TraceFlowNet(cfg)
    torch.nn.init.normal_(model.token_out.weight, std=0.05)
    torch.nn.init.normal_(model.adaptive_out[1].weight, std=0.05)
    with torch.no_grad():
        model.skip_gate.fill_(1.0)
    t, inputs = torch.zeros(2), _inputs(cfg)
    x_hats = [model(x, t, **inputs) + x for x in (torch.randn(2, 400, 32, 3), torch.randn(2, 400, 32, 3))]
    if trace_input == "time-scaled":
        torch.testing.assert_close(x_hats[0], x_hats[1])
    else:
        assert not torch.allclose(x_hats[0], x_hats[1])
    assert x_hats[0].abs().max() > 0


def test_trained_head_depends_on_condition_and_null_condition_ignores_it(tiny):
    model = TraceFlowNet(tiny)
    torch.nn.init.normal_(model.token_out.weight, std=0.05)
    torch.nn.init.normal_(model.adaptive_out[1].weight, std=0.05)
    x, t = torch.randn(2, 400, 32, 3), torch.full((2,), 0.3)
    inputs = _inputs(tiny)
    other = dict(inputs, texts=["push the blue cube up", "slide it down"], image=-inputs["image"])
    assert not torch.allclose(model(x, t, **inputs), model(x, t, **other))
    drop = torch.ones(2, dtype=torch.bool)
    torch.testing.assert_close(model(x, t, **inputs, drop=drop), model(x, t, **other, drop=drop))


def test_masked_entries_get_no_gradient_through_the_model(tiny):
    model = TraceFlowNet(preset("tiny", depth=1, prediction="v"))
    torch.nn.init.normal_(model.token_out.weight, std=0.05)
    torch.nn.init.normal_(model.adaptive_out[1].weight, std=0.05)
    x = torch.randn(2, 400, 32, 3, requires_grad=True)
    out = model(x, torch.rand(2), **_inputs(model.cfg))
    out.retain_grad()
    mask = torch.zeros_like(out, dtype=torch.bool)
    mask[:, :10, :5, :2] = True
    masked_velocity_loss(out, torch.full_like(out, float("nan")).where(~mask, 1.0), mask).backward()
    assert (out.grad[~mask] == 0).all() and (out.grad[mask] != 0).all()
    assert torch.isfinite(x.grad).all()


def test_presets_build_and_grow():
    sizes = {name: count_parameters(TraceFlowNet(preset(name))) for name in ("tiny", "small")}
    assert 1e6 < sizes["tiny"] < sizes["small"] < 3e7
    base = preset("base")
    assert base.depth == 6 and base.width == 768


def test_cross_attention_on_cached_keys_equals_recomputing_them():
    """The condition's keys and values are computed once per prediction and reused by every step."""
    from model.network import Attention

    torch.manual_seed(0)
    attention = Attention(64, 4)
    x, context = torch.randn(2, 10, 64), torch.randn(2, 7, 64)
    pad = torch.tensor([[False] * 7, [False] * 5 + [True] * 2])
    cached = attention.context_key_value(context)
    torch.testing.assert_close(attention(x, context, pad), attention(x, pad=pad, key_value=cached), rtol=0, atol=0)
    torch.testing.assert_close(attention(x), attention(x, key_value=attention.context_key_value(x)), rtol=0, atol=0)
