"""Forge against exact ground truth: static camera with depth, 2D-only, known poses, SfM."""

import numpy as np
import pytest

from forge.config import ForgeConfig
from forge.inputs import VideoSource, discover, read_sidecar
from forge.pipeline import forge_video
from tests.forge.synthetic import endpoint_errors, write_video


def _forge(scene, tmp_path, name, config=None, **write):
    path = write_video(scene, tmp_path, name, **write)
    source = VideoSource(path, path.is_dir(), read_sidecar(path))
    return forge_video(source, config or ForgeConfig(query_every=64))


def _errors(scene, forged, sample=0, align_scale=False):
    samples = forged.samples
    frame_ids = np.asarray(forged.forge_attrs["decode"]["frame_ids"])
    return endpoint_errors(scene, samples.raw_traces[sample], samples.intrinsics[sample],
                           int(samples.query_frame[sample]), frame_ids, align_scale)


def test_static_camera_with_sensor_depth_is_within_half_a_centimetre(static_scene, tmp_path):
    forged = _forge(static_scene, tmp_path, "rgbd")
    errors = _errors(static_scene, forged)
    assert forged.forge_attrs["depth_source"] == "sensor"
    assert forged.forge_attrs["camera_motion"] == "static"
    assert errors["moving"] >= 4
    assert max(errors["x_cm"], errors["y_cm"], errors["z_cm"]) < 0.5, errors
    np.testing.assert_allclose(forged.samples.camera, np.tile(np.eye(4), (len(forged.samples.camera), 1, 1)))
    # the retargeted trace starts at the grid and its valid steps are finite
    traces, valid = forged.samples.traces[0], forged.samples.valid[0]
    assert valid[0] and valid.sum() > 2
    assert np.isfinite(traces[:, valid][forged.samples.visible[0][:, valid]]).all()


def test_two_d_only_keeps_pixels_and_masks_depth(static_scene, tmp_path):
    forged = _forge(static_scene, tmp_path, "rgb", depth=False, instruction=None)
    samples = forged.samples
    assert forged.forge_attrs["depth_source"] == "none" and samples.depth is None
    assert np.isnan(samples.traces[..., 2]).all()
    assert forged.video_attrs["instruction_from_folder_name"] is True
    assert forged.video_attrs["instructions"] == [tmp_path.name.replace("_", " ").replace("-", " ").strip()]
    # card pixels at the end against the true projection
    from store.trace import project
    from tests.forge.synthetic import ground_truth_trace

    ids = np.asarray(forged.forge_attrs["decode"]["frame_ids"])
    raw = samples.raw_traces[0]
    last = int(np.flatnonzero(np.isfinite(raw[..., 0]).any(0))[-1])
    truth, on_card = ground_truth_trace(static_scene, 0, int(ids[last]) + 1)
    true_uv = project(truth[:, int(ids[last])], static_scene.intrinsics)[:, :2]
    error = np.linalg.norm(raw[on_card, last, :2] - true_uv[on_card], axis=-1)
    assert np.nanmedian(error) < 1.0, error


def test_moving_camera_with_known_poses_and_depth_removes_camera_motion(moving_scene, tmp_path):
    forged = _forge(moving_scene, tmp_path, "posed", poses=True)
    assert forged.forge_attrs["camera_motion"] == "moving"
    errors = _errors(moving_scene, forged)
    # 320x240 here for speed (half the pixels per cm of the 640x480 benchmark)
    assert max(errors["x_cm"], errors["y_cm"], errors["z_cm"]) < 0.75, errors


def test_moving_camera_without_depth_uses_homography_for_2d(moving_scene, tmp_path):
    forged = _forge(moving_scene, tmp_path, "flat", ForgeConfig(query_every=64, depth="none"), depth=False)
    raw = forged.samples.raw_traces[0]
    from tests.forge.synthetic import ground_truth_trace

    _, on_card = ground_truth_trace(moving_scene, 0, 2)
    # background points of the floor plane map back onto their grid position
    background = ~on_card
    drift = np.linalg.norm(raw[background, -1, :2] - raw[background, 0, :2], axis=-1)
    assert forged.segments[0].camera_motion == "moving"
    assert np.nanmedian(drift) < 2.0, np.nanmedian(drift)


@pytest.mark.slow
def test_moving_camera_with_sfm_after_scale_alignment(moving_scene, tmp_path):
    forged = _forge(moving_scene, tmp_path, "sfm", ForgeConfig(query_every=16, sfm_threads=1), depth=False)  # 1 thread: repeatable
    assert forged.forge_attrs["depth_source"] == "sfm"
    errors = _errors(moving_scene, forged, align_scale=True)
    assert errors["moving"] >= 4
    assert max(errors["x_cm"], errors["y_cm"], errors["z_cm"]) < 2.0, errors


def test_discover_ignores_sidecars(static_scene, tmp_path):
    write_video(static_scene, tmp_path, "a")
    write_video(static_scene, tmp_path / "sub", "b", frame_folder=True)
    found = [s.path.relative_to(tmp_path).as_posix() for s in discover(tmp_path)]
    assert found == ["a.mp4", "sub/b"]


def test_moving_camera_with_depth_but_no_poses_uses_rgbd_odometry(moving_scene, tmp_path):
    forged = _forge(moving_scene, tmp_path, "rgbd_handheld", ForgeConfig(query_every=16))
    assert forged.forge_attrs["depth_source"] == "sensor" and forged.forge_attrs["camera_motion"] == "moving"
    assert forged.segments[0].note.startswith("poses from sensor depth")
    errors = _errors(moving_scene, forged)  # metric: no scale alignment
    assert max(errors["x_cm"], errors["y_cm"], errors["z_cm"]) < 0.75, errors


def test_tapip3d_npz_input_with_its_depth_and_poses(moving_scene, tmp_path):
    from forge.inputs import discover

    scene = moving_scene
    count = len(scene.frames)
    np.savez(tmp_path / "tracked.npz", video=np.moveaxis(scene.frames, -1, 1).astype(np.float32) / 255,
             depths=scene.depth, intrinsics=np.tile(scene.intrinsics, (count, 1, 1)), extrinsics=scene.camera,
             visibs=np.ones((count, 4), bool))
    np.savez(tmp_path / "other.gt.npz", video=np.zeros(1))  # sidecars are never sources
    (source,) = discover(tmp_path)
    source = VideoSource(source.path, False, read_sidecar(source.path))
    forged = forge_video(source, ForgeConfig(query_every=64))
    assert forged.forge_attrs["depth_source"] == "sensor" and forged.segments[0].note == "poses from sidecar"
    errors = _errors(scene, forged)
    assert max(errors["x_cm"], errors["y_cm"], errors["z_cm"]) < 0.75, errors
