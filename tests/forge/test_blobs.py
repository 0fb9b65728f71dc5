"""Points on a small plain-coloured object are found again by its colour after an occlusion, where they truly
are, and not when two regions of that colour and size could be it."""

import cv2
import numpy as np
import pytest

from forge.config import ForgeConfig
from forge.errors import InputError
from forge.tracking import PLAIN_BLOB_TOLERANCE, PLAIN_COLOUR_STEP, LKSettings, track_grids
from store.trace import grid_points
from tests.forge.synthetic import make_texture

WIDTH, HEIGHT, RADIUS = 160, 120, 9
START, END = np.array([40.0, 45.0]), np.array([104.0, 72.0])  # the ball's centre before and after
BEFORE, AFTER = (200, 60, 40), (214, 72, 50)  # its colour: lit differently once it has moved


def _occluded_ball(twin: bool = False, frames: int = 16):
    """A plain ball on a textured table: a grey band covers it (frames 4-9) while it moves from START to END, and
    its shading changes (a look `forge.reacquire`'s templates do not match). With `twin`, a second ball of the same
    colour lies elsewhere once the band is gone. Returns colour frames and the ball's offset per frame."""
    table = make_texture(4)[100 : 100 + HEIGHT, 200 : 200 + WIDTH]
    colour, offsets = [], []
    for t in range(frames):
        progress = np.clip((t - 4) / 5, 0.0, 1.0)
        centre = START + progress * (END - START)
        frame = table.copy()
        cv2.circle(frame, tuple(int(c) for c in np.round(centre)), RADIUS, BEFORE if t < 4 else AFTER, -1)
        if 4 <= t <= 9:
            frame[30:90, 26:124] = (90, 90, 90)
        if twin and t > 9:
            cv2.circle(frame, (30, 100), RADIUS, AFTER, -1)
        colour.append(frame)
        offsets.append(np.round(centre) - np.round(START))
    return np.stack(colour), np.array(offsets)


def _track(colour, **plain):
    grey = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in colour])
    defaults = ForgeConfig()  # forge's fallbacks for plain regions, as forge tracks
    settings = LKSettings(still_diff=defaults.still_patch, flow_fallback=defaults.flow_fallback, reacquire_every=2, **plain)
    (track,) = track_grids(grey, 0, [0], len(grey), settings, colour=colour)
    return track


PLAIN = {"colour_step": PLAIN_COLOUR_STEP, "blob_tolerance": PLAIN_BLOB_TOLERANCE}


def _on_ball(grid: np.ndarray) -> np.ndarray:
    return np.linalg.norm(grid - START, axis=1) < RADIUS - 2


def test_a_plain_ball_that_moved_behind_an_occluder_is_found_by_its_colour():
    colour, offsets = _occluded_ball()
    grid = grid_points(WIDTH, HEIGHT)
    on_ball = _on_ball(grid)
    assert on_ball.sum() >= 2
    assert not _track(colour).visible[on_ball, -1].any()  # its look changed: the templates do not find it
    track = _track(colour, **PLAIN)
    truth = grid[on_ball] + offsets[-1]
    assert track.visible[on_ball, -1].all()
    assert np.linalg.norm(track.uv[on_ball, -1] - truth, axis=-1).max() < 2.0
    assert not track.visible[on_ball, 5:10].any()  # unseen while covered: nothing made up


def test_two_balls_of_one_colour_place_nothing():
    colour, _ = _occluded_ball(twin=True)
    on_ball = _on_ball(grid_points(WIDTH, HEIGHT))
    assert not _track(colour, **PLAIN).visible[on_ball, 10:].any()


def test_plain_objects_need_reacquisition():
    with pytest.raises(InputError, match="reacquire-every 4"):
        ForgeConfig(plain_objects=True, reacquire_every=0)
    assert "plain_objects" not in ForgeConfig().hashed()  # off: stores forged before it keep their key
    assert ForgeConfig(plain_objects=True).hashed()["plain_objects"] is True


@pytest.mark.parametrize("channels", [3, 1])
def test_flood_fill_region_is_the_connected_component_holding_the_point(channels):
    """`_region_at` (one flood fill, what the query-frame blob uses) finds exactly `_regions`' region: same
    area, bounding box and pixels, on a blurred image of plain patches over texture."""
    from forge.blobs import _region_at, _regions

    rng = np.random.default_rng(3)
    image = np.ascontiguousarray(make_texture(4)[:96, :128])
    for _ in range(12):  # plain patches, some touching each other or the border
        x, y, w, h = rng.integers(0, 110), rng.integers(0, 80), rng.integers(3, 30), rng.integers(3, 30)
        image[y:y + h, x:x + w] = rng.integers(0, 256, 3)
    image = cv2.blur(image if channels == 3 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (3, 3))
    for u, v in rng.integers(0, [128, 96], size=(60, 2)):
        labels, stats, _ = _regions(image, image[v, u].astype(np.float32), PLAIN_BLOB_TOLERANCE)
        label = labels[v, u]
        area, box, region = _region_at(image, int(u), int(v), PLAIN_BLOB_TOLERANCE)
        x, y, w, h = box
        assert label > 0 and area == stats[label, cv2.CC_STAT_AREA] and box == tuple(stats[label, :4])
        assert np.array_equal(region > 0, labels[y:y + h, x:x + w] == label)
