"""Normalised deltas: exact round trips, clamping, and masks for padded steps and missing depth."""

import numpy as np
import torch

from model.normalize import UV_STEP_SCALE, Z_STEP_SCALE, deltas_to_traj, traj_to_deltas
from store.trace import grid_points


def _trace(width=160, height=120, steps=8, valid_steps=5, with_z=True, seed=0):
    rng = np.random.default_rng(seed)
    start = np.concatenate([grid_points(width, height), rng.uniform(0.5, 2.0, (400, 1))], axis=1)
    motion = rng.uniform(-0.8, 0.8, (400, steps, 3)) * [UV_STEP_SCALE * width, UV_STEP_SCALE * height, Z_STEP_SCALE]
    traj = np.concatenate([start[:, None], start[:, None] + np.cumsum(motion, axis=1)], axis=1).astype(np.float32)
    valid = np.arange(steps + 1) <= valid_steps
    traj[:, ~valid] = np.nan
    if not with_z:
        traj[..., 2] = np.nan
    return traj, valid


def test_round_trip_is_exact_on_valid_steps():
    traj, valid = _trace()
    start, deltas, mask = traj_to_deltas(traj, valid, 160, 120, steps=8)
    assert start.shape == (400, 3) and deltas.shape == (400, 8, 3) and mask.shape == (400, 8, 3)
    assert np.abs(deltas).max() <= 1.0
    back = deltas_to_traj(torch.from_numpy(start), torch.from_numpy(deltas), 160, 120, True).numpy()
    np.testing.assert_allclose(back[:, valid], traj[:, valid], atol=2e-4)
    np.testing.assert_allclose(start[:, :2], (traj[:, 0, :2] + 0.5) / [160, 120], atol=1e-6)


def test_a_trace_that_ended_is_held_where_it_ended_and_missing_depth_is_masked():
    traj, valid = _trace(valid_steps=5, with_z=False)
    traj[7, 5] = np.nan  # point 7 is unknown at the last valid step: nothing to hold it at
    _, deltas, mask = traj_to_deltas(traj, valid, 160, 120, steps=8)
    assert mask[:, :4, :2].all()  # step l is real when steps l-1 and l are
    held = np.delete(np.arange(400), 7)
    assert mask[held, 5:, :2].all() and (deltas[:, 5:] == 0).all()  # after the end: zero deltas, trained
    assert not mask[7, 4:].any()
    assert not mask[..., 2].any()
    assert (deltas[~mask] == 0).all() and np.isfinite(deltas).all()
    back = deltas_to_traj(torch.from_numpy(np.zeros((400, 3), np.float32)), torch.from_numpy(deltas), 160, 120, False)
    assert torch.isnan(back[..., 2]).all()


def test_the_hold_starts_exactly_after_the_last_valid_step():
    scale = np.array([UV_STEP_SCALE * 160, UV_STEP_SCALE * 120, Z_STEP_SCALE])
    for last in (6, 7, 8):  # ended two steps and one step inside the horizon, and exactly at it
        traj, valid = _trace(valid_steps=last)
        _, deltas, mask = traj_to_deltas(traj, valid, 160, 120, steps=8)
        assert mask.all()
        true = np.clip((traj[:, 1 : last + 1] - traj[:, :last]) / scale, -1, 1)
        np.testing.assert_allclose(deltas[:, :last], true, atol=1e-5)  # every real step is its own motion ...
        assert (np.abs(deltas[:, last - 1]) > 0).any()
        assert (deltas[:, last:] == 0).all()  # ... and only the steps after the last are held
    longer, longer_valid = _trace(steps=12, valid_steps=10)
    _, deltas, mask = traj_to_deltas(longer, longer_valid, 160, 120, steps=8)  # cut to the horizon, not ended
    assert mask.all() and (np.abs(deltas[:, -1]) > 0).any()


def test_large_steps_are_clamped_to_one():
    traj, valid = _trace()
    traj[:, 1, 0] = traj[:, 0, 0] + 3 * UV_STEP_SCALE * 160  # three units in one step
    _, deltas, _ = traj_to_deltas(traj, valid, 160, 120, steps=8)
    assert (deltas[:, 0, 0] == 1.0).all()


def test_batched_integration_with_per_sample_sizes():
    traj_a, valid = _trace(160, 120, seed=1)
    traj_b, _ = _trace(64, 48, seed=2)
    parts = [traj_to_deltas(t, valid, w, h, 8) for t, w, h in ((traj_a, 160, 120), (traj_b, 64, 48))]
    start = torch.from_numpy(np.stack([p[0] for p in parts]))
    deltas = torch.from_numpy(np.stack([p[1] for p in parts]))
    back = deltas_to_traj(start, deltas, torch.tensor([160.0, 64.0]), torch.tensor([120.0, 48.0]), torch.tensor([True, False]))
    np.testing.assert_allclose(back[0][:, valid].numpy(), traj_a[:, valid], atol=2e-4)
    np.testing.assert_allclose(back[1][:, valid, :2].numpy(), traj_b[:, valid, :2], atol=2e-4)
    assert torch.isnan(back[1, ..., 2]).all()
