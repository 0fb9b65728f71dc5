"""`tracegen pretrain` end to end on a small synthetic store: trains, validates, checkpoints, resumes."""

import json

import pytest
from typer.testing import CliRunner

from tracegen_cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def synthetic_store(tmp_path_factory):
    from model.synthetic import write_synthetic_store

    return write_synthetic_store(tmp_path_factory.mktemp("store") / "traces.zarr", num_videos=12, samples_per_video=2)


def _args(store, out, steps):
    return ["pretrain", "--store", store, "--out", str(out), "--steps", str(steps), "--batch-size", "4",
            "--val-fraction", "0.25", "--eval-every", "4", "--threads", "1", "--device", "cpu"]


@pytest.mark.slow
def test_pretrain_trains_validates_checkpoints_and_resumes(synthetic_store, tmp_path):
    from model.checkpoint import load_checkpoint, load_train_state

    out = tmp_path / "ckpt"
    result = runner.invoke(app, _args(synthetic_store, out, 4))
    assert result.exit_code == 0, result.output
    assert "18 training samples from 9 videos, 6 validation samples from 3" in result.output
    assert "val loss" in result.output and "ADE" in result.output
    config = json.loads((out / "config.json").read_text())
    assert config["step"] == 4 and config["data"]["val_videos"] == 3 and len(config["data"]["val_keys"]) == 3
    assert config["metrics"]["samples"] == 6 and config["metrics"]["ade_px"] > 0
    assert config["data"]["forge_config"] == {"synthetic": True}  # what adapt will forge new demos with
    assert (out / "model.safetensors").is_file() and (out / "best" / "config.json").is_file()
    assert load_train_state(out)["step"] == 4

    again = runner.invoke(app, _args(synthetic_store, out, 4))
    assert again.exit_code == 1 and "already holds a checkpoint" in again.output

    resumed = runner.invoke(app, _args(synthetic_store, out, 8) + ["--resume"])
    assert resumed.exit_code == 0, resumed.output
    model, cfg, meta = load_checkpoint(out)
    assert meta["step"] == 8 and cfg.width == 128 and meta["checkpoint_id"] != config["checkpoint_id"]


def test_pretrain_errors_are_one_line(tmp_path):
    result = runner.invoke(app, ["pretrain", "--store", str(tmp_path / "missing.zarr"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and result.output.startswith("error: ")
    result = runner.invoke(app, ["pretrain", "--store", str(tmp_path / "x.zarr"), "--out", str(tmp_path / "o"), "--resume"])
    assert result.exit_code == 1 and result.output.startswith("error: ")


@pytest.mark.parametrize("option, value, message", [
    ("--image-backbone", "resnet", "image_backbone 'resnet' is unknown"),
    ("--image-backbone", "safetensors:/nowhere/stem.safetensors", "/nowhere/stem.safetensors does not exist"),
    ("--text-backbone", "bert", "text_backbone 'bert' is unknown"),
])
def test_a_bad_backbone_is_the_only_line_printed(synthetic_store, tmp_path, option, value, message):
    """Refused before the store is read: no dataset summary line, no checkpoint folder."""
    result = runner.invoke(app, _args(synthetic_store, tmp_path / "o", 2) + [option, value])
    assert result.exit_code == 1 and result.output.startswith("error: ") and message in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_pretrain_reads_a_local_image_backbone_and_records_it(synthetic_store, tmp_path):
    from model.checkpoint import load_checkpoint
    from model.config import preset
    from model.encoders import ConvStem, save_image_backbone

    cfg = preset("tiny")
    donor = ConvStem(3, cfg.width, cfg.image_patch)
    path = save_image_backbone(donor, tmp_path / "stem.safetensors")
    out = tmp_path / "ckpt"
    result = runner.invoke(app, _args(synthetic_store, out, 2) + ["--image-backbone", f"safetensors:{path}"])
    assert result.exit_code == 0, result.output
    model, loaded_cfg, _ = load_checkpoint(out)
    assert loaded_cfg.image_backbone == f"safetensors:{path}" and loaded_cfg.freeze_backbone
    for name, tensor in donor.state_dict().items():  # frozen: still the donor's weights after training
        assert (model.image_encoder.state_dict()[name] == tensor).all(), name
    other = save_image_backbone(ConvStem(3, cfg.width, cfg.image_patch), tmp_path / "other.safetensors")
    refused = runner.invoke(app, _args(synthetic_store, out, 4) + ["--resume", "--image-backbone", f"safetensors:{other}"])
    assert refused.exit_code == 1 and f"was trained with image_backbone 'safetensors:{path}', not 'safetensors:{other}'" in refused.output
    resumed = runner.invoke(app, _args(synthetic_store, out, 4) + ["--resume"])  # defaults: the checkpoint's backbone
    assert resumed.exit_code == 0, resumed.output
    assert load_checkpoint(out)[1].image_backbone == f"safetensors:{path}"

    missing = runner.invoke(app, _args(synthetic_store, tmp_path / "o2", 2) + ["--image-backbone", "safetensors:/no/such.safetensors"])
    assert missing.exit_code == 1 and "error: image backbone file /no/such.safetensors does not exist" in missing.output
    assert not (tmp_path / "o2" / "config.json").exists()
    unknown = runner.invoke(app, _args(synthetic_store, tmp_path / "o3", 2) + ["--text-backbone", "word2vec"])
    assert unknown.exit_code == 1 and "text_backbone 'word2vec' is unknown" in unknown.output
