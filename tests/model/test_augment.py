"""Augmentations keep image and trace consistent: the pixel under a trace point stays the same."""

import numpy as np

from model.augment import CropBox, color_jitter, crop, flip_horizontal, mirror_instruction, random_crop_box
from model.config import preset
from model.samples import AugmentConfig, SampleTransform
from model.synthetic import SyntheticTraceDataset
from store.trace import grid_points


def _marked_scene(width=100, height=80, seed=0):
    """An image whose pixel under each grid point (and its moved positions) encodes the point index."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(0, 1, (height, width, 3)).astype(np.float32)
    grid = grid_points(width, height)
    moved = grid + rng.integers(-3, 4, size=grid.shape)
    moved = np.clip(moved, 0, [width - 1, height - 1])
    traj = np.stack([np.c_[grid, np.ones(400)], np.c_[moved, np.ones(400)]], axis=1).astype(np.float32)  # (K, 2, 3)
    depth = rng.uniform(1, 2, (height, width)).astype(np.float32)
    intrinsics = np.array([[90, 0, 40.5], [0, 90, 30.5], [0, 0, 1]], dtype=np.float32)
    return image, depth, traj, np.ones((400, 2), bool), intrinsics


def _pixels_under(image, traj):
    cols, rows = np.round(traj[..., 0]).astype(int), np.round(traj[..., 1]).astype(int)
    return image[rows, cols]


def test_flip_keeps_pixels_under_points_and_grid_order():
    image, depth, traj, visible, k = _marked_scene()
    f_image, f_depth, f_traj, f_visible, f_k = flip_horizontal(image, depth, traj, visible, k)
    order = np.arange(400).reshape(20, 20)[:, ::-1].ravel()
    np.testing.assert_array_equal(_pixels_under(f_image, f_traj), _pixels_under(image, traj)[order])
    np.testing.assert_array_equal(_pixels_under(f_depth, f_traj), _pixels_under(depth, traj)[order])
    np.testing.assert_allclose(f_traj[:, 0, :2], grid_points(100, 80), atol=1e-4)  # the start is the grid again
    assert f_k[0, 2] == 99 - 40.5
    back = flip_horizontal(f_image, f_depth, f_traj, f_visible, f_k)
    np.testing.assert_array_equal(back[0], image)
    np.testing.assert_allclose(back[2], traj, atol=1e-4)


def test_crop_keeps_pixels_under_points():
    image, depth, traj, _, k = _marked_scene()
    box = CropBox(x0=7, y0=5, width=80, height=70)
    c_image, c_depth, c_traj, c_k = crop(image, depth, traj, k, box)
    inside = (c_traj[..., 0] >= 0) & (c_traj[..., 0] < 79.5) & (c_traj[..., 1] >= 0) & (c_traj[..., 1] < 69.5)
    assert inside.sum() > 300
    np.testing.assert_array_equal(_pixels_under(c_image, c_traj[inside]), _pixels_under(image, traj[inside]))
    assert (c_k[0, 2], c_k[1, 2]) == (40.5 - 7, 30.5 - 5)


def test_random_crop_box_fits_and_respects_scale():
    rng = np.random.default_rng(0)
    for _ in range(50):
        box = random_crop_box(100, 80, rng, 0.7)
        assert 70 <= box.width <= 100 and 56 <= box.height <= 80
        assert box.x0 + box.width <= 100 and box.y0 + box.height <= 80


def test_color_jitter_stays_in_range_and_zero_strength_is_identity():
    image = np.random.default_rng(1).uniform(0, 1, (10, 12, 3)).astype(np.float32)
    np.testing.assert_allclose(color_jitter(image, np.random.default_rng(0), 0.0), image, atol=1e-6)
    jittered = color_jitter(image, np.random.default_rng(0), 0.5)
    assert jittered.min() >= 0 and jittered.max() <= 1 and not np.allclose(jittered, image)


def test_color_jitter_is_brightness_then_contrast_then_saturation():
    """The one-pass colour map equals the three adjustments applied in turn, written out by hand."""
    image = np.random.default_rng(2).uniform(0, 1, (24, 32, 3)).astype(np.float32)
    for seed in range(4):
        b, c, s = np.random.default_rng(seed).uniform(0.6, 1.4, size=3)  # what color_jitter draws at strength 0.4
        bright = image.astype(np.float64) * b
        contrasted = (bright - bright.mean()) * c + bright.mean()
        grey = contrasted.mean(axis=-1, keepdims=True)
        expected = np.clip((contrasted - grey) * s + grey, 0.0, 1.0)
        got = color_jitter(image, np.random.default_rng(seed), 0.4)
        assert got.dtype == np.float32 and got.shape == image.shape
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_transform_resizes_and_normalises_by_image_size():
    cfg = preset("tiny")
    item = SyntheticTraceDataset(num_videos=1, samples_per_video=1, depth_fraction=1.0, seed=2)[0]
    height, width = item["image"].shape[:2]
    sample = SampleTransform(cfg)(item, np.random.default_rng(0))
    assert sample["image"].shape == (3, cfg.image_size, cfg.image_size) and sample["depth"].shape == (2, 96, 96)
    assert -1 <= sample["image"].min() and sample["image"].max() <= 1
    np.testing.assert_allclose(sample["start"][:, :2], (grid_points(width, height) + 0.5) / [width, height], atol=1e-6)
    assert sample["text"] in item["instructions"]
    flipped = SampleTransform(cfg, AugmentConfig(enabled=True, flip_prob=1.0, crop_scale=1.0, jitter=0.0))(
        item, np.random.default_rng(0)
    )
    np.testing.assert_allclose(flipped["start"][:, :2], sample["start"][:, :2], atol=1e-5)  # the grid maps to itself
    moving = sample["mask"][..., 0].any(1)
    np.testing.assert_allclose(flipped["deltas"][..., 0].sum(), -sample["deltas"][..., 0].sum(), atol=1e-4)
    assert moving.any()


def test_mirrored_instructions_swap_left_and_right():
    assert mirror_instruction("Move the cup left, then RIGHT") == "Move the cup right, then Left"
    assert mirror_instruction("slide it leftwards past the bright lamp") == "slide it rightwards past the bright lamp"
    assert mirror_instruction("lift the copyright leftover") == "lift the copyright leftover"


def test_flipped_sample_says_the_mirrored_direction():
    cfg = preset("tiny")
    dataset = SyntheticTraceDataset(num_videos=8, samples_per_video=2, seed=5)
    flip = SampleTransform(cfg, AugmentConfig(enabled=True, flip_prob=1.0, crop_scale=1.0, jitter=0.0))
    checked = 0
    for i in range(len(dataset)):
        item = dataset[i]
        sample = flip(item, np.random.default_rng(i))
        du = sample["deltas"][..., 0][sample["mask"][..., 0]].sum()
        if "left" in sample["text"]:
            assert du < 0
            checked += 1
        elif "right" in sample["text"]:
            assert du > 0
            checked += 1
    assert checked >= 4
