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
    """", moving points ADE 12.9 px, FDE 18.0 px (staying still 20.3 px, 27.1 px)" from validation metrics, or
    "" when they have none."""
    values = [metrics.get(key) for key in ("ade_moving_px", "fde_moving_px", "still_ade_moving_px", "still_fde_moving_px")]
    if any(value is None or value != value for value in values):  # absent or NaN
        return ""
    model_ade, model_fde, still_ade, still_fde = values
    return f", moving points ADE {model_ade:.2f} px, FDE {model_fde:.2f} px (staying still {still_ade:.2f} px, {still_fde:.2f} px)"
