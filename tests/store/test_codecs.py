"""Image codecs: a store created with a non-default image codec reads back exactly (lossless) or close
(lossy), verifies clean and trains through TraceDataset; unknown names are refused."""

import json

import cv2
import numpy as np
import pytest

from store.codecs import LOSSLESS
from store.dataset import TraceDataset
from store.errors import CorruptDataError, SchemaError
from store.trace_store import TraceStore
from store.verify import verify
from tests.store.conftest import FORGE_ATTRS, make_video_samples, video_attrs

KEY = "ab" * 32
CFG = "0123456789abcdef"


def _photo_like(samples, seed=0):
    """Smooth images (lossy codecs are made for photographs, not per-pixel noise)."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 255, samples.image.shape, dtype=np.uint8)
    samples.image = np.stack([cv2.GaussianBlur(image, (7, 7), 3) for image in noise])
    return samples


@pytest.mark.parametrize("codec", ["png", "webp-lossless", "webp-95", "jpeg-95"])
def test_store_with_image_codec_round_trips(tmp_path, codec):
    store = TraceStore.create(tmp_path / "s.zarr", image_codec=codec)
    samples = _photo_like(make_video_samples(num_samples=5))  # chunks of 5 images, one partial chunk case below
    store.write_video(KEY, video_attrs(), CFG, FORGE_ATTRS, samples)
    reopened = TraceStore.open(tmp_path / "s.zarr")
    assert reopened.root_attrs()["image_codec"] == codec
    meta = json.loads((tmp_path / "s.zarr" / "videos" / KEY / "forge" / CFG / "image" / "zarr.json").read_text())
    assert meta["codecs"][0]["name"] == "tracegen.image"
    read = reopened.read_samples(KEY)
    if codec in LOSSLESS:
        np.testing.assert_array_equal(read.image, samples.image)
    else:
        assert cv2.PSNR(read.image, samples.image) > 35.0
    np.testing.assert_array_equal(read.traces, samples.traces)  # other arrays keep blosc
    assert verify(reopened).ok
    item = TraceDataset(reopened)[4]
    np.testing.assert_array_equal(item["image"].numpy(), read.image[4])


def test_partial_last_chunk_and_damage(tmp_path, monkeypatch):
    store = TraceStore.create(tmp_path / "s.zarr", image_codec="png")
    samples = make_video_samples(num_samples=3)
    # two images per chunk, so the last chunk is partial
    monkeypatch.setattr("store.writer.TARGET_CHUNK_BYTES", 2 * samples.image[0].nbytes)
    store.write_video(KEY, video_attrs(), CFG, FORGE_ATTRS, samples)
    monkeypatch.undo()
    np.testing.assert_array_equal(store.read_samples(KEY).image, samples.image)
    chunk = tmp_path / "s.zarr" / "videos" / KEY / "forge" / CFG / "image" / "c" / "1" / "0" / "0" / "0"
    chunk.write_bytes(b"TGI1" + b"\x01\x00\x00\x00" + b"\x05\x00\x00\x00" + b"junk!")
    with pytest.raises(CorruptDataError, match="image cannot be read"):
        store.read_samples(KEY)
    assert [p.kind for p in verify(store).problems] == ["corrupt-chunk"]


def test_unknown_image_codec_is_refused(tmp_path):
    with pytest.raises(SchemaError, match="image codec 'avif' is unknown; use one of blosc, png"):
        TraceStore.create(tmp_path / "s.zarr", image_codec="avif")
