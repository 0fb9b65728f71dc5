"""The demo's report writer: success arithmetic, strict JSON, Markdown/HTML content and overlay pixels."""

import json
import math

import numpy as np
import pytest

from store.trace import NUM_POINTS, grid_points
from tracegen_cli.demo_report import (
    EXECUTED_COLOUR,
    DemoReport,
    TrialRecord,
    condition_totals,
    draw_overlay,
    format_rate,
    moving_points,
    path_error_px,
    save_overlay,
    success_table,
    write_report,
)


def _trials():
    return [
        TrialRecord("place_block", "adapted", 0, True, predict_ms=10.0),
        TrialRecord("place_block", "adapted", 1, True, predict_ms=30.0),
        TrialRecord("place_block", "adapted", 2, False, predict_ms=20.0),
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
    scratch = rows["place_block", "scratch"]
    assert scratch.failures_by_error == 1 and scratch.median_predict_ms == 5.0  # NaN latency skipped


def test_condition_totals_pool_tasks():
    totals = condition_totals(_trials())
    assert totals["adapted"] == {"successes": 2, "trials": 4, "rate": 0.5}
    assert totals["scratch"]["rate"] == 0.5
    assert format_rate(2, 4) == "2/4 (50%)" and format_rate(0, 0) == "-"


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
    assert "SMOKE RUN" in markdown and "| place_block | adapted | 2/3 (67%) | 0 | 20.0 |" in markdown
    page = paths["html"].read_text()
    assert "SMOKE RUN" in page and "plan rejected: joint limit" in page and page.strip().endswith("</html>")


def test_full_run_report_has_no_smoke_banner(tmp_path):
    report = DemoReport("TraceGen demo", smoke_run=False, settings={}, trials=_trials())
    paths = write_report(report, tmp_path)
    assert "SMOKE" not in paths["markdown"].read_text() and "SMOKE" not in paths["html"].read_text()


def _trace_moving_one_row(width=64, height=48, shift=10.0, steps=5):
    start = grid_points(width, height)  # (K, 2)
    traj = np.full((NUM_POINTS, 8, 3), np.nan, dtype=np.float32)
    for step in range(steps):
        traj[:, step, :2] = start
        traj[:, step, 2] = 0.5
    mover = np.arange(20, 40)  # the second grid row moves right
    for step in range(steps):
        traj[mover, step, 0] += shift * step / (steps - 1)
    valid = np.zeros(8, dtype=bool)
    valid[:steps] = True
    return traj, valid, mover


def test_moving_points_are_exactly_the_displaced_row():
    traj, valid, mover = _trace_moving_one_row()
    np.testing.assert_array_equal(moving_points(traj, valid), mover)


def test_overlay_draws_predicted_and_executed_paths(tmp_path):
    traj, valid, _ = _trace_moving_one_row()
    image = np.zeros((48, 64, 3), dtype=np.uint8)
    executed = np.array([[5.0, 40.0], [30.0, 40.0], [60.0, 40.0]])
    picture = draw_overlay(image, traj, valid, executed_uv=executed, scale=2)
    assert picture.shape == (96, 128, 3)
    row_v = int(round(grid_points(64, 48)[20, 1] * 2))  # the moving row, in the upscaled picture
    assert picture[row_v - 1 : row_v + 2].any()  # predicted lines drawn on that row
    magenta = np.array(EXECUTED_COLOUR[::-1])  # BGR constant -> RGB picture
    assert (np.abs(picture[78:83, 20:100].astype(int) - magenta).sum(-1) < 60).any()
    assert not picture[10:20, 20:100].any()  # a still row stays black (not moving, not drawn)
    path = save_overlay(tmp_path / "o" / "x.png", picture)
    assert path.stat().st_size > 100


def test_path_error_is_nearest_point_distance():
    predicted = np.array([[0.0, 0.0], [10.0, 0.0]])
    executed = np.array([[0.0, 3.0], [10.0, 4.0], [np.nan, 1.0]])
    assert path_error_px(predicted, executed) == pytest.approx(3.5)
    assert math.isnan(path_error_px(predicted[:0], executed))
