"""The schema as data: VideoSamples validation names the mismatching array."""

import dataclasses

import numpy as np
import pytest

from store.errors import SchemaError
from tests.store.conftest import make_video_samples


def _replace(samples, **changes):
    fields = {f.name: getattr(samples, f.name) for f in dataclasses.fields(samples)}
    fields.update(changes)
    return type(samples)(**fields)


def test_factory_samples_follow_the_schema():
    samples = make_video_samples(num_samples=3, height=32, width=40, frames=12)
    assert samples.num_samples == 3 and samples.image_size == (32, 40)
    assert samples.traces.shape == (3, 400, 129, 3) and samples.raw_traces.shape == (3, 400, 12, 3)
    assert set(samples.arrays()) == {
        "traces", "valid", "visible", "query_frame", "image", "intrinsics", "raw_traces", "camera", "depth", "frame_index"
    }
    assert make_video_samples(with_depth=False).depth is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: {"traces": s.traces.astype(np.float64)}, "'traces' has dtype"),
        (lambda s: {"valid": s.valid[:, :100]}, "'valid' has shape"),
        (lambda s: {"image": s.image[:1]}, "'image' has shape .* with S=2"),
        (lambda s: {"depth": s.depth[:, :10]}, "'depth' has shape .* with H=48"),
        (lambda s: {"intrinsics": s.intrinsics[:, :2]}, "'intrinsics' has shape"),
        (lambda s: {"query_frame": s.query_frame.tolist()}, "'query_frame' is a list"),
        (lambda s: {"raw_traces": np.zeros((2, 400, 200, 3), np.float32)}, "F=200"),
    ],
)
def test_validation_names_the_bad_array(change, message):
    samples = make_video_samples()
    with pytest.raises(SchemaError, match=message):
        _replace(samples, **change(samples))


def test_zero_samples_and_invalid_start_are_rejected():
    samples = make_video_samples(num_samples=1)
    empty = {name: value[:0] for name, value in samples.arrays().items() if name != "camera"}
    with pytest.raises(SchemaError, match="0 samples"):
        _replace(samples, **empty)
    valid = samples.valid.copy()
    valid[0, 0] = False
    with pytest.raises(SchemaError, match="start of a trace"):
        _replace(samples, valid=valid)
