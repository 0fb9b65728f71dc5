"""Shared store fixtures: a synthetic `VideoSamples` factory (other areas reuse it) and a store path."""

from __future__ import annotations

import numpy as np
import pytest

from store.samples import VideoSamples
from store.trace import NUM_POINTS, TRACE_LENGTH, grid_points


def make_video_samples(
    num_samples: int = 2,
    height: int = 48,
    width: int = 64,
    frames: int = 20,
    with_depth: bool = True,
    seed: int = 0,
) -> VideoSamples:
    """Synthetic but self-consistent samples: grid points drifting with per-sample velocity.

    Sample s starts on the reference grid, moves by a constant pixel velocity for `frames` raw
    frames (depth changes linearly when `with_depth`), and is retargeted by simple subsampling to a
    random number of valid steps; steps past that are NaN and invalid.
    """
    rng = np.random.default_rng(seed)
    grid = grid_points(width, height)  # (K, 2)
    traces = np.full((num_samples, NUM_POINTS, TRACE_LENGTH, 3), np.nan, dtype=np.float32)
    valid = np.zeros((num_samples, TRACE_LENGTH), dtype=bool)
    visible = np.zeros((num_samples, NUM_POINTS, TRACE_LENGTH), dtype=bool)
    raw = np.full((num_samples, NUM_POINTS, frames, 3), np.nan, dtype=np.float32)
    frame_index = np.full((num_samples, TRACE_LENGTH), np.nan, dtype=np.float32)
    depth = rng.uniform(0.5, 2.0, size=(num_samples, height, width)).astype(np.float32) if with_depth else None
    for s in range(num_samples):
        velocity = rng.normal(0.0, 1.5, size=2)  # pixels per frame
        t = np.arange(frames, dtype=np.float32)  # (F,)
        raw[s, :, :, :2] = grid[:, None, :] + t[None, :, None] * velocity[None, None, :]
        if with_depth:
            start_z = depth[s, grid[:, 1].round().astype(int), grid[:, 0].round().astype(int)]  # (K,)
            raw[s, :, :, 2] = start_z[:, None] + 0.01 * t[None, :]
        steps = int(rng.integers(8, TRACE_LENGTH))
        source = np.linspace(0, frames - 1, steps + 1)  # (n+1,) fractional frames
        lower = np.floor(source).astype(int)
        upper = np.minimum(lower + 1, frames - 1)
        alpha = (source - lower)[None, :, None].astype(np.float32)
        traces[s, :, : steps + 1] = (1 - alpha) * raw[s][:, lower] + alpha * raw[s][:, upper]
        valid[s, : steps + 1] = True
        visible[s, :, : steps + 1] = rng.random((NUM_POINTS, steps + 1)) > 0.1
        visible[s, :, 0] = True
        frame_index[s, : steps + 1] = source
    intrinsics = np.tile(
        np.array([[1.2 * width, 0, (width - 1) / 2], [0, 1.2 * width, (height - 1) / 2], [0, 0, 1]], np.float32),
        (num_samples, 1, 1),
    )
    camera = np.tile(np.eye(4, dtype=np.float32), (frames, 1, 1))
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), (xx + yy) % 256], -1)
    image = (image[None] + rng.integers(0, 30, size=(num_samples, 1, 1, 3))).clip(0, 255).astype(np.uint8)
    return VideoSamples(
        traces=traces,
        valid=valid,
        visible=visible,
        query_frame=np.arange(num_samples, dtype=np.int32) * 3,
        image=image,
        intrinsics=intrinsics,
        raw_traces=raw,
        camera=camera,
        depth=depth,
        frame_index=frame_index,
    )


def video_attrs(name: str = "clip.mp4", embodiment: str = "human", instructions: tuple[str, ...] = ("pick up the cup",)) -> dict:
    return {
        "sources": [name],
        "fps": 30.0,
        "frame_count": 20,
        "size": [48, 64],
        "embodiment": embodiment,
        "instructions": list(instructions),
        "dataset": "test",
    }


FORGE_ATTRS = {"config": {"fps": 10, "grid": 20}, "depth_source": "synthetic", "camera_motion": "static"}


@pytest.fixture
def store_path(tmp_path):
    return tmp_path / "traces.zarr"
