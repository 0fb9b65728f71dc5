"""`tracegen demo`: the whole method on the simulated tabletop, ending in a measured task success.

Stages (each a `tracegen` command run in-process, see `demo_cli`):

1. corpus   - `tracegen sim demos`: human-hand and other-robot videos of the pretraining tasks, from
              static and handheld cameras, with and without depth.
2. forge    - `tracegen forge` the corpus into a trace store.
3. pretrain - `tracegen pretrain --preset tiny` on the store.
4. targets  - five demos of the target robot (SO-101) on the target task, in layouts never used for
              evaluation; with `hold_out_target_task` the task is also absent from pretraining.
5. adapt    - `tracegen adapt` from the pretrained checkpoint, and `--from-scratch` for contrast.
6. evaluate - new seeded layouts: render the arm camera (RGB-D), predict, execute through the
              servo-bus emulator on a pseudo-terminal, check the task's success (`demo_trials`).
7. report   - metrics JSON, Markdown/HTML summary with overlays, success table (`demo_report`).

Settings, paths and the resume bookkeeping are in `demo_config`, the stages themselves in `demo_stages`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tracegen_cli.demo_cli import DemoError, require_commands
from tracegen_cli.demo_config import (
    TARGET_EMBODIMENT,
    TRIAL_SEED_BASE,
    DemoConfig,
    DemoPaths,
    NoProgress,
    ProgressHook,
    cached_stage,
)
from tracegen_cli.demo_report import DemoReport, write_report
from tracegen_cli.demo_stages import (
    adapt,
    forge_corpus,
    forge_settings,
    generate_corpus,
    generate_target_demos,
    pretrain,
)


@dataclass
class DemoResult:
    """What a run produced: the report data and the files written."""

    report: DemoReport
    files: dict[str, Path] = field(default_factory=dict)


REQUIRED_COMMANDS = ("sim demos", "forge", "pretrain", "adapt", "predict", "execute")


def resolve_tasks(config: DemoConfig) -> tuple[tuple[str, ...], str]:
    """The pretraining tasks and the target task, checked against the simulator's task list."""
    from robot.sim.tasks import TASKS

    known = tuple(TASKS)
    target = config.target_task or known[0]
    pretrain = config.tasks or ((target,) if config.quick else known)  # a smoke run keeps to one task
    for name in (*pretrain, target):
        if name not in known:
            raise DemoError(f"unknown task {name!r}; the simulator has {', '.join(known)}")
    if config.hold_out_target_task:
        pretrain = tuple(t for t in pretrain if t != target)
        if not pretrain:
            raise DemoError(f"holding out {target!r} leaves no pretraining task; pass more --tasks")
    return tuple(pretrain), target


def run_demo(config: DemoConfig, progress: ProgressHook | None = None) -> DemoResult:
    """Run every stage and write the report folder.

    Args:
        config: the run's settings.
        progress: receives per-stage progress (nothing shown when None).
    Returns:
        The report data and the paths of metrics.json, report.md and report.html.
    Raises:
        DemoError: a part is missing or a stage's command failed; library errors propagate as they are.
    """
    from tracegen_cli.demo_evaluate import evaluate_conditions
    from tracegen_cli.demo_trials import oracle_predictor

    config.validate()
    require_commands(REQUIRED_COMMANDS)
    progress = progress or NoProgress()
    paths = DemoPaths(Path(config.out))
    paths.logs.mkdir(parents=True, exist_ok=True)
    pretrain_tasks, target_task = resolve_tasks(config)
    report = DemoReport(title="TraceGen demo: simulated SO-101, pretrained on other embodiments",
                        smoke_run=config.quick, settings=config.to_json(), versions=library_versions())
    report.notes += describe_setup(config, pretrain_tasks, target_task)

    keys = stage_keys(config, pretrain_tasks, target_task)

    def timed(name: str, stage: Callable[[], None]) -> None:
        started = time.perf_counter()
        if not cached_stage(paths, name, keys[name], stage):
            report.notes.append(f"stage {name!r} reused from an earlier run in {paths.out} with the same settings")
        report.stage_seconds[name] = time.perf_counter() - started

    timed("corpus", lambda: generate_corpus(config, paths, pretrain_tasks, progress, target_task))
    timed("forge", lambda: forge_corpus(paths, pretrain_tasks, progress, config.colour_drift, config.plain_objects,
                                        config.workers))
    timed("pretrain", lambda: pretrain(config, paths, progress, keys["pretrain"]))
    timed("target demos", lambda: generate_target_demos(config, paths, target_task, progress))
    timed("adapt", lambda: adapt(config, paths, progress, keys["adapt"]))
    checkpoints = {"adapted": paths.checkpoint("adapted"), "scratch": paths.checkpoint("scratch"),
                   "zero-shot": paths.checkpoint("pretrained"), "oracle": oracle_predictor(target_task)}
    chosen = {name: checkpoints[name] for name in config.conditions}
    trial_seeds = [TRIAL_SEED_BASE + 1000 * config.seed + i for i in range(config.trials)]
    started = time.perf_counter()
    report.trials += evaluate_conditions(chosen, target_task, trial_seeds, paths.trials, paths.report,
                                         config.device, progress, paths.logs / "evaluate.log", threads=config.threads,
                                         mode=config.execute_mode, workers=config.workers)
    report.stage_seconds["evaluate"] = time.perf_counter() - started
    files = write_report(report, paths.report)
    return DemoResult(report=report, files=files)


def stage_keys(config: DemoConfig, pretrain_tasks: tuple[str, ...], target_task: str) -> dict[str, dict]:
    """The settings each stage's output depends on (upstream settings included), for resuming."""
    corpus = {"seed": config.seed, "tasks": list(pretrain_tasks), "corpus": [asdict(e) for e in config.corpus]}
    if any(e.other_tasks_only for e in config.corpus):
        corpus["target_task"] = target_task  # which task those entries skip
    forged = {**corpus, "forge": forge_settings(config.colour_drift, config.plain_objects)}
    pretrain_key = {**forged, "preset": config.preset, "pretrain_steps": config.pretrain_steps,
                    "batch_size": config.batch_size}
    if config.pretrain_lr is not None:  # only when set, so runs at the default rate keep their keys
        pretrain_key["pretrain_lr"] = config.pretrain_lr
    if config.pretrain_extend_from is not None:  # weights differ from a fresh run of pretrain_steps
        pretrain_key["extended_from"] = config.pretrain_extend_from
    targets = {"seed": config.seed, "target_task": target_task, "target_demos": config.target_demos,
               "camera": "calibrated", "start": "home"}
    adapt_key = {**pretrain_key, **targets, "adapt_steps": config.adapt_steps, "scratch": "scratch" in config.conditions}
    return {"corpus": corpus, "forge": forged, "pretrain": pretrain_key, "target demos": targets, "adapt": adapt_key}


def describe_setup(config: DemoConfig, pretrain_tasks: tuple[str, ...], target_task: str) -> list[str]:
    """Human-readable notes on what was held out and how big the corpus was."""
    videos = sum(e.episodes for e in config.corpus for task in pretrain_tasks if e.covers(task, target_task))
    kinds = ", ".join(f"{e.episodes}x {e.folder_name}" + (" (other tasks)" if e.other_tasks_only else "")
                      for e in config.corpus)
    so101 = any(e.embodiment == TARGET_EMBODIMENT for e in config.corpus)
    held_out = "the task itself, " if config.hold_out_target_task else ""
    held_out += f"SO-101 footage of {target_task!r}, " if so101 else "the SO-101 embodiment, "
    footage = "SO-101 footage of other tasks only" if so101 else "no SO-101 footage"
    return [
        f"pretraining corpus: {videos} videos of tasks {', '.join(pretrain_tasks)} ({kinds} per task); {footage}",
        f"target: {config.target_demos} SO-101 demos of {target_task!r}; held out of pretraining: {held_out}"
        "every evaluation layout",
        f"training: preset {config.preset}, {config.pretrain_steps} pretraining steps, {config.adapt_steps} adapt steps",
    ]


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose behaviour shapes the result."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in ("tracegen", "torch", "numpy", "mujoco", "zarr", "opencv-python-headless", "pycolmap"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions
