"""The root of the CLI: help, version, and the single place that turns library errors into one line."""

import dataclasses
import inspect

import pytest
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


def _command_and_config(name: str):
    from forge.config import ForgeConfig
    from robot.plan_config import PlanConfig
    from tracegen_cli.adapt_workflow import AdaptConfig
    from tracegen_cli.commands.adapt import adapt
    from tracegen_cli.commands.execute import execute_command
    from tracegen_cli.commands.forge import forge_command

    return {"forge": (forge_command, ForgeConfig), "adapt": (adapt, AdaptConfig), "execute": (execute_command, PlanConfig)}[name]


@pytest.mark.parametrize(("command", "expected"), [("forge", {"colour_drift", "plain_objects", "reacquire_every", "query_every", "depth"}),
                                                   ("adapt", {"steps", "batch_size", "replay", "holdout"}),
                                                   ("execute", {"speed", "mode", "gripper"})])
def test_command_option_defaults_equal_their_config_defaults(command, expected):
    """Commands spell their defaults out for --help; a default changed in the config dataclass alone would not
    reach the command (a benchmark run once forged without the colour check its stage keys said it had)."""
    function, config = _command_and_config(command)
    config_defaults = {f.name: f.default for f in dataclasses.fields(config) if f.default is not dataclasses.MISSING}
    options = {name: parameter.default for name, parameter in inspect.signature(function).parameters.items()
               if name in config_defaults}
    assert expected <= set(options)
    assert options == {name: config_defaults[name] for name in options}
