"""`tracegen adapt` on store keys: fine-tuning starts from the base weights with a fresh schedule,
`--from-scratch` does not, one demo is held out, provenance is recorded, bad input is one line."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from store.hashing import config_hash
from store.trace_store import TraceStore
from tests.store.conftest import make_video_samples
from tracegen_cli.adapt_workflow import FINETUNE_LR, SCRATCH_LR, forge_settings, split_demos
from tracegen_cli.main import app

runner = CliRunner()
BASE_STEP = 1234  # the base's step counter: a fine-tune must not continue it


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from model.checkpoint import save_checkpoint
    from model.config import preset
    from model.network import TraceFlowNet

    torch.manual_seed(1234)  # not the adapt seed: from scratch must not recreate these weights
    cfg = preset("tiny", depth=1, width=64, heads=2, image_size=64)
    meta = {"data": {"forge_config": {"query_every": 16, "max_side": 320, "embodiment": "human"}}}
    return save_checkpoint(tmp_path_factory.mktemp("base") / "base", TraceFlowNet(cfg), cfg, step=BASE_STEP, meta=meta)


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    """Four demo videos already forged into a store; returns (location, keys)."""
    location = tmp_path_factory.mktemp("store") / "demos.zarr"
    store = TraceStore.create(location)
    keys = []
    for index in range(4):
        key = f"{index + 1:x}" * 64
        attrs = {"sources": [f"demo{index}.mp4"], "fps": 30.0, "frame_count": 20, "size": [48, 64],
                 "embodiment": "so101", "instructions": ["push the block"]}
        store.write_video(key, attrs, config_hash({"demo": 1}), {"config": {}}, make_video_samples(2, seed=index))
        keys.append(key)
    return location, keys


def _adapt(base, store, keys, out, *extra, steps=2):
    args = ["adapt", "--base", base, "--store", store, "--out", out, "--steps", steps, "--batch-size", 2, "--threads", 1]
    for key in keys:
        args += ["--demos", key[:10]]
    return runner.invoke(app, [str(a) for a in [*args, *extra]])


def _weights(path):
    return load_file(str(path / "model.safetensors"))


@pytest.mark.slow
def test_adapt_starts_from_the_base_weights_with_a_fresh_schedule(base, demo_store, tmp_path):
    location, keys = demo_store
    # with a learning rate of ~0 the fine-tuned weights must be the base's exactly
    result = _adapt(base, location, keys, tmp_path / "adapted", "--lr", 1e-12)
    assert result.exit_code == 0, result.output
    adapted, original = _weights(tmp_path / "adapted"), _weights(base)
    assert all(torch.allclose(adapted[name], original[name], atol=1e-6) for name in original)
    config = json.loads((tmp_path / "adapted" / "config.json").read_text())
    assert config["kept"]["weights"] == "base" and config["step"] == 0  # a tie: a snapshot must beat the base
    assert config["kept"]["metric"] == "fde_moving_px"
    data = config["data"]
    base_id = json.loads((base / "config.json").read_text())["checkpoint_id"]
    assert data["kind"] == "adapt" and data["base_checkpoint_id"] == base_id
    assert data["demo_keys"] == sorted(keys) and len(data["val_keys"]) == 1
    assert data["forge_config"]["max_side"] == 320  # the base's forge settings, not the defaults
    assert config["train"]["lr"] == 1e-12 and config["train"]["flip_prob"] == 0.0
    assert config["metrics"]["samples"] == 2  # scored on the held-out demo's two samples
    assert "held-out demo: ADE" in result.output and "base model: ADE" in result.output
    assert "kept the base model's weights" in result.output
    # without a held-out demo the last state is kept: a fresh schedule of 2 steps, not BASE_STEP + 2
    last = _adapt(base, location, keys, tmp_path / "last", "--lr", 1e-12, "--no-holdout")
    assert last.exit_code == 0, last.output
    config = json.loads((tmp_path / "last" / "config.json").read_text())
    assert config["step"] == 2 and "kept" not in config
    assert all(torch.allclose(_weights(tmp_path / "last")[name], original[name], atol=1e-6) for name in original)


def test_from_scratch_trains_the_same_architecture_from_random_weights(base, demo_store, tmp_path):
    location, keys = demo_store
    result = _adapt(base, location, keys, tmp_path / "scratch", "--from-scratch", "--lr", 1e-12, "--no-holdout")
    assert result.exit_code == 0, result.output
    scratch, original = _weights(tmp_path / "scratch"), _weights(base)
    assert scratch.keys() == original.keys()
    assert all(scratch[name].shape == original[name].shape for name in original)
    assert not all(torch.allclose(scratch[name], original[name]) for name in original)
    config = json.loads((tmp_path / "scratch" / "config.json").read_text())
    assert config["data"]["kind"] == "adapt-from-scratch" and config["data"]["val_keys"] == []
    assert config["model"] == json.loads((base / "config.json").read_text())["model"]


def test_forge_settings_come_from_the_checkpoint_or_the_base_store(tmp_path):
    from forge.config import ForgeConfig

    recorded = ForgeConfig(max_side=200, query_every=8)
    assert forge_settings({"data": {"forge_config": recorded.as_dict()}}) == (recorded, "checkpoint")
    store = TraceStore.create(tmp_path / "base.zarr")
    for index in range(3):  # two videos forged with `recorded`, one with other settings
        settings = recorded if index < 2 else ForgeConfig(max_side=100)
        store.write_video(f"{index + 1:x}" * 64, {"sources": [f"v{index}.mp4"]}, config_hash(settings.hashed()),
                          {"config": settings.hashed()}, make_video_samples(1, seed=index))
    found, source = forge_settings({"data": {"kind": "pretrain", "store": str(tmp_path / "base.zarr")}})
    assert source == "base store" and found.hashed() == recorded.hashed()
    assert forge_settings({"data": {"store": str(tmp_path / "gone.zarr")}}) == (ForgeConfig(), "defaults")


def test_every_select_choice_names_a_metric_training_can_select_by():
    from model.config import SELECT_METRICS
    from tracegen_cli.adapt_workflow import SELECTIONS
    from tracegen_cli.commands.adapt import Selection

    assert sorted(SELECTIONS.values()) == sorted(SELECT_METRICS) and {c.value for c in Selection} == set(SELECTIONS)


def test_default_learning_rates_and_holdout_rule():
    keys = [f"{i:x}" * 64 for i in range(1, 6)]
    train, val = split_demos(keys, holdout=True, seed=0)
    assert len(val) == 1 and sorted(train + val) == sorted(keys)
    assert split_demos(keys[:2], holdout=True, seed=0) == (sorted(keys[:2]), [])
    assert split_demos(keys, holdout=False, seed=0) == (sorted(keys), [])
    assert FINETUNE_LR < SCRATCH_LR


def _one_line_error(result, message):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output


def test_bad_demos_and_bad_base_are_one_line(base, demo_store, tmp_path):
    location, keys = demo_store
    _one_line_error(_adapt(base, location, ["ffff0000"], tmp_path / "x"), "no video in")
    _one_line_error(_adapt(tmp_path / "nothing", location, keys, tmp_path / "x"), "is not a directory")
    _one_line_error(_adapt(base, location, keys, base), "is the base checkpoint itself")
    missing = runner.invoke(app, ["adapt", "--base", str(base), "--demos", "abc123", "--out", str(tmp_path / "x")])
    _one_line_error(missing, "pass --store")
    assert not (tmp_path / "x").exists()


def test_demos_that_forge_to_zero_samples_are_one_line(base, tmp_path):
    import cv2

    still = tmp_path / "demos" / "still_clip"  # a frame folder with no motion at all
    still.mkdir(parents=True)
    frame = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    for index in range(12):
        cv2.imwrite(str(still / f"{index:03d}.png"), frame)
    result = runner.invoke(app, ["adapt", "--base", str(base), "--demos", str(tmp_path / "demos"),
                                 "--out", str(tmp_path / "adapted"), "--steps", "1"])
    lines = [line for line in result.output.splitlines() if line.strip().startswith("error:")]
    assert result.exit_code == 1 and len(lines) == 1 and "forged to zero samples" in lines[0], result.output
    assert not (tmp_path / "adapted").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line_error(runner.invoke(app, ["adapt", "--base", str(base), "--demos", str(empty), "--out", str(tmp_path / "a")]),
                    "no demo video found")


@pytest.mark.slow
def test_adapt_forges_simulated_demo_videos_then_reuses_them(base, tmp_path):
    """Three SO-101 demos rendered by the simulator are forged (sensor depth, sidecar instructions),
    fine-tuned on, and a second run finds them in the store by content hash."""
    demos = tmp_path / "demos"
    made = runner.invoke(app, ["sim", "demos", "--task", "place_block", "--embodiment", "so101", "--episodes", "3",
                               "--out", str(demos), "--seed", "7", "--size", "96x72"])
    assert made.exit_code == 0, made.output
    store = tmp_path / "store.zarr"
    first = _adapt(base, store, [], tmp_path / "a", "--demos", demos, "--workers", 2)
    assert first.exit_code == 0, first.output
    data = json.loads((tmp_path / "a" / "config.json").read_text())["data"]
    assert len(data["demo_keys"]) == 3 and len(data["val_keys"]) == 1
    opened = TraceStore.open(store)
    for key in data["demo_keys"]:
        assert opened.video_attrs(key)["embodiment"] == "so101"  # the sidecars were read
        forge = opened.forge_configs(key)[data["forge_config_hash"][key]]
        assert forge["depth_source"] == "sensor" and forge["config"]["max_side"] == 320
    second = _adapt(base, store, [], tmp_path / "b", "--demos", demos)
    assert second.exit_code == 0 and second.output.count("already forged with these settings") == 3, second.output


def test_workers_reach_forge_and_leave_the_settings_hash_alone(base, tmp_path, monkeypatch):
    import forge.runner

    seen = []

    def forge_directory(path, location, config, on_event=None):
        seen.append((config.workers, config.hashed()))
        return forge.runner.ForgeSummary(config.hashed())

    monkeypatch.setattr(forge.runner, "forge_directory", forge_directory)
    demos = tmp_path / "demos"
    demos.mkdir()
    (demos / "clip.mp4").write_bytes(b"not decoded: forge is replaced")
    TraceStore.create(tmp_path / "store.zarr")
    for workers in (1, 3):
        result = _adapt(base, tmp_path / "store.zarr", [], tmp_path / "out", "--demos", demos, "--workers", workers)
        assert result.exit_code != 0 and "forged to zero samples" in result.output
    assert [workers for workers, _ in seen] == [1, 3] and seen[0][1] == seen[1][1]


def _scored_run(base, tmp_path, snapshot: dict):
    """A finished adapt run folder whose best snapshot (the base's weights, perturbed) scored `snapshot`."""
    import shutil

    from model.checkpoint import load_checkpoint, save_checkpoint

    run = tmp_path / "run"
    shutil.copytree(base, run)
    model, cfg, _ = load_checkpoint(base)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    save_checkpoint(run / "best", model, cfg, 7, {"data": {"kind": "adapt"}, "metrics": snapshot})
    return run


NAN = float("nan")


@pytest.mark.parametrize("snapshot, base_scores, metric, kept", [
    ({"ade_px": 2.0, "fde_moving_px": 9.0}, {"ade_px": 2.5, "fde_moving_px": 10.0}, "fde_moving_px", "step 7"),  # 10 % better
    ({"ade_px": 1.5, "fde_moving_px": 9.7}, {"ade_px": 1.7, "fde_moving_px": 10.0}, "fde_moving_px", "base"),  # 3 %: within the margin
    ({"ade_px": 1.5, "fde_moving_px": 16.2}, {"ade_px": 1.7, "fde_moving_px": 13.9}, "fde_moving_px", "base"),  # ADE better, the end worse
    ({"ade_px": 1.5, "fde_moving_px": 16.2}, {"ade_px": 1.7, "fde_moving_px": 13.9}, "ade_px", "step 7"),  # judged by ADE, 12 % better
    ({"ade_px": 1.5, "fde_moving_px": NAN}, {"ade_px": 1.7, "fde_moving_px": NAN}, "fde_moving_px", "step 7"),  # nothing moves: ADE
    ({"ade_px": 1.0, "fde_moving_px": 9.0}, {"ade_px": 1.0, "fde_moving_px": 9.0}, "fde_moving_px", "base"),  # a tie keeps the base
])
def test_adapt_keeps_a_snapshot_only_when_clearly_better_than_the_base(base, tmp_path, snapshot, base_scores, metric, kept):
    from tracegen_cli.adapt_workflow import keep_the_best

    run = _scored_run(base, tmp_path, snapshot)
    assert keep_the_best(run, base, base_scores, metric) == kept
    config = json.loads((run / "config.json").read_text())
    weights, original = _weights(run), _weights(base)
    same_as_base = all(torch.allclose(weights[name], original[name]) for name in original)
    assert same_as_base == (kept == "base")
    assert config["kept"]["weights"] == kept and config["kept"]["metric"] == metric and config["kept"]["best_snapshot_step"] == 7
    assert config["metrics"]["ade_px"] == (base_scores if kept == "base" else snapshot)["ade_px"]
    assert config["step"] == (0 if kept == "base" else 7) and not (run / "best").exists()
    assert not (run / "train_state.pt").exists()


def test_replay_mixes_the_demos_with_the_replayed_share():
    from tracegen_cli.adapt_workflow import ReplayMix

    demos, replayed = ["d0", "d1"], [f"r{i}" for i in range(6)]
    half = ReplayMix(demos, replayed, 0.5)
    assert [half[i] for i in range(len(half))] == ["d0", "d1"] * 3 + replayed  # a uniform draw: 6 of 12 replayed
    quarter = ReplayMix(demos, replayed, 0.25)
    assert len(quarter) == 24 and sum(str(quarter[i]).startswith("r") for i in range(24)) == 6
    assert len(ReplayMix(demos, ["r0"], 0.9)) == 3  # every demo stays in, however small the replayed set


@pytest.fixture(scope="module")
def replaying_base(tmp_path_factory, demo_store):
    """A base whose config.json names `demo_store` as its pretraining store, the first video as validation."""
    from model.checkpoint import save_checkpoint
    from model.config import preset
    from model.network import TraceFlowNet

    location, keys = demo_store
    cfg = preset("tiny", depth=1, width=64, heads=2, image_size=64)
    meta = {"data": {"store": str(location), "val_keys": [keys[0]], "forge_config": {"max_side": 320}}}
    return save_checkpoint(tmp_path_factory.mktemp("base") / "base", TraceFlowNet(cfg), cfg, step=7, meta=meta)


def test_adapt_replays_the_bases_training_videos(replaying_base, demo_store, tmp_path, monkeypatch):
    from tracegen_cli import adapt_workflow

    location, keys = demo_store
    drawn = []

    class Recording(adapt_workflow.ReplayMix):
        def __getitem__(self, index):
            item = super().__getitem__(index)
            drawn.append(item["video_key"])
            return item

    monkeypatch.setattr(adapt_workflow, "ReplayMix", Recording)
    result = _adapt(replaying_base, location, keys[3:], tmp_path / "adapted", "--replay", 0.5, "--no-holdout",
                    steps=4)
    assert result.exit_code == 0, result.output
    assert set(drawn) & set(keys[1:3]) and keys[3] in drawn  # trained on replayed videos and on the demo
    assert keys[0] not in drawn  # never on the base's validation video
    data = json.loads((tmp_path / "adapted" / "config.json").read_text())["data"]
    assert data["replay"] == 0.5 and data["replay_store"] == str(location)
    assert data["replay_videos"] == 3  # four in the store, less the base's validation video (the demo among them)
    assert "replay: 50% of each batch from 3 pretraining video(s)" in result.output


def test_replay_without_a_store_or_from_scratch_is_one_line(base, replaying_base, demo_store, tmp_path):
    location, keys = demo_store
    _one_line_error(_adapt(base, location, keys, tmp_path / "x", "--replay", 0.5), "names no pretraining store")
    _one_line_error(_adapt(replaying_base, location, keys, tmp_path / "x", "--replay", 0.5, "--replay-store",
                           tmp_path / "gone.zarr"), "is not readable")
    _one_line_error(_adapt(replaying_base, location, keys, tmp_path / "x", "--replay", 1.0), "--replay 1.0 is outside")
    _one_line_error(_adapt(replaying_base, location, keys, tmp_path / "x", "--replay", 0.5, "--from-scratch"),
                    "--from-scratch control")
    assert not (tmp_path / "x").exists()


class _Interrupted(Exception):
    """Raised from a run's progress callback: the run stops there, as a killed process would."""


@pytest.mark.parametrize("holdout", [True, False])
def test_an_interrupted_adapt_resumes_to_the_uninterrupted_result(base, demo_store, tmp_path, holdout):
    """Five steps, saved after each (and scored, with a held-out demo): a run stopped after its step-3 save and
    resumed ends with the weights, choice and scores of a run never stopped. A finished run is not resumed or
    overwritten."""
    from tracegen_cli.adapt_workflow import AdaptConfig, adapt

    location, keys = demo_store

    def config(out, **changes):
        return AdaptConfig(base=base, demos=[key[:10] for key in keys], out_dir=out, store=location, steps=5,
                           batch_size=2, lr=3e-3, device="cpu", threads=1, holdout=holdout, **changes)

    whole = adapt(config(tmp_path / "whole"))

    def stop_after_step_3(event):
        if event.get("event") == "checkpoint" and event["step"] == 3:
            raise _Interrupted

    with pytest.raises(_Interrupted):
        adapt(config(tmp_path / "resumed"), stop_after_step_3)
    assert json.loads((tmp_path / "resumed" / "config.json").read_text())["step"] == 3
    started = []
    resumed = adapt(config(tmp_path / "resumed", resume=True), lambda event: started.append(event))
    assert [event["step"] for event in started if event["event"] == "start"] == [3]
    assert resumed.kept == whole.kept and resumed.metrics == whole.metrics and (whole.kept == "last") != holdout
    ended, expected = _weights(tmp_path / "resumed"), _weights(tmp_path / "whole")
    assert all(torch.equal(ended[name], expected[name]) for name in expected)
    assert not (tmp_path / "resumed" / "train_state.pt").exists()

    _one_line_error(_adapt(base, location, keys, tmp_path / "whole"), "already holds a checkpoint")
    _one_line_error(_adapt(base, location, keys, tmp_path / "whole", "--resume"), "holds a finished adapt run")
    _one_line_error(_adapt(base, location, keys, tmp_path / "none", "--resume"), "holds no adapt run to resume")
    assert torch.equal(_weights(tmp_path / "whole")[next(iter(expected))], expected[next(iter(expected))])


def test_resume_refuses_other_settings(base, demo_store, tmp_path):
    from tracegen_cli.adapt_workflow import AdaptConfig, adapt

    location, keys = demo_store

    def stop_at_the_first_save(event):
        if event.get("event") == "checkpoint":
            raise _Interrupted

    with pytest.raises(_Interrupted):
        adapt(AdaptConfig(base=base, demos=[key[:10] for key in keys], out_dir=tmp_path / "run", store=location,
                          steps=5, batch_size=2, device="cpu", threads=1), stop_at_the_first_save)
    saved = (tmp_path / "run" / "model.safetensors").read_bytes()
    other_rate = _adapt(base, location, keys, tmp_path / "run", "--resume", "--lr", 1e-3, steps=5)
    assert other_rate.exit_code == 1 and "error: " in other_rate.output, other_rate.output
    assert "adapted with lr 0.0003, not 0.001" in " ".join(other_rate.output.split())
    fewer_demos = _adapt(base, location, keys[:3], tmp_path / "run", "--resume", steps=5)
    assert fewer_demos.exit_code == 1 and "adapted with demo_keys" in fewer_demos.output, fewer_demos.output
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == saved  # the interrupted run is left as it was
