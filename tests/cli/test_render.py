"""Trace overlays: paths land where the trace says, coloured by time and by z; PNGs round-trip."""

import cv2
import numpy as np
import pytest

from tracegen_cli.render import BANNER_HEIGHT, LEGEND_HEIGHT, _colormap, render_trace_overlay, save_png

H, W, L = 60, 80, 9


def _one_moving_point(z_start=0.5, z_end=1.0):
    """A trace where only point 0 is drawn: a horizontal move from u=10 to u=70 along v=30."""
    traj = np.full((400, L, 3), np.nan, np.float32)
    traj[0, :, 0] = np.linspace(10, 70, L)
    traj[0, :, 1] = 30
    traj[0, :, 2] = np.linspace(z_start, z_end, L)
    valid = np.ones(L, bool)
    return traj, valid


def _panels(out, scale):
    body = out[BANNER_HEIGHT : BANNER_HEIGHT + H * scale]
    return body[:, : W * scale], body[:, W * scale :]


def _at(panel, u, v, scale):
    """Pixel of the upscaled panel at image coordinates (u, v) (pixel-centre convention)."""
    return panel[int(round((v + 0.5) * scale - 0.5)), int(round((u + 0.5) * scale - 0.5))].astype(int)


def test_output_layout_and_upscale():
    image = np.full((H, W, 3), 128, np.uint8)
    traj, valid = _one_moving_point()
    out = render_trace_overlay(image, traj, valid, title="push the block")
    scale = 6  # ceil(480 / 80)
    assert out.shape == (BANNER_HEIGHT + H * scale + LEGEND_HEIGHT, 2 * W * scale, 3) and out.dtype == np.uint8


def test_path_is_coloured_by_time_and_by_depth():
    image = np.full((H, W, 3), 128, np.uint8)
    traj, valid = _one_moving_point()
    out = render_trace_overlay(image, traj, valid)
    time_panel, depth_panel = _panels(out, 6)
    plasma = _colormap(np.linspace(0, 1, L), cv2.COLORMAP_PLASMA).astype(int)  # (L, 3)
    # a segment takes its end step's colour: the middle of segment 1->2 has step 2's colour
    mid_early = _at(time_panel, (traj[0, 1, 0] + traj[0, 2, 0]) / 2, 30, 6)
    mid_late = _at(time_panel, (traj[0, 6, 0] + traj[0, 7, 0]) / 2, 30, 6)
    assert np.abs(mid_early - plasma[2]).max() <= 12 and np.abs(mid_late - plasma[7]).max() <= 12
    # off the path the photo is untouched
    assert (_at(time_panel, 40, 10, 6) == 128).all()
    # z grows along the path: start is near (red in the jet map), end far (blue)
    near, far = _at(depth_panel, traj[0, 1, 0], 30, 6), _at(depth_panel, (traj[0, 6, 0] + traj[0, 7, 0]) / 2, 30, 6)
    assert near[0] > near[2] + 100 and far[2] > far[0] + 100


def test_two_d_only_trace_is_drawn_without_depth_colours():
    image = np.full((H, W, 3), 128, np.uint8)
    traj, valid = _one_moving_point()
    traj[..., 2] = np.nan
    _, depth_panel = _panels(render_trace_overlay(image, traj, valid), 6)
    assert (_at(depth_panel, (traj[0, 3, 0] + traj[0, 4, 0]) / 2, 30, 6) == 200).all()


def test_invalid_and_hidden_steps_are_not_drawn():
    image = np.full((H, W, 3), 128, np.uint8)
    traj, valid = _one_moving_point()
    valid[5:] = False
    visible = np.ones((400, L), bool)
    time_panel, _ = _panels(render_trace_overlay(image, traj, valid, visible), 6)
    assert (_at(time_panel, (traj[0, 6, 0] + traj[0, 7, 0]) / 2, 30, 6) == 128).all()
    assert not (_at(time_panel, (traj[0, 1, 0] + traj[0, 2, 0]) / 2, 30, 6) == 128).all()


def test_bad_shapes_are_refused():
    traj, valid = _one_moving_point()
    with pytest.raises(ValueError, match="uint8"):
        render_trace_overlay(np.zeros((H, W), np.uint8), traj, valid)
    with pytest.raises(ValueError, match="do not match"):
        render_trace_overlay(np.zeros((H, W, 3), np.uint8), traj, valid[:-1])


def test_save_png_round_trips_and_leaves_no_temporary(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (7, 9, 3), dtype=np.uint8)
    path = save_png(tmp_path / "o.png", rgb)
    assert np.array_equal(cv2.imread(str(path))[..., ::-1], rgb)
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"]


def test_executed_path_is_drawn_in_magenta_over_the_time_panel():
    from store.trace import NUM_POINTS, grid_points
    from tracegen_cli.render import EXECUTED_COLOUR

    image = np.zeros((48, 64, 3), dtype=np.uint8)
    traj = np.repeat(np.concatenate([grid_points(64, 48), np.full((NUM_POINTS, 1), 0.5, np.float32)], 1)[:, None], 4, 1)
    valid = np.ones(4, dtype=bool)
    executed = np.array([[5.0, 40.0], [30.0, 40.0], [60.0, 40.0]])  # a horizontal path at v = 40
    plain = render_trace_overlay(image, traj, valid).astype(int)
    picture = render_trace_overlay(image, traj, valid, executed_uv=executed).astype(int)
    scale = -(-480 // 64)
    row = BANNER_HEIGHT + round((40 + 0.5) * scale - 0.5)
    magenta = np.abs(picture - np.array(EXECUTED_COLOUR)).sum(-1) < 40  # (H, W)
    assert magenta[row, : 64 * scale].sum() > 40 * scale  # along the executed row, in the time panel
    assert not magenta[:, 64 * scale :].any()  # not in the z panel
    assert not (np.abs(plain - np.array(EXECUTED_COLOUR)).sum(-1) < 40).any()  # only when asked for


def test_titles_are_drawn_in_ascii_so_no_question_marks_appear():
    from tracegen_cli.render import _banner, ascii_text

    assert ascii_text("place_block · adapted — 3×4 → ok") == "place_block - adapted - 3x4 -> ok"
    assert ascii_text("café") == "caf?"  # anything without a stand-in is marked, not dropped
    np.testing.assert_array_equal(_banner(400, "a · b"), _banner(400, "a - b"))
