"""`tracegen demo`: the whole method in simulation, ending in a success table and a report folder.

The command body; `tracegen_cli/commands/demo.py` registers it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from tracegen_cli.console import console, err_console, settings

HELP = ("Run the whole method in simulation: cross-embodiment videos -> forge -> pretrain -> adapt on five "
        "SO-101 demos -> predict + execute through the servo emulator -> success table and report.")


class RichStageProgress:
    """A `ProgressHook` drawing one Rich bar per stage."""

    def __init__(self, bars) -> None:
        self.bars = bars
        self.tasks: dict[str, int] = {}

    def begin(self, stage: str, total: int) -> None:
        self.tasks[stage] = self.bars.add_task(stage, total=max(total, 1))

    def advance(self, stage: str, amount: int = 1) -> None:
        self.bars.advance(self.tasks[stage], amount)

    def end(self, stage: str) -> None:
        task = self.tasks[stage]
        self.bars.update(task, completed=self.bars.tasks[task].total)


def stage_bars():
    """Rich bars on a console of their own: the demo sends the shared consoles to log files while a
    stage's command runs, and the bars must keep drawing on the terminal meanwhile."""
    from rich.console import Console

    from tracegen_cli.console import progress

    return progress(Console(stderr=True))


def render_success_table(report, title: str):
    """A Rich table of the success rows (one per task and condition), plus per-condition totals."""
    from rich.table import Table

    from tracegen_cli.demo_report import (
        GOAL_COLUMN,
        condition_totals,
        format_goal,
        format_rate,
        success_table,
    )

    table = Table(title=title)
    table.caption = f"{GOAL_COLUMN}: median centimetres from the goal after (before) the trials"
    for column in ("task", "condition", "success", GOAL_COLUMN, "failed", "predict ms"):  # fits 80 columns
        table.add_column(column, justify="left" if column in ("task", "condition") else "right", no_wrap=True)
    for row in success_table(report.trials):
        latency = f"{row.median_predict_ms:.1f}" if row.median_predict_ms == row.median_predict_ms else "-"
        table.add_row(row.task, row.condition, format_rate(row.successes, row.trials), format_goal(row),
                      str(row.failures_by_error), latency)
    totals = condition_totals(report.trials)
    if len({t.task for t in report.trials}) > 1:
        for condition, total in totals.items():
            table.add_row("[b]all[/]", condition, format_rate(int(total["successes"]), int(total["trials"])), "", "", "")
    return table


def demo(
    out: Annotated[Path, typer.Option("--out", help="Output folder (corpus, store, checkpoints, trials, report).")] = Path("tracegen-demo"),
    quick: Annotated[bool, typer.Option("--quick", help="Smoke run with tiny sizes (<= 3 minutes); says so in the report.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Base seed; every stage derives its seeds from it.")] = 0,
    trials: Annotated[int | None, typer.Option("--trials", help="Evaluation layouts per condition (default 8; 2 with --quick).")] = None,
    task: Annotated[str, typer.Option("--task", help="Target task of the five SO-101 demos and the evaluation.")] = "place_block",
    hold_out_task: Annotated[bool, typer.Option("--hold-out-task", help="Also leave the target task out of pretraining.")] = False,
    device: Annotated[str, typer.Option("--device", help="Torch device: cpu, cuda or auto.")] = "cpu",
    threads: Annotated[int | None, typer.Option("--threads", min=0, help="Torch CPU threads (default: one per CPU core, 0; 1 with --quick, the fastest on a busy machine).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=0, help="Processes filming, forging and running trials (default: one per CPU core, 0; 1 with --quick); the videos, traces and outcomes do not depend on it.")] = None,
    execute_mode: Annotated[str, typer.Option("--execute-mode", help="How trials execute a trace: gripper (follow its gripper points) or object (grasp the object it moves and carry it along, or push it where the trace slides it, or pull a drawer by its front).")] = "gripper",
    so101_other_tasks: Annotated[int, typer.Option("--so101-other-tasks", min=0, metavar="N", help="Add N SO-101 videos per pretraining task other than the target one (filmed by the calibrated camera): the target robot's footage of other jobs.")] = 0,
) -> None:
    """Run the whole method in simulation and print the success table."""
    from tracegen_cli.demo_cli import DemoError
    from tracegen_cli.demo_config import DemoConfig
    from tracegen_cli.demo_config import so101_other_tasks as so101_entry
    from tracegen_cli.demo_workflow import run_demo

    overrides = {"out": out, "seed": seed, "target_task": task, "hold_out_target_task": hold_out_task, "device": device,
                 "execute_mode": execute_mode}
    for name, value in (("trials", trials), ("threads", threads), ("workers", workers)):
        if value is not None:
            overrides[name] = value
    config = DemoConfig.quick_run(**overrides) if quick else DemoConfig.full(**overrides)
    if so101_other_tasks:
        config = replace(config, corpus=(*config.corpus, so101_entry(so101_other_tasks)))
    if quick:
        err_console.print("[bold yellow]--quick: a SMOKE RUN with a tiny corpus and few training steps; "
                          "it shows every stage runs, not how well the method works.[/]")
    try:
        with stage_bars() as bars:
            result = run_demo(config, RichStageProgress(bars))
    except DemoError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    title = "SMOKE RUN (--quick): success" if quick else "Task success in simulation"
    console.print(render_success_table(result.report, title))
    if not settings.quiet:
        console.print(f"report: {result.files['html']}  (also {result.files['markdown'].name}, {result.files['metrics'].name})")


def register(app: typer.Typer) -> None:
    app.command(name="demo", help=HELP)(demo)
