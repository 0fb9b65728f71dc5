"""The `tracegen` root: global flags, command discovery, and the one place library errors become
one red line and exit code 1.

Every module in `tracegen_cli.commands` defines `register(app)`; a command exists exactly when its
module does. Command modules import heavy libraries (torch, cv2, zarr) inside their functions so
`tracegen --help` stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer
from rich.markup import escape
from typer.core import TyperGroup

from forge.errors import ForgeError
from model.errors import ModelError
from robot.errors import RobotError
from store.errors import StoreError
from tracegen_cli import commands
from tracegen_cli.console import configure_logging, err_console, settings

# Library error bases that carry a user-facing message naming the bad value and the fix.
USER_ERRORS: tuple[type[BaseException], ...] = (StoreError, ForgeError, ModelError, RobotError)


def report_error(exc: BaseException) -> None:
    """Print one red line for a library error (a traceback too under --verbose)."""
    if settings.verbose:
        err_console.print_exception()
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


class TraceGenGroup(TyperGroup):
    """Click group that turns library errors raised by any sub-command into one line and exit 1."""

    def invoke(self, ctx):  # ctx: typer's click Context
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            report_error(exc)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None


def package_version() -> str:
    try:
        return version("tracegen")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0+unknown"


app = typer.Typer(
    cls=TraceGenGroup,
    name="tracegen",
    help="Learn robot tasks from videos of other embodiments, in 3D trace space.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"tracegen {package_version()}")
        raise typer.Exit()


@app.callback()
def root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logs and full tracebacks.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings, errors and results.")] = False,
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Learn robot tasks from videos of other embodiments, in 3D trace space."""
    if verbose and quiet:
        raise typer.BadParameter("--verbose and --quiet exclude each other; pass one of them")
    configure_logging(verbose, quiet)


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(app)


_register_commands()


def run() -> None:
    """Console-script entry point."""
    sys.exit(app())


if __name__ == "__main__":  # `python -m tracegen_cli.main`, e.g. under `torchrun -m`
    run()
