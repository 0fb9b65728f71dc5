"""Shared Rich consoles and the global output settings set by `tracegen --verbose/--quiet`."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rich.console import Console
from rich.logging import RichHandler

console = Console()
err_console = Console(stderr=True)


@dataclass
class OutputSettings:
    """Global flags parsed by the root callback; commands read them, never set them."""

    verbose: bool = False
    quiet: bool = False


settings = OutputSettings()


def configure_logging(verbose: bool, quiet: bool) -> None:
    """Route library logs through Rich on stderr at the level the flags ask for."""
    settings.verbose, settings.quiet = verbose, quiet
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, RichHandler):
            root.removeHandler(handler)
    root.addHandler(RichHandler(console=err_console, show_path=verbose, rich_tracebacks=True))
    for package in ("store", "forge", "model", "robot", "tracegen_cli"):
        logging.getLogger(package).setLevel(level)


def progress(target: Console | None = None, **kwargs):
    """A Rich progress bar on `target` (default: stderr), hidden under --quiet."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=target or err_console,
        disable=settings.quiet,
        transient=False,
        **kwargs,
    )


def motion_text(metrics: dict) -> str:
    """", moving points ADE 12.9 px (staying still 20.3 px)" from validation metrics, or "" when they have none."""
    model, still = metrics.get("ade_moving_px"), metrics.get("still_ade_moving_px")
    if model is None or still is None or model != model or still != still:  # absent or NaN
        return ""
    return f", moving points ADE {model:.2f} px (staying still {still:.2f} px)"
