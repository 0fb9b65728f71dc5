"""ADE/FDE against hand-computed answers."""

import numpy as np
import pytest

from model.evaluate import motion_errors, moving_points, trace_errors


def _target(valid_steps=4, length=6):
    traj = np.zeros((2, 400, length, 3), dtype=np.float32)
    traj[..., 0] = np.arange(length)[None, None, :] * 10.0
    traj[..., 2] = 2.0
    valid = np.zeros((2, length), bool)
    valid[:, : valid_steps + 1] = True
    return traj, valid


def test_constant_pixel_offset():
    target, valid = _target()
    pred = target.copy()
    pred[..., 0] += 3.0
    pred[..., 1] -= 4.0
    errors = trace_errors(pred, target, valid)
    assert errors["ade_px"] == pytest.approx(5.0) and errors["fde_px"] == pytest.approx(5.0)
    assert errors["count"] == 2 * 400 * 4 and np.isnan(errors["ade_cm"])


def test_fde_uses_each_samples_last_valid_step_and_ade_ignores_the_start_and_padding():
    target, valid = _target()
    valid[1, 3:] = False  # sample 1 ends at step 2
    pred = target.copy()
    pred[0, :, 4, 0] += 8.0  # sample 0's last step
    pred[1, :, 2, 1] += 6.0  # sample 1's last step
    pred[:, :, 0] += 100.0  # the start is never scored
    pred[:, :, 5] += 100.0  # padding is never scored
    errors = trace_errors(pred, target, valid)
    assert errors["fde_px"] == pytest.approx(7.0)
    assert errors["ade_px"] == pytest.approx((8 + 6) * 400 / (400 * 4 + 400 * 2))


def test_centimetres_from_unprojected_points():
    target, valid = _target()
    intrinsics = np.tile(np.array([[200.0, 0, 50], [0, 200.0, 40], [0, 0, 1]]), (2, 1, 1))
    pred = target.copy()
    pred[..., 0] += 1.0  # one pixel at 2 m with f = 200 px is 1 cm
    pred[1, ..., 2] = np.nan  # sample 1 has no depth: only sample 0 scores in cm
    errors = trace_errors(pred, target, valid, intrinsics)
    assert errors["ade_cm"] == pytest.approx(1.0) and errors["fde_cm"] == pytest.approx(1.0)
    pred[0, ..., 2] = 2.1  # 10 cm deeper too: sqrt(dx^2 + 10^2) with dx from the changed depth
    errors = trace_errors(pred, target, valid, intrinsics)
    assert errors["ade_cm"] > 10.0


def test_visibility_mask_limits_scoring():
    target, valid = _target()
    pred = target.copy()
    pred[:, :200, ..., 0] += 2.0
    visible = np.ones((2, 400, 6), bool)
    visible[:, 200:] = False
    assert trace_errors(pred, target, valid, visible=visible)["ade_px"] == pytest.approx(2.0)


def test_motion_errors_score_the_moving_points_against_staying_still():
    """One point of two moves 3 px per step on a 100 px image (over the 1 % threshold), the other 0.5 px once (under)."""
    steps = np.arange(5, dtype=np.float64)
    target = np.zeros((1, 2, 5, 3))
    target[0, 0, :, 0] = 10 + 3 * steps  # moves 12 px by the end
    target[0, 1, :, 0] = 50.0
    target[0, 1, 2:, 0] = 50.5  # jitter under 1 px
    valid = np.ones((1, 5), dtype=bool)
    moving = moving_points(target, valid, np.array([100.0]))
    assert moving[0, :, 0].tolist() == [True, False]
    exact = motion_errors(target, target, valid, np.array([100.0]))
    assert exact["ade_moving_px"] == 0 and exact["moving_points"] == 1
    assert exact["still_ade_moving_px"] == pytest.approx(np.mean(3 * steps[1:]))  # 3, 6, 9, 12
    assert exact["still_fde_moving_px"] == pytest.approx(12.0)
    half = target.copy()
    half[0, 0, :, 0] = 10 + 1.5 * steps  # predicted half the motion
    assert motion_errors(half, target, valid, np.array([100.0]))["ade_moving_px"] == pytest.approx(np.mean(1.5 * steps[1:]))
