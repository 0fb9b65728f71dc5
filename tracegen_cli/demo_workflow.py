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
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

from tracegen_cli.demo_cli import DemoError, require_commands, run_command
from tracegen_cli.demo_report import DemoReport, write_report

logger = logging.getLogger(__name__)

# Seed offsets keep the layouts of corpus, target demos and evaluation trials disjoint.
CORPUS_SEED_BASE = 10_000
TARGET_SEED_BASE = 50_000
TRIAL_SEED_BASE = 90_000
TARGET_EMBODIMENT = "so101"
CONDITIONS = ("adapted", "scratch", "zero-shot", "oracle")  # oracle: the scripted demo's exact trace, no model
PRETRAIN_STARTED = "pretrain-started"  # marker: the settings the checkpoint folder's pretraining run was started with


@dataclass(frozen=True)
class CorpusEntry:
    """One kind of pretraining video, generated for every pretraining task.

    Attributes:
        embodiment: simulator embodiment ("human", "other_robot", or "so101": the target robot itself,
            which only `other_tasks_only` entries may use).
        camera: "static" (fixed third-person view), "handheld" (a moving, shaking phone) or "calibrated"
            (the workstation camera the trials observe with).
        depth: write a depth sidecar (an RGB-D camera) or not (RGB only).
        episodes: videos of this kind per task.
        start: the embodiment's first pose ("park", or "home": the ready pose the trials start from).
        other_tasks_only: render it for every pretraining task except the target task (footage of the
            target robot doing other jobs, the paper's "task held out of pretraining" setting).
    """

    embodiment: str
    camera: str
    depth: bool
    episodes: int
    start: str = "park"
    other_tasks_only: bool = False

    @property
    def folder_name(self) -> str:
        return f"{self.embodiment}_{self.camera}" + ("" if self.depth else "_rgb")

    def covers(self, task: str, target_task: str) -> bool:
        """Whether this kind of video is rendered for pretraining task `task`."""
        return not (self.other_tasks_only and task == target_task)


def so101_other_tasks(episodes: int) -> CorpusEntry:
    """SO-101 footage of the pretraining tasks other than the target, filmed as the target demos are."""
    return CorpusEntry(TARGET_EMBODIMENT, "calibrated", True, episodes, start="home", other_tasks_only=True)


FULL_CORPUS = (
    CorpusEntry("human", "static", True, 4),
    CorpusEntry("human", "static", False, 1),
    CorpusEntry("human", "handheld", True, 1),
    CorpusEntry("other_robot", "static", True, 4),
    CorpusEntry("other_robot", "handheld", False, 1),
)
QUICK_CORPUS = (
    CorpusEntry("human", "static", True, 1),
    CorpusEntry("other_robot", "static", True, 1),
)


@dataclass(frozen=True)
class DemoConfig:
    """Settings of one demo run; `DemoConfig.full()` and `DemoConfig.quick()` are the presets.

    Attributes:
        out: output folder (corpus, store, checkpoints, trials, report).
        seed: base seed; every stage derives its own seeds from it, so runs are reproducible.
        quick: a smoke run (tiny sizes); the output and the report say so.
        tasks: pretraining tasks; empty means every task the simulator has (only the target task
            in a quick run).
        target_task: task of the five SO-101 demos and of the evaluation; empty: the first task.
        hold_out_target_task: leave the target task out of pretraining (else only the SO-101
            embodiment and the evaluation layouts are held out).
        corpus: kinds of pretraining videos, per task.
        preset: model preset for pretraining.
        pretrain_steps, adapt_steps: optimisation steps of pretraining and of adapt/from-scratch.
        batch_size: samples per pretraining step (adapt uses its own default for five demos).
        pretrain_lr: `tracegen pretrain --lr` (None: its default); a larger batch may want a larger rate.
        pretrain_extend_from: continue the finished pretraining of this many steps (same other settings, in
            this `out`) to `pretrain_steps` with `tracegen pretrain --resume`, instead of starting over. The
            cosine schedule is stretched to the new end, so the rate climbs back from its floor to where the
            longer schedule has it: not the same weights as a fresh run of `pretrain_steps`. None: start over.
        threads: torch CPU threads for training and prediction (0: one per CPU core). With the machine to
            itself the demo trains fastest on every core (2 cores: pretraining 22 against 15 samples/s at
            1 thread); on a busy machine 1 is the fastest (with 2, every small op waits for a scheduler
            slice: predictions measured 10x slower at load 8), so the quick run, which CI runs beside other
            work, uses 1.
        target_demos: number of SO-101 demos for adapt (the paper's five).
        trials: evaluation layouts per condition.
        conditions: which models to evaluate: "adapted", "scratch", "zero-shot", and "oracle" (the
            scripted demonstration's exact trace of each layout: the ceiling the execution pipeline sets).
        device: torch device for training and prediction ("cpu", "cuda", "auto").
        execute_mode: `tracegen execute --mode` of the trials: "gripper" (follow the trace's gripper
            points) or "object" (grasp the object the trace moves and carry it along its path, or push it where the trace slides it, or pull a drawer by its front).
        colour_drift: `tracegen forge --colour-drift` for the corpus (0: forge's default, off); adapt forges
            the demos with the settings the pretrained model's corpus was forged with.
        plain_objects: `tracegen forge --plain-objects` for the corpus (off: forge's default).
        workers: processes filming (`tracegen sim demos --workers`) and forging (`tracegen forge --workers`)
            videos, and running evaluation trials, in parallel (0: one per CPU core; the quick run uses 1).
            The videos, traces and trial outcomes do not depend on it.
    """

    out: Path = Path("tracegen-demo")
    seed: int = 0
    quick: bool = False
    tasks: tuple[str, ...] = ()
    target_task: str = ""
    hold_out_target_task: bool = False
    corpus: tuple[CorpusEntry, ...] = FULL_CORPUS
    preset: str = "tiny"
    pretrain_steps: int = 600  # sized so the full run fits 15 minutes on a slow 2-core machine (README)
    adapt_steps: int = 200
    batch_size: int = 8
    pretrain_lr: float | None = None
    pretrain_extend_from: int | None = None
    threads: int = 0
    target_demos: int = 5
    trials: int = 8
    conditions: tuple[str, ...] = CONDITIONS
    device: str = "cpu"
    execute_mode: str = "gripper"
    colour_drift: float = 0.0
    plain_objects: bool = False
    workers: int = 0

    @classmethod
    def full(cls, **overrides) -> DemoConfig:
        """The default run: all tasks, the full corpus; about 15 minutes on 2 CPU cores."""
        return replace(cls(), **overrides)

    @classmethod
    def quick_run(cls, **overrides) -> DemoConfig:
        """The smoke run used by CI: one or two videos per kind, few steps and trials (<= 3 minutes)."""
        base = cls(quick=True, corpus=QUICK_CORPUS, pretrain_steps=40, adapt_steps=20, batch_size=8, trials=2,
                   conditions=("adapted", "scratch"), threads=1, workers=1)
        return replace(base, **overrides)

    def validate(self) -> None:
        """Raise `DemoError` naming the first setting out of range."""
        if self.target_demos < 1 or self.trials < 1:
            raise DemoError(f"target_demos={self.target_demos}, trials={self.trials}: both must be >= 1")
        if self.pretrain_steps < 1 or self.adapt_steps < 1:
            raise DemoError(f"pretrain_steps={self.pretrain_steps}, adapt_steps={self.adapt_steps}: both must be >= 1")
        if self.pretrain_extend_from is not None and not 1 <= self.pretrain_extend_from < self.pretrain_steps:
            raise DemoError(f"pretrain_extend_from={self.pretrain_extend_from}: extend a finished run of fewer steps "
                            f"than pretrain_steps={self.pretrain_steps}, at least 1")
        leaking = [e for e in self.corpus if e.embodiment == TARGET_EMBODIMENT and not e.other_tasks_only]
        if leaking:
            raise DemoError(f"corpus entry {leaking[0].folder_name}: target-robot footage in pretraining must be "
                            "other_tasks_only (the target task's SO-101 demos are what adapt learns from)")
        folders = [e.folder_name for e in self.corpus]
        shared = next((name for name in folders if folders.count(name) > 1), None)
        if shared:
            raise DemoError(f"two corpus entries render into the same folder {shared} (they differ only in start or "
                            "episodes); merge them into one entry")
        if self.workers < 0:
            raise DemoError(f"workers={self.workers}: use 0 (one per CPU core) or a positive count")
        if self.execute_mode not in ("gripper", "object"):
            raise DemoError(f"execute_mode {self.execute_mode!r}: pick gripper or object")
        unknown = [c for c in self.conditions if c not in CONDITIONS]
        if unknown or not self.conditions:
            raise DemoError(f"conditions {list(self.conditions)}: pick from {', '.join(CONDITIONS)}")

    def to_json(self) -> dict:
        data = asdict(self)
        data["out"] = str(self.out)
        return data


class ProgressHook(Protocol):
    """What the workflow reports while it runs (the CLI draws Rich bars from it)."""

    def begin(self, stage: str, total: int) -> None: ...

    def advance(self, stage: str, amount: int = 1) -> None: ...

    def end(self, stage: str) -> None: ...


class NoProgress:
    """A `ProgressHook` that shows nothing."""

    def begin(self, stage: str, total: int) -> None:
        pass

    def advance(self, stage: str, amount: int = 1) -> None:
        pass

    def end(self, stage: str) -> None:
        pass


@dataclass
class DemoPaths:
    """Where each stage writes inside `out`."""

    out: Path

    @property
    def corpus(self) -> Path:
        return self.out / "corpus"

    @property
    def store(self) -> Path:
        return self.out / "store"

    @property
    def demo_store(self) -> Path:
        return self.out / "demo_store"

    @property
    def targets(self) -> Path:
        return self.out / "target_demos"

    @property
    def checkpoints(self) -> Path:
        return self.out / "checkpoints"

    @property
    def trials(self) -> Path:
        return self.out / "trials"

    @property
    def report(self) -> Path:
        return self.out / "report"

    @property
    def logs(self) -> Path:
        return self.out / "logs"

    def checkpoint(self, name: str) -> Path:
        return self.checkpoints / name

    def stage_marker(self, name: str) -> Path:
        return self.out / ".stages" / f"{name}.json"


def stage_is_done(paths: DemoPaths, name: str, settings: dict) -> bool:
    """True when stage `name` already finished in `paths.out` with exactly these settings (resume)."""
    marker = paths.stage_marker(name)
    return marker.is_file() and json.loads(marker.read_text()) == json.loads(json.dumps(settings, default=str))


def mark_stage_done(paths: DemoPaths, name: str, settings: dict) -> None:
    """Record that stage `name` finished with `settings`, so a re-run with the same settings skips it."""
    marker = paths.stage_marker(name)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(settings, default=str, sort_keys=True))


def cached_stage(paths: DemoPaths, name: str, settings: dict, stage: Callable[[], object]) -> bool:
    """Run `stage` unless it already finished with the same settings; returns True when it ran."""
    if stage_is_done(paths, name, settings):
        logger.info("stage %s already done in %s with the same settings; skipped", name, paths.out)
        return False
    stage()
    mark_stage_done(paths, name, settings)
    return True


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
    timed("adapt", lambda: adapt(config, paths, progress))
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


def forge_settings(colour_drift: float = 0.0, plain_objects: bool = False) -> dict:
    """The settings `tracegen forge` runs with here (its defaults, `--colour-drift` and `--plain-objects`): traces,
    and so every model trained on them, change with them, so the stages after filming are keyed by them too."""
    from forge.config import ForgeConfig

    return ForgeConfig(colour_drift=colour_drift, plain_objects=plain_objects).hashed()


def forge_options(colour_drift: float = 0.0, plain_objects: bool = False) -> list:
    """The `tracegen forge` options matching `forge_settings(colour_drift, plain_objects)`."""
    return [*(["--colour-drift", colour_drift] if colour_drift else []), *(["--plain-objects"] if plain_objects else [])]


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


def generate_corpus(config: DemoConfig, paths: DemoPaths, tasks: tuple[str, ...], progress: ProgressHook,
                    target_task: str = "") -> None:
    """Stage 1: render the cross-embodiment pretraining videos with `tracegen sim demos` (entries marked
    `other_tasks_only` skip `target_task`)."""
    jobs = [(index, task, entry) for index, (task, entry) in enumerate(
        (task, entry) for task in tasks for entry in config.corpus) if entry.covers(task, target_task)]
    progress.begin("corpus", len(jobs))
    for index, task, entry in jobs:
        generate_demos(task, entry.embodiment, paths.corpus / task / entry.folder_name, entry.episodes,
                       CORPUS_SEED_BASE + 100 * config.seed + index, paths.logs / "corpus.log",
                       camera=entry.camera, depth=entry.depth, start=entry.start, workers=config.workers)
        progress.advance("corpus")
    progress.end("corpus")


def forge_corpus(paths: DemoPaths, tasks: tuple[str, ...], progress: ProgressHook, colour_drift: float = 0.0,
                 plain_objects: bool = False, workers: int = 1) -> None:
    """Stage 2: `tracegen forge` each task's videos into the store (already forged videos are skipped: an
    interrupted stage resumes), then remove the store's videos that are not in the corpus any more: the
    stage reruns when the corpus settings change, and pretraining reads every video in the store. `workers`
    videos are forged at once (0: one per CPU core)."""
    progress.begin("forge", len(tasks))
    for task in tasks:
        run_command(["forge", paths.corpus / task, "--store", paths.store, *forge_options(colour_drift, plain_objects),
                     "--workers", processes(workers)], paths.logs / "forge.log")
        progress.advance("forge")
    stale = prune_store(paths.store, [paths.corpus / task for task in tasks])
    if stale:
        with open(paths.logs / "forge.log", "a") as log:
            log.write(f"removed {len(stale)} video(s) of earlier corpus settings from {paths.store}\n")
    progress.end("forge")


def prune_store(store_path: Path, folders: list[Path]) -> list[str]:
    """Remove from the store every video whose file is not under `folders`; returns the removed keys."""
    from forge.inputs import discover
    from store.hashing import sha256_of_path
    from store.trace_store import TraceStore

    present = {sha256_of_path(source.path) for folder in folders if folder.is_dir() for source in discover(folder)}
    store = TraceStore.open(store_path, mode="a")
    stale = [key for key in store.keys() if key not in present]
    for key in stale:
        store.remove_video(key)
    return stale


def pretrain(config: DemoConfig, paths: DemoPaths, progress: ProgressHook, settings: dict) -> None:
    """Stage 3: `tracegen pretrain` the preset on the store. A run of these `settings` (the stage's key) that was
    interrupted continues from its last checkpoint (`--resume` repeats an uninterrupted run exactly: data order
    and noise are functions of seed and step); anything else in the folder is from other settings and is
    removed, so the stage starts from nothing. With `config.pretrain_extend_from` the finished shorter run is
    resumed to `config.pretrain_steps` instead (see `extend_pretraining`)."""
    progress.begin("pretrain", 1)
    folder = paths.checkpoint("pretrained")
    resume = stage_is_done(paths, PRETRAIN_STARTED, settings) and is_resumable(folder)
    if not resume and config.pretrain_extend_from is not None:
        extend_pretraining(paths, settings)
        resume = True
    elif not resume:
        shutil.rmtree(folder, ignore_errors=True)
        mark_stage_done(paths, PRETRAIN_STARTED, settings)
    rate = ["--lr", config.pretrain_lr] if config.pretrain_lr is not None else []
    run_command(["pretrain", "--store", paths.store, "--out", folder, "--preset", config.preset, "--steps",
                 config.pretrain_steps, "--batch-size", config.batch_size, *rate, "--device", config.device, "--seed",
                 config.seed, "--threads", config.threads, *(["--resume"] if resume else [])],
                paths.logs / "pretrain.log")
    progress.advance("pretrain")
    progress.end("pretrain")


def extend_pretraining(paths: DemoPaths, settings: dict) -> None:
    """Check that `paths.out` holds the finished run that `settings` (an extended pretraining's key) continues,
    then record the extension as started: from here an interruption resumes the extension, and the shorter
    run's checkpoint is overwritten (copy the `out` first to keep it). The finished run may itself be an
    extension (3763 -> 6000, then 6000 -> 8000): only its step count and other settings must match."""
    base = {key: value for key, value in settings.items() if key != "extended_from"}
    base["pretrain_steps"] = settings["extended_from"]
    marker = paths.stage_marker("pretrain")
    finished = json.loads(marker.read_text()) if marker.is_file() else {}
    finished.pop("extended_from", None)  # how the finished run got to its steps does not matter here
    if not (finished == json.loads(json.dumps(base, default=str)) and is_resumable(paths.checkpoint("pretrained"))):
        raise DemoError(f"{paths.out} holds no finished {base['pretrain_steps']}-step pretraining with these settings "
                        "to extend; run that first (without the extension) or drop the extension to start over")
    mark_stage_done(paths, PRETRAIN_STARTED, settings)


def is_resumable(folder: Path) -> bool:
    """Whether `folder` holds a complete checkpoint saved with its training state."""
    from model.checkpoint import CONFIG, TRAIN_STATE

    return (folder / CONFIG).is_file() and (folder / TRAIN_STATE).is_file()


def processes(workers: int) -> int:
    """`workers` processes, or one per CPU core for 0."""
    return workers or os.cpu_count() or 1


def generate_demos(task: str, embodiment: str, folder: Path, episodes: int, seed: int, log_path: Path,
                   camera: str = "static", depth: bool = True, start: str = "park", workers: int = 1) -> Path:
    """Render `episodes` demos of one embodiment doing `task` into `folder` with `tracegen sim demos`.

    Episodes already there from these settings (`robot.sim.writer.written_episodes`: the same settings write
    the same bytes) are kept and filming continues after them (`--first`), so an interrupted stage, or a
    corpus grown from 500 to 1000 episodes, renders only what is missing. `workers`: filming processes (0: one
    per CPU core). Every other file goes first: a
    stage reruns when its settings change, and videos left from other settings would otherwise be forged
    and trained on beside the new ones."""
    from robot.sim.episode import EpisodeConfig
    from robot.sim.writer import episode_files, written_episodes

    config = EpisodeConfig(task=task, embodiment=embodiment, camera=camera, seed=seed, depth=depth, start=start)
    kept = written_episodes(config, episodes, folder)
    keep = {name for index in range(kept) for name in episode_files(replace(config, index=index))}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.name in keep:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    if kept < episodes:
        argv = ["sim", "demos", "--task", task, "--embodiment", embodiment, "--episodes", episodes - kept,
                "--camera", camera, "--out", folder, "--seed", seed, "--start", start, "--first", kept,
                "--workers", processes(workers)]
        if not depth:
            argv.append("--no-depth")
        run_command(argv, log_path)
    return folder


def generate_target_demos(config: DemoConfig, paths: DemoPaths, task: str, progress: ProgressHook) -> None:
    """Stage 4: five SO-101 demos of the target task in unseen layouts, filmed by the workstation's calibrated
    RGB-D camera: the camera the evaluation trials observe with, as a user records demos with the robot's own
    camera (a random viewpoint per demo would leave the model to guess how the arm looks from its camera),
    starting from the ready pose the trials start from (a demo opening with the arm folded away would show
    the model a first frame no trial ever has)."""
    progress.begin("target demos", 1)
    generate_demos(task, TARGET_EMBODIMENT, paths.targets, config.target_demos, TARGET_SEED_BASE + 100 * config.seed,
                   paths.logs / "target_demos.log", camera="calibrated", start="home", workers=config.workers)
    progress.advance("target demos")
    progress.end("target demos")


def adapt_checkpoint(base: Path, demos: Path, out: Path, steps: int, log_path: Path, store: Path,
                     from_scratch: bool = False, device: str = "cpu", seed: int = 0, threads: int = 1,
                     lr: float | None = None, holdout: bool = True, replay: float = 0.0, select: str | None = None,
                     workers: int = 1) -> Path:
    """`tracegen adapt` (or `--from-scratch`) on a folder of demo videos, at `lr` (None: adapt's default),
    holding one demo out for validation unless `holdout` is false, replaying the base's pretraining videos
    in a `replay` share of each batch, keeping the weights `select` (`tracegen adapt --select`; None: its
    default) prefers, forging the demos in `workers` processes (0: one per CPU core); returns the checkpoint folder.

    The demos are forged into `store`, kept apart from the pretraining store so a later pretraining
    run in the same folder can never see target-robot footage. A checkpoint already in `out` is from other
    settings or an interrupted run (the caller's `cached_stage` found the stage not done): it is replaced.
    """
    shutil.rmtree(out, ignore_errors=True)
    argv = ["adapt", "--base", base, "--demos", demos, "--out", out, "--steps", steps, "--store", store,
            "--device", device, "--seed", seed, "--threads", threads, "--workers", processes(workers)]
    if from_scratch:
        argv.append("--from-scratch")
    if lr is not None:
        argv += ["--lr", lr]
    if not holdout:
        argv.append("--no-holdout")
    if replay:
        argv += ["--replay", replay]
    if select is not None:
        argv += ["--select", select]
    run_command(argv, log_path)
    return out


def adapt(config: DemoConfig, paths: DemoPaths, progress: ProgressHook) -> None:
    """Stage 5: adapt the pretrained checkpoint on the target demos, and train the same from scratch."""
    runs = [("adapted", False)] + ([("scratch", True)] if "scratch" in config.conditions else [])
    progress.begin("adapt", len(runs))
    for name, from_scratch in runs:
        adapt_checkpoint(paths.checkpoint("pretrained"), paths.targets, paths.checkpoint(name), config.adapt_steps,
                         paths.logs / "adapt.log", paths.demo_store, from_scratch=from_scratch, device=config.device,
                         seed=config.seed, threads=config.threads, workers=config.workers)
        progress.advance("adapt")
    progress.end("adapt")


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
