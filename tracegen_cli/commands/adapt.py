"""`tracegen adapt`: fine-tune a pretrained checkpoint on a few demos (or train from scratch, the control).

The work is in `tracegen_cli.adapt_workflow`; this module parses options, shows progress and renders
the result.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from tracegen_cli.console import console, motion_text, progress, settings

HELP = "Adapt a pretrained checkpoint to a new robot or task from a few demo videos (default: five)."


class Selection(StrEnum):
    """`--select`: the held-out score that picks the kept weights (`adapt_workflow.SELECTIONS`)."""

    fde_moving = "fde-moving"
    ade_moving = "ade-moving"
    ade = "ade"


SCORE_NAMES = {"fde_moving_px": "moving points' FDE", "ade_moving_px": "moving points' ADE", "ade_px": "all points' ADE"}


class _ProgressView:
    """Turns adapt/forge/train events into a Rich progress bar and a few log lines."""

    def __init__(self, bar, steps: int, header: str):
        self.bar, self.steps, self.header = bar, steps, header
        self.task = None

    def __call__(self, event: dict) -> None:
        if self.header:  # printed once the inputs passed their checks, so an error stays one line
            console.print(self.header, highlight=False)
            self.header = ""
        kind = event.get("event")
        if kind == "forge":
            console.print(f"demos: {event['videos']} video(s) into {event['store']}", highlight=False)
            self.task = self.bar.add_task("forge", total=event["videos"])
        elif kind == "forge_video" and self.task is not None:
            self.bar.advance(self.task)
            colour = {"forged": "green", "skipped": "dim", "failed": "yellow"}.get(event["status"], "")
            console.print(f"  [{colour}]{event['status']}[/] {Path(event['path']).name}: {event['reason']}", highlight=False, soft_wrap=True)
        elif kind == "split":
            val = ", ".join(key[:12] for key in event["val"]) or "none (fewer than 3 demos or --no-holdout)"
            console.print(f"train on {len(event['train'])} demo(s); held out: {val}")
        elif kind == "replay":
            console.print(f"replay: {event['share']:.0%} of each batch from {event['videos']} pretraining video(s) in {event['store']}",
                          highlight=False)
        elif kind == "zero_shot":
            console.print(f"base model on the held-out demo: ADE {event['ade_px']:.2f} px, FDE {event['fde_px']:.2f} px"
                          f"{motion_text(event)}")
        elif kind == "start":
            self.task = self.bar.add_task(f"train ({event['device']})", total=self.steps, completed=event["step"])
        elif kind == "step" and self.task is not None:
            self.bar.update(self.task, completed=event["step"], description=f"train loss {event['loss']:.4f}")


def adapt(
    base: Annotated[Path, typer.Option("--base", "-b", help="Pretrained checkpoint directory.")],
    demos: Annotated[list[str], typer.Option("--demos", "-d", help="Folder of demo videos, video files, or store keys (repeat).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint directory to write.")],
    steps: Annotated[int, typer.Option(min=1, help="Optimiser steps.")] = 300,
    from_scratch: Annotated[bool, typer.Option("--from-scratch", help="Train the base's architecture from random weights on the demos alone.")] = False,
    store: Annotated[Path | None, typer.Option(help="Trace store for the demos (default: tracegen-demos.zarr beside --out).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Samples per step.")] = 8,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (default 3e-4; 1e-3 with --from-scratch).")] = None,
    holdout: Annotated[bool, typer.Option("--holdout/--no-holdout", help="Hold one demo out for validation (with 3 or more).")] = True,
    replay: Annotated[float, typer.Option(help="Share of each batch drawn from the base's pretraining videos (0: the demos alone), so it keeps what it knew.")] = 0.0,
    replay_store: Annotated[Path | None, typer.Option(help="Store to replay (default: the base's pretraining store, named in its config.json).")] = None,
    select: Annotated[Selection, typer.Option(help="Held-out score that picks the weights kept: where the moving points end, "
                                               "their whole path, or all points; a snapshot must beat the base by 5 %.")] = Selection.fde_moving,
    seed: Annotated[int, typer.Option(help="Seed of weights, data order, augmentation and noise.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int, typer.Option(min=0, help="Torch CPU threads (0: torch's default).")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="Demo videos forged in parallel (processes); the traces do not depend on it.")] = 1,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the interrupted run in --out where it last saved (same base, demos and options).")] = False,
) -> None:
    """Adapt a pretrained checkpoint to a new robot or task from a few demo videos (default: five)."""
    from tracegen_cli.adapt_workflow import AdaptConfig
    from tracegen_cli.adapt_workflow import adapt as run_adapt

    cfg = AdaptConfig(base=base, demos=list(demos), out_dir=out, store=store, steps=steps, from_scratch=from_scratch,
                      batch_size=batch_size, lr=lr, holdout=holdout, seed=seed, device=device, threads=threads,
                      replay=replay, replay_store=replay_store, select=select.value, workers=workers, resume=resume)
    mode = "from scratch (control: same architecture, random weights)" if from_scratch else f"from {base}"
    mode += f", resuming {out}" if resume else ""
    header = f"adapt {mode}: {steps} steps, demo store {cfg.store_location}"
    with progress() as bar:
        result = run_adapt(cfg, _ProgressView(bar, steps, header))
    _render(result)


def _render(result) -> None:
    import json

    from rich.table import Table

    config = json.loads((Path(result.checkpoint) / "config.json").read_text())
    table = Table(title="demos", show_edge=False)
    for column in ("key", "samples", "role", "forged now"):
        table.add_column(column)
    for key in result.demos.keys:
        role = "validation" if key in result.val_keys else "train"
        table.add_row(key[:12], str(result.demos.samples[key]), role, "yes" if key in result.demos.forged else "reused")
    if not settings.quiet:
        console.print(table)
    if result.forge_source == "defaults":
        console.print("[yellow]the base checkpoint records no forge settings: demos were forged with forge defaults[/]")
    elif result.forge_source == "base store":
        console.print("demos forged with the settings of the base's training videos (read from its store)")
    if result.metrics:
        line = f"held-out demo: ADE {result.metrics['ade_px']:.2f} px, FDE {result.metrics['fde_px']:.2f} px{motion_text(result.metrics)}"
        if result.base_metrics:
            line += f" (base model: ADE {result.base_metrics['ade_px']:.2f} px, FDE {result.base_metrics['fde_px']:.2f} px)"
        console.print(line)
    scored = config.get("kept") or {}
    name, scores = SCORE_NAMES.get(scored.get("metric"), scored.get("metric")), scored.get("held_out") or {}
    if result.kept == "base":
        console.print(f"[yellow]kept the base model's weights: on the held-out demo the best training snapshot (step "
                      f"{scored['best_snapshot_step']}) has {name} {scores['best_snapshot']:.2f} px, the base "
                      f"{scores['base']:.2f} px, and a snapshot must be {100 * scored['margin']:.0f} % better (these demos add nothing it did not "
                      "already predict; try more or other demos)[/]", highlight=False)
    elif result.kept != "last":
        base = f", the base {scores['base']:.2f} px" if scores.get("base") is not None else ""
        console.print(f"kept the snapshot of {result.kept}: on the held-out demo its {name} is {scores['best_snapshot']:.2f} px{base}",
                      highlight=False)
    console.print(f"wrote checkpoint {result.checkpoint} (id {config['checkpoint_id']})", highlight=False)


def register(app: typer.Typer) -> None:
    app.command(name="adapt", help=HELP)(adapt)
