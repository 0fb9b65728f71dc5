"""Points lost to an occlusion are found again where they truly are, or not at all; unseen stretches
between are bridged by straight lines and kept unseen."""

import cv2
import numpy as np
import pytest

from forge.reacquire import bridge_gaps
from forge.tracking import LKSettings, track_grids
from store.trace import grid_points
from tests.forge.synthetic import make_texture

WIDTH, HEIGHT, SIDE = 160, 120, 20
START, END = np.array([30, 40]), np.array([96, 70])  # the object's top-left corner before and after


def _occluded_move(frames: int = 16, flash: int | None = None):
    """A patterned object on a textured table: a plain band covers it (frames 4-9) while it moves from
    START to END; then the band is gone. With `flash`, a copy of the object shows for that one frame elsewhere.
    Returns colour frames and the object's offset per frame."""
    table = make_texture(4)[100 : 100 + HEIGHT, 200 : 200 + WIDTH]
    rng = np.random.default_rng(1)
    pattern = cv2.resize(rng.integers(0, 256, (5, 5, 3), dtype=np.uint8), (SIDE, SIDE), interpolation=cv2.INTER_NEAREST)
    colour, offsets = [], []
    for t in range(frames):
        progress = np.clip((t - 4) / 5, 0.0, 1.0)
        corner = np.round(START + progress * (END - START)).astype(int)
        frame = table.copy()
        frame[corner[1] : corner[1] + SIDE, corner[0] : corner[0] + SIDE] = pattern
        if 4 <= t <= 9:
            frame[34:96, 24:122] = (90, 90, 90)  # the occluder covers the whole path
        if t == flash:
            frame[4 : 4 + SIDE, 130 : 130 + SIDE] = pattern  # a look-alike for one frame, clear of the band
        colour.append(frame)
        offsets.append(corner - START)
    return np.stack(colour), np.array(offsets, dtype=np.float64)


def _track(colour, every):
    grey = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in colour])
    (track,) = track_grids(grey, 0, [0], len(grey), LKSettings(reacquire_every=every), colour=colour)
    return track


def test_an_object_that_moved_behind_an_occluder_is_found_where_it_reappears():
    colour, offsets = _occluded_move()
    grid = grid_points(WIDTH, HEIGHT)
    on_object = ((grid >= START + 1) & (grid <= START + SIDE - 2)).all(-1)
    assert on_object.sum() >= 4
    plain = _track(colour, every=0)
    assert not plain.visible[on_object, -1].any()  # Lucas-Kanade alone loses them for good

    track = _track(colour, every=2)
    truth = grid[:, None, :] + np.where(on_object[:, None, None], offsets[None], 0.0)  # (K, F, 2)
    error = np.linalg.norm(track.uv - truth, axis=-1)
    assert track.visible[on_object, -1].sum() >= on_object.sum() - 1
    assert error[on_object, -1][track.visible[on_object, -1]].max() < 1.5
    assert not track.visible[on_object, 5:10].any()  # unseen while covered: nothing made up
    # every point found again, anywhere, is where it truly is then and while followed afterwards
    found_again = np.maximum.accumulate(track.visible[:, 1:] & ~track.visible[:, :-1], axis=1)  # (K, F-1)
    claimed = track.visible[:, 1:] & found_again
    assert claimed.sum() > on_object.sum() * 5  # background points come back too, once uncovered
    assert error[:, 1:][claimed].max() < 1.5


def test_a_look_alike_seen_for_one_frame_is_not_taken_for_the_hidden_object():
    colour, _ = _occluded_move(flash=6)  # a look at frame 6 (every 2) sees only the look-alike
    grid = grid_points(WIDTH, HEIGHT)
    on_object = ((grid >= START + 1) & (grid <= START + SIDE - 2)).all(-1)
    track = _track(colour, every=2)
    assert not track.visible[on_object, 5:10].any()  # a match must hold at the next look too


def test_two_points_found_on_one_spot_are_both_dropped():
    """Grid points lie a grid spacing apart: two found within CLASH_PX of each other claim one surface twice."""
    from forge.reacquire import CLASH_PX, _apart

    positions = np.array([[10.0, 10.0], [10.0 + CLASH_PX / 2, 10.0], [40.0, 10.0], [10.0, 11.0]])
    found = np.array([True, True, True, False])  # the last one, not found, clashes with nothing
    assert _apart(found, positions).tolist() == [False, False, True, False]
    assert _apart(np.array([True, False, True, False]), positions).tolist() == [True, False, True, False]


def test_bridge_gaps_fills_only_stretches_seen_on_both_sides():
    raw = np.full((2, 7, 3), np.nan)
    visible = np.zeros((2, 7), dtype=bool)
    raw[0, [1, 5, 6]] = [[0, 0, 1], [8, 4, 3], [9, 4, 3]]
    visible[0, [1, 5, 6]] = True
    raw[1, [0, 1]] = [[5, 5, np.nan], [6, 5, np.nan]]  # 2D-only, lost for good after frame 1
    visible[1, [0, 1]] = True
    filled, bridged = bridge_gaps(raw, visible)
    np.testing.assert_allclose(filled[0, 2:5], [[2, 1, 1.5], [4, 2, 2], [6, 3, 2.5]])
    assert bridged[0].tolist() == [False, False, True, True, True, False, False]
    assert np.isnan(filled[0, 0]).all() and not bridged[1].any() and np.isnan(filled[1, 2:]).all()
    np.testing.assert_array_equal(filled[visible], raw[visible])


@pytest.mark.parametrize("every", [-1])
def test_a_negative_reacquire_interval_is_refused(every):
    from forge.config import ForgeConfig
    from forge.errors import InputError

    with pytest.raises(InputError, match="reacquire_every"):
        ForgeConfig(reacquire_every=every)


def test_forge_keeps_the_bridged_stretch_finite_and_unseen(tmp_path):
    from forge.config import ForgeConfig
    from forge.inputs import VideoSource, read_sidecar
    from forge.pipeline import forge_video
    from tests.forge.synthetic import write_mp4

    colour, offsets = _occluded_move(frames=24)
    path = tmp_path / "occluded_move.mp4"
    write_mp4(path, colour)
    config = ForgeConfig(query_every=64, reacquire_every=2, still_threshold=0.0, cut_threshold=0.0)  # keep every frame
    forged = forge_video(VideoSource(path, False, read_sidecar(path)), config)
    raw = forged.samples.raw_traces[0]  # (K, F, 3) per decoded frame, 2D only here
    ids = np.asarray(forged.forge_attrs["decode"]["frame_ids"])
    grid = grid_points(WIDTH, HEIGHT)
    on_object = ((grid >= START + 1) & (grid <= START + SIDE - 2)).all(-1)
    back = np.isfinite(raw[on_object, len(ids) - 1, 0])
    assert back.sum() >= on_object.sum() - 1  # found again where the object came to rest
    truth = grid[on_object] + offsets[ids[-1]]
    assert np.abs(raw[on_object, len(ids) - 1, :2][back] - truth[back]).max() < 2.0
    covered = (ids >= 5) & (ids <= 9)  # decoded frames while the band hid the object
    assert np.isfinite(raw[np.ix_(on_object, np.flatnonzero(covered))][..., 0]).all()  # bridged, not unknown
    traces, valid, visible = forged.samples.traces[0], forged.samples.valid[0], forged.samples.visible[0]
    moving = on_object & np.isfinite(traces[:, valid][:, -1, 0])
    hidden = np.isfinite(traces[moving][:, valid][..., 0]) & ~visible[moving][:, valid]
    assert hidden.any()  # the retargeted trace holds bridged steps, marked unseen
