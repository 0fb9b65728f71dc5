"""The demo's report folder: metrics JSON, a Markdown and an HTML summary, overlay pictures and the
success table.

Pure writing: the workflow hands over trial records and stage timings; nothing here runs a model or
a simulator. The success table is data (`success_table`) so the CLI renders it with Rich and the
report renders it as Markdown/HTML from the same rows.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

GOAL_COLUMN = "to goal"  # short heading of the goal-distance column (see `format_goal`), for the terminal
GOAL_HEADING = f"{GOAL_COLUMN}, cm: after (before), median"  # the same column in the Markdown and HTML reports


@dataclass
class TrialRecord:
    """One evaluation trial: a seeded layout, a prediction, an execution and a success check.

    Attributes:
        task: simulator task name.
        condition: which model made the prediction (e.g. "adapted", "scratch", "zero-shot").
        seed: layout seed of the trial.
        success: the simulator's success check after execution (False when a stage failed).
        predict_ms: prediction latency in milliseconds (model loaded), NaN when prediction failed.
        error: one-line reason when a stage (predict, plan, execute) failed, else "".
        overlay: path of the overlay picture relative to the report folder, "" when none.
        executed_error_px: mean pixel distance between predicted and executed gripper path, NaN if unknown.
        start_goal_cm: how far the task's object was from its goal before the trial (what staying still
            leaves), centimetres; NaN if unknown.
        goal_cm: how far it is after execution (objects settled), centimetres: graded where `success` is
            all or nothing; NaN if unknown.
        travel: how far along the line from where the object stood to its goal it went, as a fraction of
            that line (1: reached the goal's centre, 0: not moved, below 0: moved away); NaN if unknown.
        off_line_cm: how far the object ended off that line, centimetres: with `travel` it tells a miss
            that fell short from one that went the wrong way; NaN if unknown.
    """

    task: str
    condition: str
    seed: int
    success: bool
    predict_ms: float = math.nan
    error: str = ""
    overlay: str = ""
    executed_error_px: float = math.nan
    start_goal_cm: float = math.nan
    goal_cm: float = math.nan
    travel: float = math.nan
    off_line_cm: float = math.nan


@dataclass(frozen=True)
class SuccessRow:
    """One row of the success table: a (task, condition) pair over its trials."""

    task: str
    condition: str
    successes: int
    trials: int
    failures_by_error: int
    median_predict_ms: float
    median_goal_cm: float = math.nan
    median_start_goal_cm: float = math.nan
    median_travel: float = math.nan
    median_off_line_cm: float = math.nan

    @property
    def rate(self) -> float:
        """Success rate in [0, 1]; NaN when there were no trials."""
        return self.successes / self.trials if self.trials else math.nan


@dataclass
class DemoReport:
    """Everything the report folder shows.

    Attributes:
        title: heading of the summary.
        smoke_run: true for `--quick` runs; the report says the numbers are a smoke test.
        settings: the workflow settings that produced the run (JSON-able).
        stage_seconds: wall-clock seconds per stage, in run order.
        trials: every evaluation trial.
        notes: free-text lines (held-out task, corpus size, failures worth knowing).
        versions: library versions that made the run.
    """

    title: str
    smoke_run: bool
    settings: dict
    stage_seconds: dict[str, float] = field(default_factory=dict)
    trials: list[TrialRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)


def success_table(trials: Sequence[TrialRecord]) -> list[SuccessRow]:
    """Aggregate trials into one row per (task, condition), in first-seen order.

    Args:
        trials: trial records.
    Returns:
        Rows with successes, trial counts, stage failures, the median prediction latency (ms) and the
        median distance of the object from its goal after and before the trials (cm), and the median share
        of the way it went and distance off that way (`TrialRecord.travel`, `off_line_cm`).
    """
    groups: dict[tuple[str, str], list[TrialRecord]] = {}
    for trial in trials:
        groups.setdefault((trial.task, trial.condition), []).append(trial)
    rows = []
    for (task, condition), members in groups.items():
        latencies = [t.predict_ms for t in members if math.isfinite(t.predict_ms)]
        rows.append(
            SuccessRow(
                task=task,
                condition=condition,
                successes=sum(t.success for t in members),
                trials=len(members),
                failures_by_error=sum(bool(t.error) for t in members),
                median_predict_ms=float(np.median(latencies)) if latencies else math.nan,
                median_goal_cm=_median([t.goal_cm for t in members]),
                median_start_goal_cm=_median([t.start_goal_cm for t in members]),
                median_travel=_median([t.travel for t in members]),
                median_off_line_cm=_median([t.off_line_cm for t in members]),
            )
        )
    return rows


def _median(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.median(finite)) if finite else math.nan


def format_goal(row: SuccessRow) -> str:
    """`"3.2 (9.8)"`: median centimetres from the goal after the trials (before them), or `"-"`."""
    if not math.isfinite(row.median_goal_cm):
        return "-"
    return f"{row.median_goal_cm:.1f} ({row.median_start_goal_cm:.1f})"


def condition_totals(trials: Sequence[TrialRecord]) -> dict[str, dict[str, float]]:
    """Success over all tasks per condition: `{condition: {successes, trials, rate}}`."""
    totals: dict[str, dict[str, float]] = {}
    for trial in trials:
        entry = totals.setdefault(trial.condition, {"successes": 0, "trials": 0, "rate": math.nan})
        entry["successes"] += int(trial.success)
        entry["trials"] += 1
    for entry in totals.values():
        entry["rate"] = entry["successes"] / entry["trials"] if entry["trials"] else math.nan
    return totals


def format_rate(successes: int, trials: int, interval: bool = False) -> str:
    """`"4/5 (80%)"`, with `interval` `"4/5 (80%, 95% CI 38-96%)"` (`wilson_interval`), or `"-"` without trials."""
    if trials == 0:
        return "-"
    if not interval:
        return f"{successes}/{trials} ({100.0 * successes / trials:.0f}%)"
    low, high = wilson_interval(successes, trials)
    return f"{successes}/{trials} ({100.0 * successes / trials:.0f}%, 95% CI {100 * low:.0f}-{100 * high:.0f}%)"


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a success rate (default 95 %): where the true rate lies, given `trials`
    all-or-nothing trials. 39/48 gives 0.68-0.90: 48 trials tell 81 % from 60 % but not from 75 %."""
    if trials <= 0:
        return math.nan, math.nan
    rate, spread = successes / trials, z * z / trials
    centre = (rate + spread / 2) / (1 + spread)
    half = z * math.sqrt(rate * (1 - rate) / trials + spread / (4 * trials)) / (1 + spread)
    return max(0.0, centre - half), min(1.0, centre + half)


def metrics_dict(report: DemoReport) -> dict:
    """The metrics JSON: settings, timings, per-row and per-condition success, every trial."""
    rows = success_table(report.trials)
    return {
        "title": report.title,
        "smoke_run": report.smoke_run,
        "settings": report.settings,
        "versions": report.versions,
        "stage_seconds": {k: round(v, 3) for k, v in report.stage_seconds.items()},
        "total_seconds": round(sum(report.stage_seconds.values()), 3),
        "conditions": condition_totals(report.trials),
        "table": [{**asdict(row), "rate": row.rate} for row in rows],
        "trials": [asdict(trial) for trial in report.trials],
        "notes": list(report.notes),
    }


def _json_safe(value):
    """Replace NaN/inf floats by None so the file is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def write_report(report: DemoReport, folder: str | Path) -> dict[str, Path]:
    """Write `metrics.json`, `report.md` and `report.html` into `folder` (overlays are already there).

    Returns:
        `{"metrics": path, "markdown": path, "html": path}`.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": folder / "metrics.json", "markdown": folder / "report.md", "html": folder / "report.html"}
    metrics = _json_safe(metrics_dict(report))
    paths["metrics"].write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    paths["markdown"].write_text(render_markdown(report))
    paths["html"].write_text(render_html(report))
    return paths


def _smoke_banner(report: DemoReport) -> str:
    return (
        "SMOKE RUN (--quick): tiny corpus, few training steps and trials. These numbers only show that "
        "every stage runs end to end; they say nothing about the method's success rate."
    )


def render_markdown(report: DemoReport) -> str:
    """The summary as Markdown: banner, success table, per-condition totals, timings, overlays."""
    lines = [f"# {report.title}", ""]
    if report.smoke_run:
        lines += [f"> **{_smoke_banner(report)}**", ""]
    lines += ["## Success", "", f"| task | condition | success | {GOAL_HEADING} | stage failures | "
              "median predict (ms) |", "|---|---|---|---|---|---|"]
    for row in success_table(report.trials):
        latency = f"{row.median_predict_ms:.1f}" if math.isfinite(row.median_predict_ms) else "-"
        lines.append(f"| {row.task} | {row.condition} | {format_rate(row.successes, row.trials, interval=True)} | {format_goal(row)} | "
                     f"{row.failures_by_error} | {latency} |")
    lines += ["", "| condition | success over all tasks |", "|---|---|"]
    for condition, total in condition_totals(report.trials).items():
        lines.append(f"| {condition} | {format_rate(int(total['successes']), int(total['trials']), interval=True)} |")
    lines += ["", "## Stages", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {name} | {seconds:.1f} |" for name, seconds in report.stage_seconds.items()]
    lines.append(f"| **total** | {sum(report.stage_seconds.values()):.1f} |")
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in report.notes]
    lines += ["", "## Trials", "", "Overlays: predicted trace coloured by time (blue = start, red = end); "
              "executed gripper path in magenta.", ""]
    for trial in report.trials:
        verdict = "success" if trial.success else "failure"
        reason = f" ({trial.error})" if trial.error else ""
        lines.append(f"### {trial.task} / {trial.condition} / seed {trial.seed}: {verdict}{reason}{_goal_note(trial)}")
        if trial.overlay:
            lines += ["", f"![{trial.task} {trial.condition} {trial.seed}]({trial.overlay})"]
        lines.append("")
    lines += ["## Settings", "", "```json", json.dumps(_json_safe(report.settings), indent=2), "```", ""]
    return "\n".join(lines)


def _goal_note(trial: TrialRecord) -> str:
    """`", 3.2 cm from the goal (9.8 before), 70 % of the way, 1.1 cm off it"`, or "" when the distances are
    unknown (the way's part left out when unknown)."""
    if not (math.isfinite(trial.goal_cm) and math.isfinite(trial.start_goal_cm)):
        return ""
    way = (f", {100 * trial.travel:.0f} % of the way, {trial.off_line_cm:.1f} cm off it"
           if math.isfinite(trial.travel) and math.isfinite(trial.off_line_cm) else "")
    return f", {trial.goal_cm:.1f} cm from the goal ({trial.start_goal_cm:.1f} before){way}"


def render_html(report: DemoReport) -> str:
    """The same summary as a self-contained HTML page (images referenced relative to the folder)."""
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{esc(report.title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #999;padding:4px 8px}"
        ".ok{color:#070}.bad{color:#a00}.smoke{background:#fe9;padding:8px;border:1px solid #c90}"
        ".trials{display:flex;flex-wrap:wrap;gap:12px}.trial{width:340px}.trial img{width:330px}</style>",
        "</head><body>",
        f"<h1>{esc(report.title)}</h1>",
    ]
    if report.smoke_run:
        parts.append(f"<p class='smoke'><b>{esc(_smoke_banner(report))}</b></p>")
    parts.append("<h2>Success</h2><table><tr><th>task</th><th>condition</th><th>success</th>"
                 f"<th>{esc(GOAL_HEADING)}</th><th>stage failures</th><th>median predict (ms)</th></tr>")
    for row in success_table(report.trials):
        latency = f"{row.median_predict_ms:.1f}" if math.isfinite(row.median_predict_ms) else "-"
        parts.append(f"<tr><td>{esc(row.task)}</td><td>{esc(row.condition)}</td>"
                     f"<td>{format_rate(row.successes, row.trials, interval=True)}</td><td>{format_goal(row)}</td>"
                     f"<td>{row.failures_by_error}</td><td>{latency}</td></tr>")
    parts.append("</table><h3>Over all tasks</h3><table><tr><th>condition</th><th>success</th></tr>")
    for condition, total in condition_totals(report.trials).items():
        parts.append(f"<tr><td>{esc(condition)}</td><td>{format_rate(int(total['successes']), int(total['trials']), interval=True)}</td></tr>")
    parts.append("</table><h2>Stages</h2><table><tr><th>stage</th><th>seconds</th></tr>")
    parts += [f"<tr><td>{esc(name)}</td><td>{seconds:.1f}</td></tr>" for name, seconds in report.stage_seconds.items()]
    parts.append(f"<tr><td><b>total</b></td><td>{sum(report.stage_seconds.values()):.1f}</td></tr></table>")
    if report.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in report.notes) + "</ul>")
    parts.append("<h2>Trials</h2><p>Predicted trace coloured by time (blue = start, red = end); executed "
                 "gripper path in magenta.</p><div class='trials'>")
    for trial in report.trials:
        css, verdict = ("ok", "success") if trial.success else ("bad", "failure")
        reason = f" ({esc(trial.error)})" if trial.error else ""
        image = f"<img src='{esc(trial.overlay)}' alt='overlay'>" if trial.overlay else ""
        parts.append(f"<div class='trial'>{image}<div>{esc(trial.task)} / {esc(trial.condition)} / seed "
                     f"{trial.seed}: <span class='{css}'>{verdict}</span>{reason}{esc(_goal_note(trial))}</div></div>")
    parts.append("</div><h2>Settings</h2><pre>" + esc(json.dumps(_json_safe(report.settings), indent=2)) + "</pre>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def path_error_px(predicted_uv: np.ndarray, executed_uv: np.ndarray) -> float:
    """Mean distance (pixels) from each executed sample to the nearest predicted path point.

    Args:
        predicted_uv: (N, 2) predicted path (e.g. the mean of the gripper points per step).
        executed_uv: (T, 2) executed path.
    Returns:
        Mean nearest-point distance in pixels; NaN when either path is empty.
    """
    predicted = np.asarray(predicted_uv, dtype=np.float64)
    executed = np.asarray(executed_uv, dtype=np.float64)
    predicted = predicted[np.isfinite(predicted).all(axis=1)]
    executed = executed[np.isfinite(executed).all(axis=1)]
    if len(predicted) == 0 or len(executed) == 0:
        return math.nan
    distance = np.linalg.norm(executed[:, None, :] - predicted[None, :, :], axis=-1)  # (T, N)
    return float(distance.min(axis=1).mean())
