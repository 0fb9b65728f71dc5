"""Checkpoints: save -> load gives identical predictions; broken directories fail with a clear error."""

import json

import numpy as np
import pytest
import torch

from model.checkpoint import load_checkpoint, read_checkpoint_config, save_checkpoint
from model.config import preset
from model.errors import CheckpointError
from model.network import TraceFlowNet
from model.predict import predict_traces
from model.synthetic import SyntheticTraceDataset


def _random_model(seed=0):
    torch.manual_seed(seed)
    model = TraceFlowNet(preset("tiny", depth=2)).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "token_out" in name or "adaptive" in name:
                param.normal_(0, 0.02)  # leave zero-init so predictions depend on every weight
    return model


def test_save_load_gives_identical_predictions(tmp_path):
    model = _random_model()
    path = save_checkpoint(tmp_path / "ckpt", model, model.cfg, step=7, meta={"data": {"store": "x.zarr"}})
    loaded, cfg, meta = load_checkpoint(path)
    assert cfg == model.cfg and meta["step"] == 7 and meta["data"] == {"store": "x.zarr"}
    assert meta["checkpoint_id"].startswith("tg-") and meta["encoders"] == {"image": "scratch", "text": "hashed"}
    item = SyntheticTraceDataset(num_videos=1, samples_per_video=1, depth_fraction=1.0)[0]
    args = (item["image"], item["depth"], item["intrinsics"], item["instructions"][0])
    expected, _ = predict_traces(model, *args, num_samples=2, seed=3)
    got, _ = predict_traces(loaded, *args, num_samples=2, seed=3)
    np.testing.assert_array_equal(got, expected)
    again = save_checkpoint(tmp_path / "again", loaded, cfg, step=7)
    assert read_checkpoint_config(again)["checkpoint_id"] == meta["checkpoint_id"]  # the id is the weights' hash


def test_missing_and_incompatible_checkpoints_fail_clearly(tmp_path):
    model = _random_model()
    with pytest.raises(CheckpointError, match="not a directory"):
        load_checkpoint(tmp_path / "nothing")
    path = save_checkpoint(tmp_path / "ckpt", model, model.cfg)
    (path / "model.safetensors").rename(path / "moved")
    with pytest.raises(CheckpointError, match="lacks model.safetensors"):
        load_checkpoint(path)
    (path / "moved").rename(path / "model.safetensors")
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "version": 99}))
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(path)
    (path / "config.json").write_text(json.dumps({**config, "model": {**config["model"], "depth": 3}}))
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path)
    (path / "config.json").write_text(json.dumps({**config, "model": {**config["model"], "future_field": 1}}))
    with pytest.raises(CheckpointError, match="unknown fields"):
        load_checkpoint(path)
