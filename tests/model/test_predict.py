"""The inference API: shapes, coordinates of the input image, depth handling, seeds, input checks."""

import numpy as np
import pytest
import torch

from model.config import preset
from model.network import TraceFlowNet
from model.predict import PredictError, predict_traces
from store.trace import grid_points


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = TraceFlowNet(preset("tiny", depth=1)).eval()
    with torch.no_grad():
        net.token_out.weight.normal_(0, 0.02)
        net.adaptive_out[1].weight.normal_(0, 0.02)
    return net


def _scene(height=90, width=120):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 1.5, (height, width)).astype(np.float32)
    intrinsics = np.array([[100, 0, 60], [0, 100, 45], [0, 0, 1]], dtype=np.float32)
    return image, depth, intrinsics


def test_shapes_start_on_the_grid_and_depth(model):
    image, depth, intrinsics = _scene()
    traj, valid = predict_traces(model, image, depth, intrinsics, "move the cup", num_samples=3, steps=2)
    assert traj.shape == (3, 400, 33, 3) and traj.dtype == np.float32 and valid.shape == (33,) and valid.all()
    np.testing.assert_allclose(traj[:, :, 0, :2], np.broadcast_to(grid_points(120, 90), (3, 400, 2)), atol=1e-4)
    grid = grid_points(120, 90).round().astype(int)
    np.testing.assert_allclose(traj[0, :, 0, 2], depth[grid[:, 1], grid[:, 0]], atol=1e-6)
    assert np.isfinite(traj).all()
    steps = np.abs(np.diff(traj[..., :2], axis=2))
    assert (steps <= 0.05 * np.array([120, 90]) + 1e-3).all()  # one clamped unit per step at most


def test_without_depth_z_is_nan_and_seeds_repeat(model):
    image, _, intrinsics = _scene()
    first, _ = predict_traces(model, image, None, intrinsics, "move the cup", seed=5, steps=2, sampler="euler")
    again, _ = predict_traces(model, image, None, intrinsics, "move the cup", seed=5, steps=2, sampler="euler")
    other, _ = predict_traces(model, image, None, intrinsics, "move the cup", seed=6, steps=2, sampler="euler")
    assert np.isnan(first[..., 2]).all()
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    guided, _ = predict_traces(model, image, None, intrinsics, "move the cup", seed=5, steps=2, guidance=3.0)
    assert guided.shape == first.shape and not np.allclose(guided, first)


def test_bad_inputs_are_named(model):
    image, depth, intrinsics = _scene()
    with pytest.raises(PredictError, match="uint8"):
        predict_traces(model, image.astype(np.float32), depth, intrinsics, "x")
    with pytest.raises(PredictError, match="depth has shape"):
        predict_traces(model, image, depth[:10], intrinsics, "x")
    with pytest.raises(PredictError, match="intrinsics"):
        predict_traces(model, image, depth, np.zeros((3, 3)), "x")


def test_temperature_scales_the_spread_and_zero_is_deterministic(model):
    image, depth, intrinsics = _scene()

    def spread(temperature, seed=0):
        traj, _ = predict_traces(model, image, depth, intrinsics, "move the cup", num_samples=4, steps=2,
                                 seed=seed, temperature=temperature)
        return traj, float(traj[..., :2].std(axis=0).mean())

    cold, cold_spread = spread(0.0)
    assert cold_spread == 0.0  # every hypothesis is the same trace...
    np.testing.assert_array_equal(cold, spread(0.0, seed=9)[0])  # ...whatever the seed
    assert 0.0 < spread(0.5)[1] < spread(1.0)[1]
    with pytest.raises(PredictError, match=r"temperature 1.5 is outside \[0, 1\]"):
        predict_traces(model, image, depth, intrinsics, "x", temperature=1.5)
