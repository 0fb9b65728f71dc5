"""The training loop (pre-training and fine-tuning are the same loop; fine-tuning starts from a
checkpoint's weights with a fresh schedule).

One readable function, `train`: AdamW, linear warm-up then cosine (`get_lr`), gradient clipping, EMA
weights, bf16 autocast on GPU only, periodic `evaluate` (ADE/FDE px and cm), checkpoints (`out_dir` is
the last state, `out_dir/best` the best by `select_metric`, by default the validation ADE) and exact
resume. Data order, augmentation and noise are pure functions of (seed, step), so a resumed run repeats
an uninterrupted one. Under `torchrun` it trains data-parallel (DDP; gloo on CPU, NCCL on GPU). It
reports through a `progress` callback and never prints.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from model.checkpoint import load_checkpoint, load_train_state, read_checkpoint_config, save_checkpoint
from model.config import ModelConfig, TrainConfig, preset
from model.errors import CheckpointError, ConfigError
from model.evaluate import motion_errors, trace_errors
from model.flow import masked_velocity_loss, sample_path
from model.network import TraceFlowNet
from model.normalize import deltas_to_traj
from model.predict import sample_deltas
from model.samples import AugmentConfig, SampleTransform, TransformedDataset, collate

__all__ = ["TrainConfig", "train", "get_lr", "evaluate"]
log = logging.getLogger(__name__)
Progress = Callable[[dict], None]


def get_lr(step: int, cfg: TrainConfig) -> float:
    """Learning rate at optimiser step `step`: linear warm-up to `cfg.lr`, cosine down to lr * min_lr_ratio."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1.0 + math.cos(math.pi * progress))


def _step_batches(num_items: int, batch_size: int, seed: int, first_step: int, rank: int, world: int) -> Iterator[list]:
    """Endless batches of (item index, augmentation seed) for steps first_step, first_step + 1, ...

    Global sample position g = (step * world + rank) * batch_size + j walks seeded permutations,
    one per epoch, so the order depends only on (seed, step) and resumes exactly.
    """
    step, cached_epoch, order = first_step, -1, None
    while True:
        batch = []
        for j in range(batch_size):
            position = (step * world + rank) * batch_size + j
            epoch = position // num_items
            if epoch != cached_epoch:
                order, cached_epoch = np.random.default_rng([seed, epoch]).permutation(num_items), epoch
            batch.append((int(order[position % num_items]), [seed, position]))
        yield batch
        step += 1


def _setup_distributed(device_name: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device); initialises the process group when launched by torchrun."""
    if device_name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda was asked for but no CUDA device is visible; use --device cpu or auto")
    use_cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def _build_model(cfg: TrainConfig, init_checkpoint, resume: bool) -> tuple[TraceFlowNet, ModelConfig, dict | None]:
    """The network to train, its config, and the resume state (None unless resuming)."""
    if resume:
        config = read_checkpoint_config(cfg.out_dir)
        state = load_train_state(cfg.out_dir)
        if state is None:
            raise CheckpointError(f"checkpoint {cfg.out_dir} has no train_state.pt to resume from; drop --resume to start over")
        model_cfg = ModelConfig.from_dict(config["model"])
        model = TraceFlowNet(model_cfg, load_pretrained=False)
        model.load_state_dict(state["model"])
        return model, model_cfg, state
    if init_checkpoint is not None:
        model, model_cfg, _ = load_checkpoint(init_checkpoint)
        return model.train(), model_cfg, None
    torch.manual_seed(cfg.seed)
    model_cfg = preset(cfg.preset, **cfg.model_overrides)
    return TraceFlowNet(model_cfg), model_cfg, None


def _make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on biases, norms, embeddings' position vectors)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.99))


@torch.no_grad()
def _update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for ema_param, param in zip(ema.parameters(), model.parameters(), strict=True):
        ema_param.lerp_(param.detach(), 1.0 - decay)


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def _flow_loss(model, batch: dict, generator: torch.Generator, cond_dropout: float, device, time_logit=(0.0, 0.0)):
    """Masked rectified-flow loss of one batch; noise, times and dropout come from `generator`.

    Times are logit-normal with (mean, std) = `time_logit`, uniform when std is 0.
    """
    data = batch["deltas"]  # (B, K, S, 3)
    noise = torch.randn(data.shape, generator=generator).to(device)
    if time_logit[1] > 0:
        t = torch.sigmoid(time_logit[0] + time_logit[1] * torch.randn(data.shape[0], generator=generator)).to(device)
    else:
        t = torch.rand(data.shape[0], generator=generator).to(device)  # (B,)
    drop = (torch.rand(data.shape[0], generator=generator) < cond_dropout).to(device)  # (B,)
    x_t, target = sample_path(data, noise, t)
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
        pred = model(x_t, t, batch["image"], batch["depth"], batch["has_depth"], batch["text"], batch["start"], drop)
    return masked_velocity_loss(pred, target, batch["mask"])


@torch.no_grad()
def evaluate(model: TraceFlowNet, dataset, transform: SampleTransform, max_samples: int, seed: int = 0, batch_size: int = 16) -> dict:
    """Validation loss and ADE/FDE (px, cm) of sampled traces on the first `max_samples` items, and the pixel
    ADE/FDE over the moving points beside staying still's (`model.evaluate.motion_errors`).

    Sampling uses the model config's default sampler, steps and guidance; traces are in pixels of
    each item's own image.
    """
    model.eval()
    device = next(model.parameters()).device
    count = min(max_samples, len(dataset))
    generator = torch.Generator().manual_seed(seed)
    losses, preds, targets, valids, intrinsics, sides = [], [], [], [], [], []
    for first in range(0, count, batch_size):
        items = [transform(dataset[i], np.random.default_rng([seed, i])) for i in range(first, min(count, first + batch_size))]
        batch = _to_device(collate(items), device)
        losses.append(float(_flow_loss(model, batch, generator, 0.0, device)) * len(items))
        cfg = model.cfg
        deltas = sample_deltas(
            model, batch["image"], batch["depth"], batch["has_depth"], batch["text"], batch["start"],
            cfg.sample_steps, cfg.sampler, cfg.guidance, generator,
        )  # (B, K, S, 3)
        size = batch["size"]  # (B, 2) W, H
        preds.append(deltas_to_traj(batch["start"], deltas, size[:, 0], size[:, 1], batch["has_depth"]).cpu())
        targets.append(batch["traj"].cpu())
        valids.append(batch["valid"].cpu())
        intrinsics.append(batch["intrinsics"].cpu())
        sides.append(size.amax(dim=1).cpu())
    pred, target, valid = torch.cat(preds), torch.cat(targets), torch.cat(valids)
    errors = trace_errors(pred, target, valid, torch.cat(intrinsics))
    return {"val_loss": sum(losses) / max(1, count), **errors, **motion_errors(pred, target, valid, torch.cat(sides)), "samples": count}


def selection_score(metrics: dict, metric: str) -> float:
    """`metrics[metric]`, or the all-points ADE where that is NaN or absent (no validation point moves)."""
    value = metrics.get(metric, float("nan"))
    return float(value) if value == value else float(metrics["ade_px"])


@dataclasses.dataclass
class _Run:
    """Mutable state of one training run (what a resume restores)."""

    cfg: TrainConfig
    model_cfg: ModelConfig
    model: TraceFlowNet
    ema: TraceFlowNet
    optimizer: torch.optim.AdamW
    rank: int
    world: int
    device: torch.device
    step: int = 0
    best_score: float = float("inf")  # the best `selection_score` so far
    last_metrics: dict | None = None


def _meta(run: _Run) -> dict:
    train_fields = {k: v for k, v in dataclasses.asdict(run.cfg).items() if k != "provenance"}
    return {"data": run.cfg.provenance, "train": train_fields, "metrics": run.last_metrics, "world_size": run.world}


def _save(run: _Run, best: bool) -> None:
    """Write the last checkpoint (EMA weights + resume state); on `best`, first `out_dir/best`: a run killed
    between the two resumes from the state before, which does not yet count the new best, and saves it again."""
    raw = run.model.module if hasattr(run.model, "module") else run.model
    state = {
        "model": raw.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "step": run.step,
        "best_score": run.best_score,
    }
    if best:
        save_checkpoint(Path(run.cfg.out_dir) / "best", run.ema, run.model_cfg, run.step, _meta(run))
    save_checkpoint(run.cfg.out_dir, run.ema, run.model_cfg, run.step, _meta(run), train_state=state)


def _validate_and_save(run: _Run, val_dataset, transform, progress: Progress) -> None:
    """Rank 0 only: evaluate the EMA weights, then checkpoint (best when the selection score improved)."""
    best = False
    if val_dataset is not None and len(val_dataset):
        metrics = evaluate(run.ema, val_dataset, transform, run.cfg.eval_samples, seed=run.cfg.seed)
        run.last_metrics = {"step": run.step, **metrics}
        score = selection_score(metrics, run.cfg.select_metric)
        best = score < run.best_score
        run.best_score = min(run.best_score, score)
        progress({"event": "eval", "step": run.step, **metrics, "best": best})
    _save(run, best)
    progress({"event": "checkpoint", "step": run.step, "path": str(run.cfg.out_dir), "best": best})


def _start(cfg: TrainConfig, init_checkpoint, resume: bool) -> _Run:
    rank, world, device = _setup_distributed(cfg.device)
    model, model_cfg, state = _build_model(cfg, init_checkpoint, resume)
    model = model.to(device).train()
    ema = copy.deepcopy(model).requires_grad_(False).eval()
    optimizer = _make_optimizer(model, cfg)
    run = _Run(cfg, model_cfg, model, ema, optimizer, rank, world, device)
    if state is not None:
        from safetensors.torch import load_file

        ema.load_state_dict(load_file(str(Path(cfg.out_dir) / "model.safetensors"), device=str(device)))
        optimizer.load_state_dict(state["optimizer"])
        run.step = int(state["step"])
        run.best_score = float(state.get("best_score", state.get("best_ade", float("inf"))))  # best_ade: states before select_metric
    if world > 1:
        run.model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return run


def _loader(dataset, transform, cfg: TrainConfig, run: _Run):
    batches = _step_batches(len(dataset), cfg.batch_size, cfg.seed, run.step, run.rank, run.world)
    loader = torch.utils.data.DataLoader(
        TransformedDataset(dataset, transform),
        batch_sampler=batches,
        collate_fn=collate,
        num_workers=cfg.num_workers,
        persistent_workers=cfg.num_workers > 0,
        pin_memory=run.device.type == "cuda",
    )
    return iter(loader)


def _train_step(run: _Run, batch: dict) -> float:
    cfg = run.cfg
    lr = get_lr(run.step, cfg)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + run.step * 1009 + run.rank)
    time_logit = (cfg.time_logit_mean, cfg.time_logit_std)
    loss = _flow_loss(run.model, _to_device(batch, run.device), generator, run.model_cfg.cond_dropout, run.device, time_logit)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
    run.optimizer.step()
    decay = min(cfg.ema_decay, (1 + run.step) / (10 + run.step))  # short runs: EMA must not lag the start
    _update_ema(run.ema, run.model.module if run.world > 1 else run.model, decay)
    run.step += 1
    return loss.item()


def train(
    cfg: TrainConfig,
    train_dataset,
    val_dataset=None,
    init_checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Train the trace model on `train_dataset` (items in the store's `TraceDataset` layout).

    Args:
        cfg: the run's settings; `cfg.out_dir` receives the checkpoint.
        train_dataset, val_dataset: indexable datasets of items (see `model.samples`).
        init_checkpoint: start from these weights (fine-tuning) with a fresh optimiser and schedule.
        resume: continue the run saved in `cfg.out_dir` exactly where it stopped.
        progress: called with event dicts: "start", "step" (loss, lr, samples_per_s), "eval", "checkpoint", "done".
    Returns:
        `cfg.out_dir`, a checkpoint directory holding the EMA weights of the last step.
    """
    cfg.validate()
    if len(train_dataset) == 0:
        raise ConfigError("the training set is empty; forge videos into the store or lower --val-fraction")
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    report = (progress or (lambda event: None)) if int(os.environ.get("RANK", "0")) == 0 else (lambda event: None)
    run = _start(cfg, init_checkpoint, resume)
    augment = AugmentConfig(cfg.augment, cfg.flip_prob, cfg.crop_scale, cfg.jitter)
    train_transform, val_transform = SampleTransform(run.model_cfg, augment), SampleTransform(run.model_cfg)
    report({"event": "start", "step": run.step, "steps": cfg.steps, "device": str(run.device), "world_size": run.world})
    batches = _loader(train_dataset, train_transform, cfg, run)
    window_start, window_samples = time.perf_counter(), 0
    while run.step < cfg.steps:
        loss = _train_step(run, next(batches))
        window_samples += cfg.batch_size * run.world
        if not math.isfinite(loss):
            raise ConfigError(f"loss became {loss} at step {run.step}; lower --lr (now {cfg.lr})")
        if run.step % cfg.log_every == 0 or run.step == cfg.steps:
            rate = window_samples / max(1e-9, time.perf_counter() - window_start)
            report({"event": "step", "step": run.step, "loss": loss, "lr": get_lr(run.step - 1, cfg), "samples_per_s": rate})
            window_start, window_samples = time.perf_counter(), 0
        due_eval = cfg.eval_every > 0 and run.step % cfg.eval_every == 0
        due_save = cfg.checkpoint_every > 0 and run.step % cfg.checkpoint_every == 0
        if run.step == cfg.steps or due_eval or due_save:
            if run.rank == 0:
                _validate_and_save(run, val_dataset if (due_eval or run.step == cfg.steps) else None, val_transform, report)
            if run.world > 1:
                dist.barrier()
    report({"event": "done", "step": run.step, "path": str(cfg.out_dir), "metrics": run.last_metrics})
    if run.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
    return Path(cfg.out_dir)
