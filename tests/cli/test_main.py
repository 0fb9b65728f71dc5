"""The root of the CLI: help, version, and the single place that turns library errors into one line."""

import typer
from typer.testing import CliRunner

from robot.errors import SafetyError
from store.errors import KeyLookupError
from tracegen_cli.main import TraceGenGroup, app, package_version

runner = CliRunner()


def test_help_lists_the_global_flags():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for flag in ("--verbose", "--quiet", "--version"):
        assert flag in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"tracegen {package_version()}"


def _app_raising(exc: BaseException) -> typer.Typer:
    demo = typer.Typer(cls=TraceGenGroup)

    @demo.callback()
    def root() -> None:
        pass

    @demo.command()
    def boom() -> None:
        raise exc

    return demo


def test_library_error_becomes_one_red_line_and_exit_1():
    result = runner.invoke(_app_raising(KeyLookupError("no video matches key prefix 'zz'; run `tracegen inspect STORE`")), ["boom"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["error: no video matches key prefix 'zz'; run `tracegen inspect STORE`"]
    assert "Traceback" not in result.output


def test_unexpected_errors_are_not_swallowed():
    result = runner.invoke(_app_raising(ZeroDivisionError("bug")), ["boom"])
    assert result.exit_code == 1 and isinstance(result.exception, ZeroDivisionError)


def test_robot_error_is_caught_too():
    result = runner.invoke(_app_raising(SafetyError("joint elbow_flex at 1.9 rad exceeds its 1.69 rad limit")), ["boom"])
    assert result.exit_code == 1 and "elbow_flex" in result.output


def test_brackets_in_a_message_are_printed_not_parsed_as_markup():
    result = runner.invoke(_app_raising(KeyLookupError("fault spec [missing@3] is unknown; use KIND[@ID]")), ["boom"])
    assert "fault spec [missing@3] is unknown; use KIND[@ID]" in result.output
