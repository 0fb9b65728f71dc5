"""The shared trace conventions: grid, projection, arc-length retargeting, trace files."""

import numpy as np
import pytest

from store.errors import TraceFileError
from store.trace import (
    ARC_STEP,
    NUM_POINTS,
    TraceFile,
    grid_points,
    load_trace_file,
    project,
    retarget_arc_length,
    save_trace_file,
    unproject,
)


def test_grid_is_row_major_and_spans_the_image():
    grid = grid_points(640, 480)
    assert grid.shape == (NUM_POINTS, 2) and grid.dtype == np.float32
    assert tuple(grid[0]) == (0.0, 0.0)
    assert tuple(grid[19]) == (639.0, 0.0)  # end of the first row
    assert tuple(grid[20]) == (0.0, pytest.approx(479 / 19))  # start of the second row
    assert tuple(grid[-1]) == (639.0, 479.0)


def test_unproject_then_project_is_identity():
    intrinsics = np.array([[500.0, 0, 320], [0, 510.0, 240], [0, 0, 1]])
    rng = np.random.default_rng(0)
    uvz = np.stack([rng.uniform(0, 640, 50), rng.uniform(0, 480, 50), rng.uniform(0.3, 3, 50)], -1)
    np.testing.assert_allclose(project(unproject(uvz, intrinsics), intrinsics), uvz, atol=1e-9)
    # the principal point at depth z is on the optical axis
    np.testing.assert_allclose(unproject(np.array([320.0, 240.0, 2.0]), intrinsics), [0, 0, 2.0])


def _moving_block(frames: int, distance_px: float, width=200, height=100, depth=1.0):
    """Points 0..49 move right by `distance_px` at constant speed over `frames`; the rest stay."""
    grid = grid_points(width, height)
    t = np.linspace(0.0, 1.0, frames)
    raw = np.repeat(np.concatenate([grid, np.full((NUM_POINTS, 1), depth, np.float32)], 1)[:, None], frames, 1)
    raw = raw.astype(np.float64)
    raw[:50, :, 0] += distance_px * t[None]
    return raw, np.ones((NUM_POINTS, frames), bool)


def test_retarget_places_steps_at_equal_arc_length():
    # 40 px over a 200 px wide image is 0.2 normalised: exactly 4 steps of 0.05
    raw, visible = _moving_block(frames=21, distance_px=40.0)
    trace = retarget_arc_length(raw, visible, 200, 100)
    assert trace.num_steps == 4
    assert trace.traj.shape == (NUM_POINTS, 129, 3) and trace.traj.dtype == np.float32
    moved = trace.traj[:50, :5, 0] - trace.traj[:50, :1, 0]
    np.testing.assert_allclose(moved, np.tile(np.arange(5) * ARC_STEP * 200, (50, 1)), atol=1e-4)
    np.testing.assert_allclose(trace.frame_index[:5], [0, 5, 10, 15, 20], atol=1e-6)
    assert np.isnan(trace.traj[:, 5:]).all() and not trace.valid[5:].any()


def test_retarget_is_speed_invariant():
    slow = retarget_arc_length(*_moving_block(frames=81, distance_px=60.0), 200, 100)
    fast = retarget_arc_length(*_moving_block(frames=11, distance_px=60.0), 200, 100)
    assert slow.num_steps == fast.num_steps == 6
    np.testing.assert_allclose(slow.traj[:, :7], fast.traj[:, :7], atol=1e-3)


def test_retarget_skips_pauses_and_caps_steps():
    raw, visible = _moving_block(frames=30, distance_px=40.0)
    paused = np.concatenate([raw[:, :1].repeat(20, 1), raw], axis=1)  # 20 still frames first
    trace = retarget_arc_length(paused, np.ones(paused.shape[:2], bool), 200, 100)
    assert trace.num_steps == 4 and trace.frame_index[1] > 19
    capped = retarget_arc_length(*_moving_block(frames=300, distance_px=2000.0), 200, 100, max_steps=128)
    assert capped.num_steps == 128 and capped.valid.all()


def test_retarget_of_2d_only_trace_keeps_z_nan():
    raw, visible = _moving_block(frames=21, distance_px=40.0)
    raw[..., 2] = np.nan
    trace = retarget_arc_length(raw, visible, 200, 100)
    assert trace.num_steps == 4 and np.isnan(trace.traj[..., 2]).all()


def test_retarget_ignores_invisible_points():
    raw, visible = _moving_block(frames=21, distance_px=40.0)
    raw[60, :, 0] += np.linspace(0, 400, 21)  # a wild point ...
    visible[60] = False  # ... that the tracker lost
    assert retarget_arc_length(raw, visible, 200, 100).num_steps == 4


def _trace_file(**overrides):
    fields = dict(
        traj=np.zeros((NUM_POINTS, 33, 3), np.float32),
        valid=np.ones(33, bool),
        intrinsics=np.array([[300, 0, 160], [0, 300, 120], [0, 0, 1]], np.float32),
        image_size=(240, 320),
        instruction="put the block in the bin",
        checkpoint_id="abc123",
    )
    fields.update(overrides)
    return TraceFile(**fields)


def test_trace_file_round_trip(tmp_path):
    trace = _trace_file(samples=np.ones((2, NUM_POINTS, 33, 3), np.float32))
    loaded = load_trace_file(save_trace_file(tmp_path / "t.npz", trace))
    np.testing.assert_array_equal(loaded.traj, trace.traj)
    np.testing.assert_array_equal(loaded.samples, trace.samples)
    assert (loaded.image_size, loaded.instruction, loaded.checkpoint_id) == ((240, 320), trace.instruction, "abc123")
    assert not list(tmp_path.glob(".*tmp*"))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(traj=np.zeros((399, 33, 3), np.float32)), "traj has shape"),
        (dict(traj=np.zeros((NUM_POINTS, 33, 3), np.float16)), "dtype float16"),
        (dict(valid=np.ones(32, bool)), "valid has shape"),
        (dict(intrinsics=np.zeros((3, 3), np.float32)), "intrinsics"),
        (dict(image_size=(0, 320)), "image_size"),
    ],
)
def test_trace_file_names_the_mismatch(overrides, message):
    with pytest.raises(TraceFileError, match=message):
        _trace_file(**overrides)


def test_loading_a_foreign_npz_names_the_missing_keys(tmp_path):
    np.savez(tmp_path / "other.npz", traj=np.zeros(3))
    with pytest.raises(TraceFileError, match="lacks valid, intrinsics"):
        load_trace_file(tmp_path / "other.npz")
    with pytest.raises(TraceFileError, match="does not exist"):
        load_trace_file(tmp_path / "missing.npz")


def test_retarget_keeps_an_exact_step_when_the_point_is_lost_right_after():
    raw, visible = _moving_block(frames=21, distance_px=40.0)
    raw[0, 6:] = np.nan  # point 0 is lost after frame 5, which is exactly step 1
    visible[0, 6:] = False
    trace = retarget_arc_length(raw, visible, 200, 100)
    assert trace.frame_index[1] == pytest.approx(5.0)
    assert trace.visible[0, 1] and np.isfinite(trace.traj[0, 1]).all()
    np.testing.assert_allclose(trace.traj[0, 1, 0], raw[0, 5, 0], atol=1e-4)
