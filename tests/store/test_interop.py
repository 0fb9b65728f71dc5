"""TraceForge/TraceGen layout: export -> import is an identity; the layout is what TraceGen's loader reads."""

import json

import cv2
import numpy as np
import pytest

from store.interop import InteropError, default_intrinsics, export_traceforge, import_traceforge
from store.trace_store import TraceStore
from tests.store.conftest import FORGE_ATTRS, make_video_samples, video_attrs
from tests.store.test_trace_store import assert_samples_equal

CFG = "0123456789abcdef"
KEYS = ["d1" * 32, "e2" * 32]


@pytest.fixture
def source(tmp_path):
    store = TraceStore.create(tmp_path / "src.zarr")
    instructions = ("pick the cup", "grasp the cup", "lift the mug", "a fourth phrasing")
    store.write_video(KEYS[0], video_attrs(instructions=instructions), CFG, FORGE_ATTRS, make_video_samples(3, seed=1))
    store.write_video(KEYS[1], video_attrs(), CFG, FORGE_ATTRS, make_video_samples(2, with_depth=False, seed=2))
    return store


def test_export_then_import_is_identity(source, tmp_path):
    export_traceforge(source, tmp_path / "tf")
    copy = TraceStore.create(tmp_path / "copy.zarr")
    assert import_traceforge(tmp_path / "tf", copy) == KEYS
    for key in KEYS:
        assert_samples_equal(source.read_samples(key), copy.read_samples(key))
        assert copy.video_attrs(key) == source.video_attrs(key)
        original, imported = source.videos()[KEYS.index(key)].forge[CFG], copy.videos()[KEYS.index(key)].forge[CFG]
        assert {k: v for k, v in imported.items() if k != "created"} == {k: v for k, v in original.items() if k != "created"}


def test_exported_layout_matches_traceforge(source, tmp_path):
    [episode, no_depth] = export_traceforge(source, tmp_path / "tf")
    samples = source.read_samples(KEYS[0])
    stems = [f"{q:06d}" for q in samples.query_frame]
    assert sorted(p.stem for p in (episode / "images").glob("*.png")) == stems
    assert json.loads((episode / "three_instructions.json").read_text()) == {
        "instruction_1": "pick the cup", "instruction_2": "grasp the cup", "instruction_3": "lift the mug"
    }
    with np.load(episode / "samples" / f"{stems[1]}.npz") as npz:
        steps = int(samples.valid[1].sum())
        assert npz["traj"].shape == (400, 129, 3) and npz["valid_steps"].sum() == steps
        assert np.isneginf(npz["traj"][:, steps:]).all() and not np.isinf(npz["traj"][:, :steps]).any()
        np.testing.assert_array_equal(npz["keypoints"], samples.traces[1, :, 0, :2])
        np.testing.assert_array_equal(npz["traj_2d"][:, :steps], samples.traces[1, :, :steps, :2])
    with np.load(episode / "depth" / f"{stems[0]}_raw.npz") as npz:
        np.testing.assert_array_equal(npz["depth"], samples.depth[0])
    image = cv2.imread(str(episode / "images" / f"{stems[2]}.png"))[:, :, ::-1]
    np.testing.assert_array_equal(image, samples.image[2])
    assert not (no_depth / "depth").exists()


def test_import_of_a_bare_traceforge_episode(tmp_path):
    """An episode as TraceForge writes it (no tracegen extras): 2-D traj with -inf padding, a step count."""
    episode = tmp_path / "ds" / "episode_7"
    (episode / "images").mkdir(parents=True)
    (episode / "samples").mkdir()
    image = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    cv2.imwrite(str(episode / "images" / "000012.png"), image[:, :, ::-1])
    traj = np.full((400, 128, 2), -np.inf, np.float32)
    traj[:, :10] = np.random.default_rng(1).uniform(0, 30, (400, 10, 2))
    np.savez(episode / "samples" / "000012.npz", keypoints=traj[:, 0], traj=traj, valid_steps=np.int64(10))
    (episode / "three_instructions.json").write_text(json.dumps({"instruction_1": "wipe", "instruction_2": " "}))
    store = TraceStore.create(tmp_path / "s.zarr")
    [key] = import_traceforge(tmp_path / "ds", store)
    samples = store.read_samples(key)
    assert samples.query_frame.tolist() == [12] and samples.depth is None and samples.camera.shape == (13, 4, 4)
    assert samples.valid[0].sum() == 10 and np.isnan(samples.traces[0, :, 10:]).all() and np.isnan(samples.traces[..., 2]).all()
    np.testing.assert_array_equal(samples.traces[0, :, :10, :2], traj[:, :10])
    np.testing.assert_array_equal(samples.image[0], image)
    np.testing.assert_allclose(samples.intrinsics[0], default_intrinsics(24, 32))
    assert store.video_attrs(key)["instructions"] == ["wipe"]
    assert store.videos()[0].forge[store.pick_config(key, None)]["intrinsics_source"].startswith("default 60")
    created = store.videos()[0].forge[store.pick_config(key, None)]["created"]
    assert import_traceforge(episode, store) == [key]  # the same episode again: content-addressed, no rewrite
    assert store.videos()[0].forge[store.pick_config(key, None)]["created"] == created


def test_import_of_a_non_episode_names_it(tmp_path):
    with pytest.raises(InteropError, match="holds no episode folder"):
        import_traceforge(tmp_path, TraceStore.create(tmp_path / "s.zarr"))
    (tmp_path / "ep" / "samples").mkdir(parents=True)
    (tmp_path / "ep" / "samples" / "0.npz").write_bytes(b"junk")
    with pytest.raises(InteropError, match="0.npz is not a readable .npz"):
        import_traceforge(tmp_path / "ep", TraceStore.open(tmp_path / "s.zarr", "a"))
