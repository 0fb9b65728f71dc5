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
