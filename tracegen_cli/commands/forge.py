"""`tracegen forge`: a directory of human and robot videos -> camera-compensated 3D traces in a store.

    tracegen forge VIDEO_DIR --store STORE [--instruction TEXT] [--embodiment human|robot|NAME]
        [--depth auto|sensor|sfm|none] [--camera auto|static|moving] [--query-every N]
        [--max-steps 128] [--reacquire-every 4] [--workers N] [--force] [--dry-run]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tracegen_cli.console import console, progress, settings

HELP = "Turn a directory of videos into camera-compensated 3D traces in a trace store."
STATUS_STYLE = {"forged": "green", "skipped": "cyan", "failed": "red", "would forge": "yellow", "would skip": "cyan"}


def forge_command(
    video_dir: Annotated[Path, typer.Argument(help="Folder of videos (.mp4 .avi .mov .mkv .webm) and frame folders, searched recursively.")],
    store: Annotated[Path, typer.Option("--store", "-s", help="Trace store to write (created when missing).")],
    instruction: Annotated[str | None, typer.Option(help="Instruction for videos without a sidecar one (default: folder name).")] = None,
    embodiment: Annotated[str, typer.Option(help="human, robot or a robot name, for videos without a sidecar one.")] = "human",
    depth: Annotated[str, typer.Option(help="auto | sensor | sfm | none.")] = "auto",
    camera: Annotated[str, typer.Option(help="auto | static | moving.")] = "auto",
    query_every: Annotated[int, typer.Option(help="Lay a new 20x20 grid every N decoded frames.")] = 16,
    max_steps: Annotated[int, typer.Option(help="Frames tracked from each query frame (and retargeted steps), 1..128.")] = 128,
    reacquire_every: Annotated[int, typer.Option(help="Look for points lost to an occlusion every N frames (0: never; 1.2-1.6x faster on moving cameras).")] = 4,
    colour_drift: Annotated[float, typer.Option(min=0, help="Lose a tracked point whose colour moved more than this many grey levels from its first look (it slid onto another surface, e.g. a hand beside a plain object; 25 suits such clips, but traces forged with it are shorter and trained a worse model in simulation; 0: off).")] = 0.0,
    plain_objects: Annotated[bool, typer.Option("--plain-objects", help="Follow small plain-coloured objects (a ball, a block) through occlusions: lose a point whose colour jumps from one frame to the next, and find lost points on such objects again by their colour (needs --reacquire-every above 0).")] = False,
    workers: Annotated[int, typer.Option(help="Videos forged in parallel (processes).")] = 1,
    sfm_threads: Annotated[int, typer.Option(help="CPU threads per SfM reconstruction (1: repeatable run to run; more: faster, varying).")] = 1,
    force: Annotated[bool, typer.Option("--force", help="Re-forge videos already in the store with these settings.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be forged or skipped and why; write nothing.")] = False,
) -> None:
    """Forge every video under VIDEO_DIR into STORE; exit 1 when any video failed."""
    from forge.config import ForgeConfig
    from forge.runner import forge_directory

    config = ForgeConfig(depth=depth, camera=camera, query_every=query_every, max_steps=max_steps,
                         reacquire_every=reacquire_every, colour_drift=colour_drift, plain_objects=plain_objects, workers=workers, sfm_threads=sfm_threads, force=force, dry_run=dry_run, instruction=instruction,
                         embodiment=embodiment)
    with _ProgressView() as view:
        summary = forge_directory(video_dir, store, config, view.on_event)
    _print_summary(summary, store, dry_run)
    if summary.failed:
        raise typer.Exit(1)


class _ProgressView:
    """One overall bar and one bar per video in flight, fed by the runner's events."""

    def __init__(self) -> None:
        self.bars = progress()
        self.overall = None
        self.videos: dict[str, int] = {}

    def __enter__(self):
        self.bars.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bars.__exit__(*exc)

    def on_event(self, kind: str, payload: dict) -> None:
        if kind == "plan":
            self.overall = self.bars.add_task("videos", total=payload["total"])
        elif kind == "start":
            self.videos[payload["source"]] = self.bars.add_task(f"  {Path(payload['source']).name}", total=100)
        elif kind == "progress" and payload["source"] in self.videos:
            self.bars.update(self.videos[payload["source"]], completed=100 * payload["fraction"],
                             description=f"  {Path(payload['source']).name} ({payload['stage']})")
        elif kind == "done":
            source = payload["outcome"].source
            if source in self.videos:
                self.bars.remove_task(self.videos.pop(source))
            if self.overall is not None:
                self.bars.advance(self.overall)


def _print_summary(summary, store: Path, dry_run: bool) -> None:
    from rich.table import Table

    title = f"forge {'plan' if dry_run else 'summary'} -> {store} (config {summary.config_hash})"
    table = Table(title=title, title_justify="left")
    for column in ("video", "status", "samples", "seconds", "reason"):
        table.add_column(column, justify="right" if column in ("samples", "seconds") else "left")
    for outcome in summary.outcomes:
        style = STATUS_STYLE.get(outcome.status, "")
        table.add_row(Path(outcome.source).name, f"[{style}]{outcome.status}[/]", str(outcome.samples),
                      f"{outcome.seconds:.1f}", outcome.reason)
    if not settings.quiet or summary.failed:
        console.print(table)
    counts = " · ".join(f"{status} {summary.count(status)}" for status in STATUS_STYLE if summary.count(status))
    console.print(counts or "nothing to do", highlight=False)


def register(app: typer.Typer) -> None:
    app.command(name="forge", help=HELP)(forge_command)
