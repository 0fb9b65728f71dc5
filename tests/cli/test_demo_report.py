"""The demo's report writer: success arithmetic, strict JSON, Markdown/HTML content, path error."""

import json
import math

import numpy as np
import pytest

from tracegen_cli.demo_report import (
    DemoReport,
    TrialRecord,
    condition_totals,
    format_goal,
    format_rate,
    path_error_px,
    success_table,
    wilson_interval,
    write_report,
)


def _trials():
    return [
        TrialRecord("place_block", "adapted", 0, True, predict_ms=10.0, start_goal_cm=10.0, goal_cm=1.0),
        TrialRecord("place_block", "adapted", 1, True, predict_ms=30.0, start_goal_cm=12.0, goal_cm=3.0),
        TrialRecord("place_block", "adapted", 2, False, predict_ms=20.0, start_goal_cm=14.0, goal_cm=20.0),
        TrialRecord("place_block", "scratch", 0, False, error="plan rejected: joint limit"),
        TrialRecord("place_block", "scratch", 1, True, predict_ms=5.0),
        TrialRecord("ball_in_bin", "adapted", 0, False, predict_ms=7.0),
    ]


def test_success_table_counts_each_task_and_condition():
    rows = {(r.task, r.condition): r for r in success_table(_trials())}
    assert list(rows) == [("place_block", "adapted"), ("place_block", "scratch"), ("ball_in_bin", "adapted")]
    adapted = rows["place_block", "adapted"]
    assert (adapted.successes, adapted.trials) == (2, 3)
    assert adapted.rate == pytest.approx(2 / 3)
    assert adapted.median_predict_ms == 20.0
    assert (adapted.median_goal_cm, adapted.median_start_goal_cm) == (3.0, 12.0) and format_goal(adapted) == "3.0 (12.0)"
    scratch = rows["place_block", "scratch"]
    assert scratch.failures_by_error == 1 and scratch.median_predict_ms == 5.0  # NaN latency skipped
    assert math.isnan(scratch.median_goal_cm) and format_goal(scratch) == "-"  # distances unknown


def test_condition_totals_pool_tasks():
    totals = condition_totals(_trials())
    assert totals["adapted"] == {"successes": 2, "trials": 4, "rate": 0.5}
    assert totals["scratch"]["rate"] == 0.5
    assert format_rate(2, 4) == "2/4 (50%)" and format_rate(0, 0) == "-"


def test_the_rate_comes_with_its_wilson_interval():
    """39/48: p = 0.8125, z^2/n = 0.08003; centre (p + z^2/2n) / (1 + z^2/n) = 0.7893, half-width
    z * sqrt(p(1 - p)/n + z^2/4n^2) / (1 + z^2/n) = 0.1088 (worked by hand)."""
    low, high = wilson_interval(39, 48)
    assert low == pytest.approx(0.6806, abs=2e-4) and high == pytest.approx(0.8981, abs=2e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert 0.0 < wilson_interval(0, 10)[1] < 0.35 and wilson_interval(10, 10)[0] > 0.65  # never the point itself
    assert format_rate(39, 48, interval=True) == "39/48 (81%, 95% CI 68-90%)"
    assert all(math.isnan(b) for b in wilson_interval(0, 0))


def test_write_report_is_strict_json_and_says_smoke_run(tmp_path):
    report = DemoReport("TraceGen demo", smoke_run=True, settings={"seed": 3, "nan": math.nan},
                        stage_seconds={"corpus": 1.5, "pretrain": 2.5}, trials=_trials(), notes=["held out: drawer"])
    paths = write_report(report, tmp_path / "report")
    metrics = json.loads(paths["metrics"].read_text())  # strict: NaN became null
    assert metrics["smoke_run"] is True and metrics["total_seconds"] == 4.0
    assert metrics["settings"]["nan"] is None
    assert metrics["conditions"]["adapted"]["successes"] == 2
    assert metrics["trials"][3]["predict_ms"] is None and len(metrics["trials"]) == 6
    markdown = paths["markdown"].read_text()
    assert "SMOKE RUN" in markdown and "| place_block | adapted | 2/3 (67%, 95% CI 21-94%) | 3.0 (12.0) | 0 | 20.0 |" in markdown
    assert "seed 2: failure, 20.0 cm from the goal (14.0 before)" in markdown
    page = paths["html"].read_text()
    assert "SMOKE RUN" in page and "plan rejected: joint limit" in page and page.strip().endswith("</html>")


def test_full_run_report_has_no_smoke_banner(tmp_path):
    report = DemoReport("TraceGen demo", smoke_run=False, settings={}, trials=_trials())
    paths = write_report(report, tmp_path)
    assert "SMOKE" not in paths["markdown"].read_text() and "SMOKE" not in paths["html"].read_text()


def test_path_error_is_nearest_point_distance():
    predicted = np.array([[0.0, 0.0], [10.0, 0.0]])
    executed = np.array([[0.0, 3.0], [10.0, 4.0], [np.nan, 1.0]])
    assert path_error_px(predicted, executed) == pytest.approx(3.5)
    assert math.isnan(path_error_px(predicted[:0], executed))
