"""`tracegen pretrain`: train the trace world model on a trace store.

Parses options into a `TrainConfig`, splits the store's videos into train/validation by key hash,
calls `model.train.train`, and renders its progress events. Under `torchrun` every process runs
this command; only rank 0 prints.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from tracegen_cli.console import console, motion_text, progress, settings

HELP = "Pre-train the trace world model on a trace store (CPU or GPU; data-parallel under torchrun)."


class _TrainView:
    """Renders training events: a progress bar with loss and samples/s, a line per validation."""

    def __init__(self, bar, steps: int):
        self.bar, self.steps, self.task = bar, steps, None

    def __call__(self, event: dict) -> None:
        kind = event["event"]
        if kind == "start":
            where = f"{event['device']}" + (f" x{event['world_size']}" if event["world_size"] > 1 else "")
            self.task = self.bar.add_task(f"train ({where})", total=self.steps, completed=event["step"])
        elif kind == "step" and self.task is not None:
            description = f"loss {event['loss']:.4f}  {event['samples_per_s']:.1f} samples/s"
            self.bar.update(self.task, completed=event["step"], description=description)
        elif kind == "eval":
            cm = f", ADE {event['ade_cm']:.2f} cm, FDE {event['fde_cm']:.2f} cm" if event["ade_cm"] == event["ade_cm"] else ""
            mark = " [green](best)[/]" if event["best"] else ""
            self.bar.console.print(
                f"step {event['step']}: val loss {event['val_loss']:.4f}, ADE {event['ade_px']:.2f} px, "
                f"FDE {event['fde_px']:.2f} px{cm}{motion_text(event)}{mark}",
                highlight=False,
            )


def _datasets(store: str, val_fraction: float, seed: int, steps: int):
    from store.dataset import TraceDataset, split_keys

    everything = TraceDataset(store, steps=steps)
    train_keys, val_keys = split_keys(everything.keys, val_fraction, seed)
    train_set = TraceDataset(store, keys=train_keys, steps=steps)
    val_set = TraceDataset(store, keys=val_keys, steps=steps) if val_keys else None
    provenance = {
        "kind": "pretrain",
        "store": str(everything.location),
        "train_videos": len(train_keys),
        "val_videos": len(val_keys),
        "train_samples": len(train_set),
        "val_samples": 0 if val_set is None else len(val_set),
        "val_fraction": val_fraction,
        "split_seed": seed,
        "val_keys": val_keys,
        "forge_config": _forge_settings(store, train_keys),
    }
    return train_set, val_set, provenance


def _forge_settings(store: str, keys: list[str]) -> dict | None:
    """The forge settings most training videos were read with (their newest forge group's), recorded so
    `tracegen adapt` forges new demo videos exactly as the pretraining data was forged."""
    import json
    from collections import Counter

    from store.trace_store import TraceStore

    handle = TraceStore.open(store, mode="r")
    counts = Counter()
    for key in keys:
        attrs = handle.forge_configs(key)[handle.pick_config(key, None)]
        if isinstance(attrs.get("config"), dict):
            counts[json.dumps(attrs["config"], sort_keys=True)] += 1
    return json.loads(counts.most_common(1)[0][0]) if counts else None


def _default_threads(device: str) -> int:
    """CPU threads per process: the cores shared out among the processes torchrun started here."""
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, (os.cpu_count() or 1) // local_world) if device != "cuda" else 0


def pretrain(
    store: Annotated[str, typer.Option("--store", "-s", help="Trace store (path or fsspec URL) to train on.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint directory to write (the last state; best in OUT/best).")],
    preset: Annotated[str, typer.Option(help="Model size: tiny (CPU demos), small, base (GPU).")] = "tiny",
    steps: Annotated[int, typer.Option(min=1, help="Optimiser steps in total.")] = 2000,
    batch_size: Annotated[int, typer.Option(min=1, help="Samples per step per process.")] = 16,
    lr: Annotated[float, typer.Option(min=0.0, help="Peak learning rate (AdamW; warm-up then cosine).")] = 1e-3,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run saved in --out exactly where it stopped.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    val_fraction: Annotated[float, typer.Option(min=0.0, max=0.9, help="Share of videos held out for validation.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Seeds weights, data order, augmentation, noise and the split.")] = 0,
    eval_every: Annotated[int, typer.Option(min=0, help="Validate and checkpoint every N steps (0: only at the end).")] = 500,
    workers: Annotated[int, typer.Option(min=0, help="Data-loader worker processes.")] = 0,
    threads: Annotated[int, typer.Option(min=0, help="Torch CPU threads per process (0: cores / processes).")] = 0,
    augment: Annotated[bool, typer.Option("--augment/--no-augment", help="Colour jitter, crop/scale and flips.")] = True,
    image_backbone: Annotated[str, typer.Option(help="scratch, or pretrained weights: safetensors:FILE (a conv stem), timm:NAME or hf:DIR (need timm / transformers installed).")] = "scratch",
    text_backbone: Annotated[str, typer.Option(help="hashed, or sentence-transformers:DIR (a local sentence-embedding model).")] = "hashed",
    freeze_backbone: Annotated[bool, typer.Option("--freeze-backbone/--train-backbone", help="Keep a pretrained image backbone's weights fixed.")] = True,
) -> None:
    """Pre-train the trace world model on a trace store."""
    from model.checkpoint import CONFIG
    from model.config import TrainConfig
    from model.config import preset as model_preset
    from model.encoders import check_backbone_sources
    from model.errors import CheckpointError
    from model.train import train
    from store.trace import MODEL_STEPS

    if (out / CONFIG).is_file() and not resume:
        raise CheckpointError(f"{out} already holds a checkpoint; pass --resume to continue it or choose a new --out")
    backbones = {"image_backbone": image_backbone, "text_backbone": text_backbone, "freeze_backbone": freeze_backbone}
    if resume and (out / CONFIG).is_file():
        _check_resumed_backbones(out, backbones)
    check_backbone_sources(model_preset(preset, **backbones))  # before any data is read or printed
    train_set, val_set, provenance = _datasets(store, val_fraction, seed, MODEL_STEPS)
    cfg = TrainConfig(
        out_dir=str(out), preset=preset, model_overrides=backbones, steps=steps, batch_size=batch_size, lr=lr, seed=seed, device=device,
        eval_every=eval_every, checkpoint_every=eval_every, num_workers=workers, augment=augment,
        threads=threads or _default_threads(device), warmup_steps=min(100, max(1, steps // 10)),
        log_every=max(1, min(10, steps // 100)), provenance=provenance,
    )
    rank0 = int(os.environ.get("RANK", "0")) == 0
    if rank0 and not settings.quiet:
        console.print(
            f"{provenance['train_samples']} training samples from {provenance['train_videos']} videos, "
            f"{provenance['val_samples']} validation samples from {provenance['val_videos']}",
            highlight=False,
        )
    with progress() as bar:
        train(cfg, train_set, val_set, resume=resume, progress=_TrainView(bar, steps) if rank0 else None)
    if rank0:
        _summarise(out)


def _check_resumed_backbones(out: Path, asked: dict) -> None:
    """A resumed run keeps its checkpoint's network: refuse backbone options, given away from their defaults,
    that say otherwise (left at their defaults, the checkpoint's are used)."""
    from model.checkpoint import read_checkpoint_config
    from model.config import ModelConfig
    from model.errors import CheckpointError

    saved, defaults = read_checkpoint_config(out)["model"], ModelConfig()
    for name, value in asked.items():
        if value != getattr(defaults, name) and name in saved and saved[name] != value:
            flag = {"image_backbone": "--image-backbone", "text_backbone": "--text-backbone"}.get(name, "--freeze-backbone/--train-backbone")
            raise CheckpointError(f"{out} was trained with {name} {saved[name]!r}, not {value!r}; drop {flag} to resume it")


def _summarise(out: Path) -> None:
    from model.checkpoint import CONFIG, read_checkpoint_config

    config = read_checkpoint_config(out)
    metrics = config.get("metrics") or {}
    line = f"checkpoint {config['checkpoint_id']} (step {config['step']}) written to {out}"
    if metrics:
        line += f"; val ADE {metrics['ade_px']:.2f} px, FDE {metrics['fde_px']:.2f} px{motion_text(metrics)}"
    if (out / "best" / CONFIG).is_file():
        line += f"; best in {out / 'best'}"
    console.print(line, highlight=False)


def register(app: typer.Typer) -> None:
    app.command(name="pretrain", help=HELP)(pretrain)
