"""ADE/FDE against hand-computed answers."""

import numpy as np
import pytest

from model.evaluate import trace_errors


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
