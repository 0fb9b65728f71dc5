"""render_sample: segments are drawn where the trace goes, coloured by time (and by depth)."""

import dataclasses

import cv2
import numpy as np
import pytest

from store.errors import StoreError
from store.render import render_sample
from tests.store.conftest import make_video_samples

POINT = 10 * 20 + 10  # a grid point in the middle of the image


def _one_point_moving_right(with_depth: bool):
    samples = make_video_samples(num_samples=1, with_depth=with_depth)
    traces = np.full_like(samples.traces, np.nan)
    steps = 20
    start = samples.traces[0, POINT, 0]
    traces[0, :, : steps + 1] = samples.traces[0, :, :1]  # every point still ...
    traces[0, POINT, : steps + 1, 0] = start[0] + np.arange(steps + 1)  # ... but one moves 1 px/step right
    traces[0, POINT, : steps + 1, 2] = 1.0 + 0.05 * np.arange(steps + 1) if with_depth else np.nan
    valid = np.zeros_like(samples.valid)
    valid[0, : steps + 1] = True
    visible = np.zeros_like(samples.visible)
    visible[0, POINT, : steps + 1] = True
    image = np.zeros_like(samples.image)
    return dataclasses.replace(samples, traces=traces, valid=valid, visible=visible, image=image), start


def assert_colour(pixel, colour):
    """`pixel` is `colour` dimmed by anti-aliasing: a scaled copy (0.5..1.1) within 15 levels."""
    alpha = float(pixel @ colour) / float(colour @ colour)
    assert 0.5 <= alpha <= 1.1 and np.abs(pixel - alpha * colour).max() <= 15, (pixel.tolist(), colour.tolist())


def _lut(colormap):
    return cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(256, 1), colormap)[:, 0, :].astype(int)


@pytest.mark.parametrize("with_depth", [True, False])
def test_segments_are_coloured_by_time_and_depth(tmp_path, with_depth):
    samples, start = _one_point_moving_right(with_depth)
    picture = cv2.imread(str(render_sample(samples, 0, tmp_path / "r.png"))).astype(int)
    scale = 512 / 64
    assert picture.shape == (48 * scale, 64 * scale * (2 if with_depth else 1), 3)
    row = int(round((start[1] + 0.5) * scale - 0.5))  # the row the point moves along
    to_panel = lambda u: int(round((u + 0.5) * scale - 0.5))  # noqa: E731  pixel centres of the upscaled image
    early_x = to_panel(start[0] + 1.5)  # middle of the second segment
    late_x = to_panel(start[0] + 19.5)  # middle of the last segment
    viridis, turbo = _lut(cv2.COLORMAP_VIRIDIS), _lut(cv2.COLORMAP_TURBO)
    assert_colour(picture[row, early_x], viridis[round(255 / 19)])
    assert_colour(picture[row, late_x], viridis[255])
    assert picture[row + 6, late_x].max() <= 10  # nothing drawn off the path (the image is black)
    if with_depth:
        offset = 64 * int(scale)
        assert_colour(picture[row, offset + early_x], turbo[int(round(255 * (1 - 1.5 / 20)))])  # near: red end
        assert_colour(picture[row, offset + late_x], turbo[int(round(255 * (1 - 19.5 / 20)))])  # far: blue end


def test_missing_sample_is_named(tmp_path):
    with pytest.raises(StoreError, match="sample 3 does not exist; this video has samples 0..1"):
        render_sample(make_video_samples(), 3, tmp_path / "r.png")
