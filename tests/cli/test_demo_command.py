"""`tracegen demo` as a command: options become the config, bad settings end in one red line."""

import typer
from typer.testing import CliRunner

from tracegen_cli.demo_command import register, render_success_table
from tracegen_cli.demo_report import DemoReport, TrialRecord
from tracegen_cli.main import TraceGenGroup

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer(cls=TraceGenGroup)

    @app.callback()
    def root() -> None:
        pass

    register(app)
    return app


def test_help_names_the_stages():
    result = runner.invoke(_app(), ["demo", "--help"])
    assert result.exit_code == 0
    for word in ("--quick", "--out", "--seed", "forge", "pretrain", "emulator"):
        assert word in result.output


def test_bad_setting_is_one_line_and_exit_1(tmp_path):
    result = runner.invoke(_app(), ["demo", "--out", str(tmp_path), "--trials", "0"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and "trials=0" in lines[-1]
    assert not (tmp_path / "report").exists()  # nothing ran


def test_quick_says_it_is_a_smoke_run(tmp_path):
    result = runner.invoke(_app(), ["demo", "--quick", "--out", str(tmp_path), "--trials", "0"])
    assert "SMOKE RUN" in result.output and result.exit_code == 1


def test_success_table_rows_and_totals():
    from rich.console import Console

    trials = [TrialRecord("sweep", "adapted", 0, True, 5.0), TrialRecord("sweep", "scratch", 0, False, 6.0),
              TrialRecord("place_block", "adapted", 0, False, 7.0)]
    console = Console(width=120, record=True)
    console.print(render_success_table(DemoReport("t", False, {}, trials=trials), "Task success"))
    text = console.export_text()
    assert "1/1 (100%)" in text and "0/1 (0%)" in text and "1/2 (50%)" in text  # adapted over both tasks


def test_success_table_fits_an_80_column_terminal_with_names_whole():
    from rich.console import Console

    trials = [TrialRecord("place_block", "human-adapted", 0, False, 21.7, start_goal_cm=15.98, goal_cm=13.63),
              TrialRecord("ball_in_bin", "adapted", 0, True, 21.7, start_goal_cm=15.98, goal_cm=3.63)]
    console = Console(width=80, record=True)
    console.print(render_success_table(DemoReport("t", False, {}, trials=trials), "Task success"))
    text = console.export_text()
    assert "place_block" in text and "human-adapted" in text and "13.6 (16.0)" in text and "1/1 (100%)" in text
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80 and lines[1].endswith("┓") and "21.7 │" in text  # nothing cut off


def test_so101_other_tasks_adds_the_target_robot_on_other_tasks(tmp_path, monkeypatch):
    from tracegen_cli import demo_config, demo_workflow

    seen = []

    def fake_run_demo(config, progress=None):
        seen.append(config)
        raise demo_config.DemoError("stopped by the test")

    monkeypatch.setattr(demo_workflow, "run_demo", fake_run_demo)
    result = runner.invoke(_app(), ["demo", "--out", str(tmp_path), "--so101-other-tasks", "3"])
    assert result.exit_code == 1 and "stopped by the test" in result.output
    (config,) = seen
    (entry,) = [e for e in config.corpus if e.embodiment == "so101"]
    assert entry.episodes == 3 and entry.other_tasks_only and entry.camera == "calibrated"
    assert len(config.corpus) == len(demo_config.FULL_CORPUS) + 1
