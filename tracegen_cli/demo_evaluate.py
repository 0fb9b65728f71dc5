"""Every (condition, layout) trial of a task, one after another or in worker processes.

Trials are independent: each opens its own seeded layout, predicts with its condition's model and executes
through its own pty emulator, so they can run in parallel. Most of a trial is the arm moving in real time
(the emulator runs the servos at the bus's pace), which leaves a 2-core machine mostly idle: two trials at
once take about half the time. Each trial writes its commands' output to `trial.log` in its folder; the
task's log receives the trials' logs in trial order, whichever finished first.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tracegen_cli.demo_report import TrialRecord
from tracegen_cli.demo_trials import Predictor, WorldFactory, load_predictor, run_trial

TRIAL_LOG = "trial.log"


@dataclass(frozen=True)
class TrialJob:
    """One trial to run; everything in it crosses to a worker process (module-level callables, paths)."""

    task: str
    condition: str
    checkpoint: Path | Predictor
    seed: int
    folder: Path
    report_dir: Path
    device: str
    mode: str
    open_world: WorldFactory | None
    make_predictor: Callable[[Path, str], Predictor]


_worker_predictors: dict[str, Predictor] = {}  # a pool worker's loaded models (the pool lives for one call)


def run_job(job: TrialJob, app=None, predictors: dict[str, Predictor] | None = None) -> TrialRecord:
    """Run one trial (in this process), its output captured to `job.folder / TRIAL_LOG`.

    `predictors` caches each condition's loaded model across the trials of one `evaluate_conditions` call
    (None: this worker process's cache)."""
    if job.open_world is None:
        from tracegen_cli.demo_sim import open_trial_world as open_world
    else:
        open_world = job.open_world
    predictors = _worker_predictors if predictors is None else predictors
    predictor = job.checkpoint if callable(job.checkpoint) else predictors.get(job.condition)
    if predictor is None:
        predictor = predictors[job.condition] = job.make_predictor(job.checkpoint, job.device)
    log_path = job.folder / TRIAL_LOG
    job.folder.mkdir(parents=True, exist_ok=True)
    log_path.unlink(missing_ok=True)  # a log left by an earlier run of this trial is not this one's
    world = open_world(job.task, job.seed)
    try:
        return run_trial(world, predictor, job.task, job.condition, job.seed, job.folder, job.report_dir, log_path,
                         app=app, mode=job.mode)
    finally:
        world.close()


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _start_worker(threads: int, log_flags: tuple[bool, bool] | None) -> None:
    """Pool initializer: torch threads, and the parent's library logging (`configure_logging`'s (verbose,
    quiet), None when the parent set none up), so a trial's log reads the same in a worker as in the parent."""
    _set_threads(threads)
    if log_flags is not None:
        from tracegen_cli.console import configure_logging

        configure_logging(*log_flags)


def _parent_log_flags() -> tuple[bool, bool] | None:
    """(verbose, quiet) when this process routes library logs through the CLI's console, else None."""
    import logging

    from rich.logging import RichHandler

    from tracegen_cli.console import settings

    configured = any(isinstance(handler, RichHandler) for handler in logging.getLogger().handlers)
    return (settings.verbose, settings.quiet) if configured else None


def evaluate_conditions(
    checkpoints: dict[str, Path | Predictor],
    task: str,
    seeds: Sequence[int],
    trials_dir: Path,
    report_dir: Path,
    device: str,
    progress,
    log_path: Path,
    open_world: WorldFactory | None = None,
    make_predictor: Callable[[Path, str], Predictor] = load_predictor,
    app=None,
    threads: int = 0,
    mode: str = "gripper",
    workers: int = 1,
) -> list[TrialRecord]:
    """Run every (condition, seed) trial of `task`; the same seeds for every condition.

    Args:
        checkpoints: condition name -> checkpoint folder (or a ready `Predictor`, e.g. `OraclePredictor`).
        seeds: layout seeds (the same layouts for every condition, so conditions compare fairly).
        trials_dir: where each trial's files go (`<condition>/seed<seed>/`).
        report_dir: the report folder (overlays are written under it).
        progress: a `ProgressHook`.
        log_path: the task's log: every trial's command output, in trial order.
        open_world: `(task, seed) -> TrialWorld`; default: the MuJoCo world of `demo_sim`.
        make_predictor: `(checkpoint, device) -> Predictor`, called once per condition and process.
        app: the Typer app the trials' commands run in (default: the `tracegen` root); only with one worker.
        threads: torch CPU threads for prediction (0 keeps torch's setting); with several workers, the
            threads (or the cores, for 0) are shared out among them.
        mode: how `tracegen execute` turns a trace into motion: "gripper" (follow the gripper's points) or
            "object" (grasp the object the trace moves and carry it along its path, or push it where the trace slides it, or pull a drawer by its front).
        workers: trials run at once, each in its own process (0: one per CPU core). With more than one,
            `open_world`, `make_predictor` and the predictors in `checkpoints` must be picklable (module-level
            functions, `functools.partial` of them, `OraclePredictor`).
    Returns:
        One record per trial, in (condition, seed) order.
    """
    jobs = [TrialJob(task, condition, checkpoint, seed, trials_dir / condition / f"seed{seed}", report_dir, device, mode,
                     open_world, make_predictor)
            for condition, checkpoint in checkpoints.items() for seed in seeds]
    processes = min(workers or os.cpu_count() or 1, len(jobs))
    if processes > 1 and app is not None:
        raise ValueError("evaluate_conditions: a custom app runs in this process only; use workers=1")
    stage = f"evaluate {task}"
    progress.begin(stage, len(jobs))
    records: list = [None] * len(jobs)
    if processes <= 1:
        if threads > 0:
            _set_threads(threads)
        predictors: dict[str, Predictor] = {}
        for index, job in enumerate(jobs):
            records[index] = run_job(job, app, predictors)
            _append_log(log_path, job)
            progress.advance(stage)
    else:
        per_process = max(1, (threads or os.cpu_count() or 1) // processes)
        context = multiprocessing.get_context("spawn")  # a forked MuJoCo/EGL context is not safe to reuse
        with ProcessPoolExecutor(max_workers=processes, mp_context=context, initializer=_start_worker,
                                 initargs=(per_process, _parent_log_flags())) as pool:
            futures = {pool.submit(run_job, job): index for index, job in enumerate(jobs)}
            try:
                for future in as_completed(futures):
                    records[futures[future]] = future.result()
                    progress.advance(stage)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # the trials not yet started do not run
                for done, index in futures.items():  # what the finished trials said stays in the task's log
                    if done.done() and not done.cancelled() and done.exception() is None:
                        _append_log(log_path, jobs[index])
                raise
        for job in jobs:
            _append_log(log_path, job)
    progress.end(stage)
    return records  # every slot filled


def _append_log(log_path: Path, job: TrialJob) -> None:
    """Append one trial's log to the task's log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    trial_log = job.folder / TRIAL_LOG
    text = trial_log.read_text(errors="replace") if trial_log.is_file() else ""
    with open(log_path, "a", encoding="utf-8") as handle:
        handle.write(f"\n# trial {job.condition} layout {job.seed}\n{text}")
