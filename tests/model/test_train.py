"""The training loop: schedule, data order, exact resume, overfitting, and a 2-process DDP run."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from model.checkpoint import load_checkpoint, load_train_state
from model.config import TrainConfig
from model.errors import CheckpointError, ConfigError
from model.samples import SampleTransform
from model.synthetic import SyntheticTraceDataset
from model.train import _step_batches, evaluate, get_lr, selection_score, train

REPO = Path(__file__).resolve().parents[2]


def test_lr_warms_up_linearly_then_follows_a_cosine_to_the_floor():
    cfg = TrainConfig(steps=110, warmup_steps=10, lr=1.0, min_lr_ratio=0.1)
    assert [get_lr(s, cfg) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert get_lr(10, cfg) == pytest.approx(1.0)
    assert get_lr(60, cfg) == pytest.approx(0.55)  # half-way down the cosine
    assert get_lr(110, cfg) == pytest.approx(0.1) and get_lr(500, cfg) == pytest.approx(0.1)
    lrs = [get_lr(s, cfg) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def test_data_order_is_a_function_of_seed_and_step():
    stream = _step_batches(10, 4, seed=1, first_step=0, rank=0, world=1)
    batches = [next(stream) for _ in range(5)]
    resumed = _step_batches(10, 4, seed=1, first_step=3, rank=0, world=1)
    assert [next(resumed) for _ in range(2)] == batches[3:]
    epoch = [index for batch in batches[:2] for index, _ in batch] + [index for index, _ in batches[2][:2]]
    assert sorted(epoch) == list(range(10))  # each epoch visits every item once
    rank0 = _step_batches(10, 2, 1, 0, 0, 2)
    rank1 = _step_batches(10, 2, 1, 0, 1, 2)
    first = next(rank0) + next(rank1)
    assert len({seed[1] for _, seed in first}) == 4  # ranks read disjoint positions


def _cfg(out, steps, **kw):
    base = dict(out_dir=str(out), steps=steps, batch_size=2, model_overrides={"depth": 1}, warmup_steps=2,
                eval_every=0, checkpoint_every=3, eval_samples=2, log_every=1, ema_decay=0.9)
    return TrainConfig(**{**base, **kw})


@pytest.mark.slow
def test_resume_equals_an_uninterrupted_run(tmp_path):
    data = SyntheticTraceDataset(num_videos=3, samples_per_video=2)
    train(_cfg(tmp_path / "straight", 6), data)

    def interrupt(event):
        if event["event"] == "checkpoint" and event["step"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_cfg(tmp_path / "resumed", 6), data, progress=interrupt)
    assert load_train_state(tmp_path / "resumed")["step"] == 3
    train(_cfg(tmp_path / "resumed", 6), data, resume=True)
    straight, resumed = load_train_state(tmp_path / "straight"), load_train_state(tmp_path / "resumed")
    assert resumed["step"] == straight["step"] == 6
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    ema_a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    ema_b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert all(torch.equal(ema_a[name], ema_b[name]) for name in ema_a)


def test_a_finished_run_resumed_with_more_steps_continues_on_the_stretched_schedule(tmp_path):
    """`pretrain --resume --steps N` on a finished shorter run trains on from where it ended (the demo's
    `pretrain_extend_from`): steps and data continue, the rate follows the longer cosine."""
    data = SyntheticTraceDataset(num_videos=3, samples_per_video=2)
    train(_cfg(tmp_path / "run", 3), data)
    events = []
    train(_cfg(tmp_path / "run", 6), data, resume=True, progress=events.append)
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == [4, 5, 6]
    longer = _cfg(tmp_path / "run", 6)
    assert [e["lr"] for e in steps] == pytest.approx([get_lr(s, longer) for s in (3, 4, 5)])
    assert get_lr(3, longer) > get_lr(3, _cfg(tmp_path, 3))  # above the floor the short run had reached
    assert load_train_state(tmp_path / "run")["step"] == 6 and load_checkpoint(tmp_path / "run")[2]["step"] == 6


def test_resume_without_state_and_empty_data_fail_clearly(tmp_path):
    with pytest.raises(CheckpointError):
        train(_cfg(tmp_path / "none", 2), SyntheticTraceDataset(2, 1), resume=True)
    with pytest.raises(Exception, match="empty"):
        train(_cfg(tmp_path / "empty", 2), [])


def test_the_selection_score_is_the_chosen_metric_or_else_the_ade():
    metrics = {"ade_px": 1.5, "ade_moving_px": 9.9, "fde_moving_px": 16.2}
    assert selection_score(metrics, "fde_moving_px") == 16.2 and selection_score(metrics, "ade_px") == 1.5
    assert selection_score({"ade_px": 1.5, "fde_moving_px": float("nan")}, "fde_moving_px") == 1.5  # nothing moves
    with pytest.raises(ConfigError, match="select_metric 'loss' is unknown"):
        TrainConfig(select_metric="loss").validate()


@pytest.mark.parametrize("metric, best_at", [("ade_px", [1, 2]), ("fde_moving_px", [1, 3])])
def test_out_dir_best_follows_the_selection_metric_where_it_disagrees_with_ade(tmp_path, monkeypatch, metric, best_at):
    """Step 2 has the lowest all-points ADE, step 3 the lowest moving-point FDE: `best` is whichever the
    run selects by (scripted validation scores; the checkpoints are real)."""
    import model.train as train_module

    scores = iter([{"ade_px": 1.0, "ade_moving_px": 6.0, "fde_moving_px": 9.0},
                   {"ade_px": 0.5, "ade_moving_px": 6.5, "fde_moving_px": 9.5},
                   {"ade_px": 2.0, "ade_moving_px": 5.0, "fde_moving_px": 8.0}])
    monkeypatch.setattr(train_module, "evaluate", lambda *args, **kwargs: next(scores))
    events = []
    data = SyntheticTraceDataset(num_videos=2, samples_per_video=1)
    train(_cfg(tmp_path, 3, eval_every=1, checkpoint_every=1, select_metric=metric), data, data, progress=events.append)
    assert [e["step"] for e in events if e["event"] == "eval" and e["best"]] == best_at
    assert load_checkpoint(tmp_path / "best")[2]["step"] == best_at[-1]


class _Subset:
    def __init__(self, data, indices):
        self.data, self.indices = data, indices

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.data[self.indices[i]]


@pytest.mark.slow
def test_overfitting_a_handful_of_samples(tmp_path):
    """Loss falls at least 10x and the sampled traces land on the targets."""
    data = SyntheticTraceDataset(num_videos=4, samples_per_video=1, seed=3)
    losses = []
    cfg = TrainConfig(out_dir=str(tmp_path / "fit"), steps=200, batch_size=4, lr=3e-3, warmup_steps=15, augment=False,
                      ema_decay=0.0, eval_every=0, checkpoint_every=0, log_every=1, model_overrides={"cond_dropout": 0.0})
    train(cfg, data, progress=lambda e: losses.append(e["loss"]) if e["event"] == "step" else None)
    assert np.mean(losses[:5]) > 10 * np.mean(losses[-20:])
    model, model_cfg, _ = load_checkpoint(tmp_path / "fit")
    metrics = evaluate(model, data, SampleTransform(model_cfg), 4)
    assert metrics["ade_px"] < 2.0 and metrics["ade_cm"] < 2.0
    assert metrics["moving_points"] > 0 and metrics["ade_moving_px"] < 0.25 * metrics["still_ade_moving_px"]  # it learnt the motion


@pytest.mark.slow
def test_two_process_ddp_run_completes_with_synchronised_weights(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(REPO / "tests" / "model" / "ddp_worker.py"), str(tmp_path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    digests = [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)]
    assert digests[0] == digests[1]  # gradients were averaged: both replicas hold the same weights
    model, _, meta = load_checkpoint(tmp_path / "ckpt")
    assert meta["step"] == 4 and meta["world_size"] == 2
