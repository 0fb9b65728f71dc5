"""Run another `tracegen` command in this process, as a stage of the demo.

The demo drives the other parts through the same commands a user types (`tracegen sim demos`,
`forge`, `pretrain`, `adapt`, `predict`, `execute`), so it proves the user-facing path and not a
private one. Each call runs quietly with its console output captured into a log file; a library error
propagates unchanged (the root prints it as one line), and a non-zero exit becomes a `DemoError`
naming the command and its last error line.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
from collections.abc import Iterator, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)


class DemoError(RuntimeError):
    """A demo stage that could not run: a missing part, or a command that exited with an error."""


@contextlib.contextmanager
def captured_console(log_path: Path) -> Iterator[None]:
    """Send the shared Rich consoles (and so library logs) to `log_path`, quietly, for the block."""
    from tracegen_cli.console import console, err_console, settings

    log_path.parent.mkdir(parents=True, exist_ok=True)
    # Save the consoles' own `_file` (None means "sys.stdout/sys.stderr at write time"); restoring the
    # resolved stream instead would pin them to whatever stream was current, e.g. a test's capture.
    saved = (console._file, err_console._file, settings.quiet)
    with open(log_path, "a", encoding="utf-8") as handle:
        console.file, err_console.file, settings.quiet = handle, handle, True
        try:
            yield
        finally:
            console._file, err_console._file, settings.quiet = saved


def available_commands(app=None) -> dict[str, object]:
    """The commands of `app` (default: the `tracegen` root) by name, each a Click command or group."""
    import typer.main

    if app is None:
        from tracegen_cli.main import app
    return dict(typer.main.get_command(app).commands)


def require_commands(names: Sequence[str], app=None) -> None:
    """Raise `DemoError` naming every `tracegen` command (or `group sub`) this build lacks."""
    commands = available_commands(app)
    missing = []
    for name in names:
        head, *tail = name.split()
        command = commands.get(head)
        if command is None or (tail and tail[0] not in getattr(command, "commands", {})):
            missing.append(name)
    if missing:
        raise DemoError(
            "the demo needs `tracegen " + "`, `tracegen ".join(missing) + "`, which this build does not have; "
            "install the complete package (`make demo` on a fresh clone)"
        )


def run_command(argv: Sequence[str], log_path: Path, app=None) -> None:
    """Run `tracegen ARGV...` in-process with output captured to `log_path`.

    Args:
        argv: command words and options, e.g. `["forge", "videos/", "--store", "s"]`.
        log_path: file that receives the command's console output (appended).
        app: the Typer app to run it in (default: the `tracegen` root; tests pass their own).
    Raises:
        DemoError: the command does not exist or exited non-zero.
        StoreError | ForgeError | ModelError | RobotError: propagated from the command unchanged.
    """
    argv = [str(a) for a in argv]
    commands = available_commands(app)
    if argv[0] not in commands:
        require_commands([argv[0]], app)
    logger.debug("tracegen %s", shlex.join(argv))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as handle:
        handle.write(f"\n$ tracegen {shlex.join(argv)}\n")
    with captured_console(log_path):
        code = commands[argv[0]].main(argv[1:], prog_name=f"tracegen {argv[0]}", standalone_mode=False)
    if code not in (None, 0):
        raise DemoError(f"`tracegen {shlex.join(argv[:2])} ...` exited with code {code}: "
                        f"{last_error_line(log_path)} (full output in {log_path})")


def last_error_line(log_path: Path) -> str:
    """The last line of a log that mentions an error, or its last non-empty line."""
    lines = [line.strip() for line in Path(log_path).read_text(errors="replace").splitlines() if line.strip()]
    for line in reversed(lines):
        if "error" in line.lower():
            return line
    return lines[-1] if lines else "no output"
