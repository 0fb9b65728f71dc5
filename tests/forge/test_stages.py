"""Unit truths of forge's stages: decoding, cuts, tracking, sidecars, depth, geometry."""

import json

import cv2
import numpy as np
import pytest

from forge.camera import COLMAP_PIXEL_OFFSET, background_motion, interpolate_poses, sfm_options
from forge.config import ForgeConfig
from forge.decode import decode_source, split_at_cuts, still_frame_mask
from forge.depth import load_sensor_depth, sample_depth
from forge.errors import DepthError, InputError, VideoReadError
from forge.inputs import read_sidecar
from forge.lift import depth_jumped, sparse_depth, triangulate_tracks
from forge.tracking import LKSettings, query_frames, track_grids
from store.trace import grid_points, project
from tests.forge.synthetic import look_at, make_texture, write_mp4


def _texture_frames(shifts, size=(160, 120)):
    texture = make_texture(3)
    width, height = size
    return np.stack([np.ascontiguousarray(texture[50 + dy : 50 + dy + height, 80 + dx : 80 + dx + width])
                     for dx, dy in shifts])


def test_lk_follows_a_known_translation():
    frames = _texture_frames([(2 * t, t) for t in range(10)])  # content moves left/up by (2, 1) px per frame
    grey = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
    (track,) = track_grids(grey, 0, [0], 128, LKSettings())
    expected = grid_points(160, 120)[:, None, :] - np.array([2.0, 1.0]) * np.arange(10)[None, :, None]
    interior = (expected >= 6).all(-1) & (expected[..., 0] <= 153) & (expected[..., 1] <= 113)
    seen = track.visible & interior  # away from the border, where the LK window is whole
    assert seen[:, -1].sum() > 200
    assert np.abs(track.uv - expected)[seen].max() < 0.05


def test_a_lost_point_is_never_reseeded():
    frames = _texture_frames([(0, 0)] * 8)
    frames[3:5, 40:80, 50:100] = 255 - frames[3:5, 40:80, 50:100]  # occlude, then reveal again
    grey = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
    (track,) = track_grids(grey, 0, [0], 128, LKSettings())
    lost = ~track.visible[:, 3]
    assert lost.sum() > 5
    assert not track.visible[lost, 3:].any()  # once lost, lost for good even though the patch came back
    assert np.isnan(track.uv[lost, 3:]).all()
    assert track.visible[~lost].all()


def _flat_square_frames(offsets, size=(160, 120), side=50):
    """A uniformly coloured square (no texture inside) at top-left corner (60 + dx, 30 + dy) over a
    static texture, one frame per (dx, dy); the texture's left third is flattened to a plain wall."""
    frames = _texture_frames([(0, 0)] * len(offsets), size)
    frames[:, :, :40] = 90  # a textureless wall: LK finds no gradient there
    for frame, (dx, dy) in zip(frames, offsets, strict=True):
        frame[30 + dy : 30 + dy + side, 60 + dx : 60 + dx + side] = (200, 180, 40)
    return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])


def test_textureless_points_stay_put_while_nothing_moves_there():
    grey = _flat_square_frames([(0, 0)] * 6)
    (plain,) = track_grids(grey, 0, [0], 128, LKSettings(still_diff=0.0, flow_fallback=0.0))
    (track,) = track_grids(grey, 0, [0], 128, LKSettings(still_diff=2.0, flow_fallback=0.0))
    assert plain.visible[:, -1].sum() < 330  # LK alone gives up the wall and the square's inside
    assert track.visible.all()
    np.testing.assert_allclose(track.uv[:, -1], track.uv[:, 0], atol=0.05)


def test_dense_flow_follows_a_plain_object_lucas_kanade_loses():
    offsets = [(2 * t, t) for t in range(8)]  # the square moves right/down by (2, 1) px per frame
    grey = _flat_square_frames(offsets)
    grid = grid_points(160, 120)
    inside = (grid[:, 0] > 66) & (grid[:, 0] < 104) & (grid[:, 1] > 36) & (grid[:, 1] < 74)  # well inside the square
    (plain,) = track_grids(grey, 0, [0], 128, LKSettings(still_diff=2.0, flow_fallback=0.0))
    (track,) = track_grids(grey, 0, [0], 128, LKSettings(still_diff=2.0, flow_fallback=1.0))
    assert inside.sum() >= 20
    assert plain.visible[inside, -1].sum() <= inside.sum() - 10  # LK alone loses a third or more of them
    kept = track.visible[:, -1] & inside
    assert kept.sum() >= 0.8 * inside.sum()
    motion = np.array([2.0, 1.0]) * (len(offsets) - 1)
    error = np.linalg.norm(track.uv[kept, -1] - (grid[kept] + motion), axis=-1)
    # DIS fills a 50 px flat interior from its edges and lags (~70 % of the motion): the points move with
    # the square, not exactly; on a robot's narrower links it does better (see forge.tracking)
    assert np.median(error) < 0.5 * np.linalg.norm(motion) and error.max() < 0.75 * np.linalg.norm(motion)


def test_a_depth_jump_ends_the_track():
    z = np.array([[1.0, 1.01, 1.02, 1.6, 1.02, 1.03],  # slid onto another surface at frame 3
                  [0.5, 0.5, np.nan, 0.5, 0.52, 0.53],  # unknown depth is not a jump
                  [2.0, 2.1, 2.2, 2.3, 2.4, 2.5]])  # 5 % per frame: real motion
    visible = np.isfinite(z)
    jumped = depth_jumped(z, visible)
    np.testing.assert_array_equal(jumped[0], [False, False, False, True, True, True])
    assert not jumped[1:].any()


def test_query_frames_leave_room_for_a_trace():
    assert query_frames(10, 60, 16, 8) == [10, 26, 42]
    assert query_frames(0, 5, 16, 8) == []


def test_cuts_split_shots_and_still_frames_are_dropped():
    one = _texture_frames([(t, 0) for t in range(12)])
    two = _texture_frames([(0, t) for t in range(6)] + [(0, 5)] * 6)
    two = np.ascontiguousarray(two[:, ::-1, ::-1, [2, 0, 1]])  # a different shot
    # the second shot stands still after its sixth frame
    thumbs = np.stack([cv2.resize(f, (80, 60)) for f in np.concatenate([one, two])])
    segments = split_at_cuts(thumbs, 0.6, 4)
    assert segments == [(0, 12), (12, 24)]
    keep = still_frame_mask(thumbs, segments, 0.4)
    assert keep[:18].all() and not keep[18:].any()


def test_decode_caps_size_and_rejects_broken_files(tmp_path):
    frames = _texture_frames([(t, 0) for t in range(12)], size=(320, 240))
    write_mp4(tmp_path / "ok.mp4", frames)
    decoded = decode_source(tmp_path / "ok.mp4", False, ForgeConfig(max_side=160, stride=2, min_segment_frames=4))
    assert decoded.frames.shape == (6, 120, 160, 3) and decoded.scale == 0.5
    assert decoded.frame_ids.tolist() == [0, 2, 4, 6, 8, 10] and decoded.source_frame_count == 12
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoReadError, match="empty"):
        decode_source(tmp_path / "empty.mp4", False, ForgeConfig())
    (tmp_path / "cut.mp4").write_bytes((tmp_path / "ok.mp4").read_bytes()[:3000])
    with pytest.raises(VideoReadError):
        decode_source(tmp_path / "cut.mp4", False, ForgeConfig())
    with pytest.raises(VideoReadError, match="absurd"):
        decode_source(tmp_path / "ok.mp4", False, ForgeConfig(max_pixels=1000))


def test_sidecars_parse_and_bad_ones_name_the_problem(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "a.json").write_text(json.dumps({
        "instructions": ["pick the cup", "grab it"], "embodiment": "robot", "fps": 15,
        "intrinsics": {"fx": 500, "fy": 510, "cx": 320, "cy": 240}, "depth_units": "m"}))
    (tmp_path / "a.depth.npz").write_bytes(b"")
    sidecar = read_sidecar(tmp_path / "a.mp4")
    assert sidecar.instructions == ["pick the cup", "grab it"] and sidecar.embodiment == "robot"
    assert sidecar.fps == 15.0 and sidecar.depth_units == 1.0 and sidecar.depth_path == tmp_path / "a.depth.npz"
    assert sidecar.intrinsics[1, 1] == 510 and sidecar.intrinsics[0, 2] == 320
    (tmp_path / "b.mp4").write_bytes(b"x")
    (tmp_path / "b.txt").write_text("wipe the table\n")
    assert read_sidecar(tmp_path / "b.mp4").instructions == ["wipe the table"]
    (tmp_path / "c.mp4").write_bytes(b"x")
    (tmp_path / "c.json").write_text('{"intrinsics": {"fx": 1}}')
    with pytest.raises(InputError, match="intrinsics"):
        read_sidecar(tmp_path / "c.mp4")
    with pytest.raises(InputError, match="--depth"):
        ForgeConfig(depth="lidar")


def test_sensor_depth_png_units_and_shape_checks(tmp_path):
    folder = tmp_path / "v.depth"
    folder.mkdir()
    for t in range(3):
        cv2.imwrite(str(folder / f"{t:03d}.png"), np.full((40, 60), 1000 + t, np.uint16))
    depth = load_sensor_depth(folder, 0.001, np.array([0, 2]), 3, (40, 60), (20, 30))
    assert depth.shape == (2, 20, 30) and np.allclose(depth[1], 1.002)
    np.savez(tmp_path / "w.depth.npz", depth=np.ones((3, 10, 10), np.float32))
    with pytest.raises(DepthError, match="depth frames are 10x10"):
        load_sensor_depth(tmp_path / "w.depth.npz", 1.0, np.arange(3), 3, (40, 60), (40, 60))
    with pytest.raises(DepthError, match="3 depth frames for a video of 5"):
        load_sensor_depth(tmp_path / "w.depth.npz", 1.0, np.arange(3), 5, (10, 10), (10, 10))
    image = np.array([[1.0, 2.0], [3.0, np.nan]])
    assert np.allclose(sample_depth(image, np.array([[0.9, 0.2], [0.1, 0.8]])), [2.0, 3.0])
    assert np.isnan(sample_depth(image, np.array([[1.0, 1.0], [5.0, 0.0]]))).all()


def _cameras(count=6):
    return np.stack([look_at(np.array([-0.2 + 0.08 * i, -0.6, 0.5]), np.array([0.0, 0.1, 0.0])) for i in range(count)])


def test_triangulation_recovers_static_points_and_flags_moving_ones():
    k = np.array([[300.0, 0, 160], [0, 300, 120], [0, 0, 1]])
    poses = _cameras()
    world = np.array([[0.0, 0.1, 0.0], [0.1, 0.2, 0.05], [-0.1, 0.0, 0.02]])
    uv = np.stack([project(world @ p[:3, :3].T + p[:3, 3], k)[:, :2] for p in poses], 1)  # (3, F, 2)
    uv[2] += np.linspace(0, 30, len(poses))[:, None]  # third point moves
    points, residual, parallax = triangulate_tracks(uv, np.ones(uv.shape[:2], bool), poses, k)
    np.testing.assert_allclose(points[:2], world[:2], atol=1e-9)
    assert residual[:2].max() < 1e-6 and residual[2] > 2.0 and parallax[0] > 10


def test_sparse_depth_is_exact_on_a_plane():
    k = np.array([[300.0, 0, 160], [0, 300, 120], [0, 0, 1]])
    pose = _cameras(1)[0]
    rng = np.random.default_rng(0)
    floor = np.c_[rng.uniform(-0.4, 0.4, (300, 2)), np.zeros(300)]
    query = np.array([[160.0, 150.0], [100.0, 200.0]])
    depth = sparse_depth(floor, pose, k, query)
    # true depth of the floor along those pixels' rays
    rotation, centre = pose[:3, :3], -pose[:3, :3].T @ pose[:3, 3]
    rays = np.c_[(query - k[:2, 2]) / 300.0, np.ones(2)] @ rotation  # world directions, z_cam = 1
    np.testing.assert_allclose(depth, -centre[2] / rays[:, 2], rtol=1e-9)


def test_pose_interpolation_and_colmap_options():
    poses = _cameras(5)
    known = np.array([True, False, True, False, True])
    filled = interpolate_poses(np.where(known[:, None, None], poses, 0.0), known)
    np.testing.assert_allclose(filled[known], poses[known], atol=1e-12)
    centres = np.einsum("nji,nj->ni", filled[:, :3, :3], -filled[:, :3, 3])
    np.testing.assert_allclose(centres[1], np.array([-0.12, -0.6, 0.5]), atol=1e-9)  # linear path
    k = np.array([[300.0, 0, 159.5], [0, 300, 119.5], [0, 0, 1]])
    extraction, matching, _, reader, _ = sfm_options(k, 1024, 5, 1, 0)
    assert reader.camera_params == f"300.0,300.0,{159.5 + COLMAP_PIXEL_OFFSET},{119.5 + COLMAP_PIXEL_OFFSET}"
    assert extraction.use_gpu is False and matching.use_gpu is False


def test_background_motion_ignores_a_small_moving_object():
    from forge.tracking import GridTracks

    uv = np.repeat(grid_points(100, 100)[:, None], 5, 1).copy()
    uv[:50] += np.arange(5)[None, :, None] * 10.0  # an object of 50 points moves fast
    assert background_motion([GridTracks(0, uv, np.ones(uv.shape[:2], bool))]) == 0.0
    uv += np.arange(5)[None, :, None] * 3.0  # now the whole image pans
    assert background_motion([GridTracks(0, uv, np.ones(uv.shape[:2], bool))]) == pytest.approx(12.0 * np.sqrt(2))


def _colour_square_frames(colours, size=(160, 120)):
    """The static texture with a plain square (the area `_flat_square_frames` uses) painted `colours[t]` in frame t."""
    frames = _texture_frames([(0, 0)] * len(colours), size)
    for frame, colour in zip(frames, colours, strict=True):
        frame[30:80, 60:110] = colour
    return frames


def test_the_colour_check_loses_a_point_whose_surface_is_now_another_colour():
    # at frame 3 a sky-blue plate lies exactly over the yellow square: the same grey level, so the tracker (on grey
    # frames) sees nothing change there
    colours = [(200, 180, 40)] * 3 + [(120, 180, 255)] * 3
    frames = _colour_square_frames(colours)
    grey = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
    grid = grid_points(160, 120)
    inside = (grid[:, 0] > 64) & (grid[:, 0] < 106) & (grid[:, 1] > 34) & (grid[:, 1] < 76)
    outside = (np.abs(grid[:, 0] - 85) > 35) | (np.abs(grid[:, 1] - 55) > 35)
    settings = dict(still_diff=2.0, flow_fallback=1.0)
    (unchecked,) = track_grids(grey, 0, [0], 128, LKSettings(**settings), colour=frames)
    (checked,) = track_grids(grey, 0, [0], 128, LKSettings(**settings, colour_drift=25.0), colour=frames)
    assert inside.sum() >= 4
    assert unchecked.visible[inside, -1].all()  # the still rule keeps claiming the yellow square's points
    assert checked.visible[inside, :3].all() and not checked.visible[inside, 3:].any()
    assert np.isnan(checked.uv[inside, 3:]).all()
    np.testing.assert_array_equal(checked.visible[outside], unchecked.visible[outside])  # the rest is untouched


def test_the_colour_check_forgives_a_change_every_point_shares():
    frames = _colour_square_frames([(200, 180, 40)] * 6).astype(np.int16)
    frames[3:] += np.array([30, 0, -79], dtype=np.int16)  # white balance shifts: redder, less blue, the same grey
    frames = np.clip(frames, 0, 255).astype(np.uint8)
    grey = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
    settings = dict(still_diff=2.0, flow_fallback=1.0)
    (unchecked,) = track_grids(grey, 0, [0], 128, LKSettings(**settings), colour=frames)
    (checked,) = track_grids(grey, 0, [0], 128, LKSettings(**settings, colour_drift=25.0), colour=frames)
    assert unchecked.visible[:, -1].sum() > 350
    np.testing.assert_array_equal(checked.visible, unchecked.visible)


def test_the_colour_check_enters_the_forge_hash_only_when_on():
    assert "colour_drift" not in ForgeConfig().hashed()  # stores forged before it existed keep their groups
    assert ForgeConfig(colour_drift=25.0).hashed()["colour_drift"] == 25.0
    with pytest.raises(InputError, match="colour_drift -1"):
        ForgeConfig(colour_drift=-1.0)
