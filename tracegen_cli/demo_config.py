"""`tracegen demo`'s settings and bookkeeping: what a run is (`DemoConfig`, its corpus `CorpusEntry`s), where its
stages write (`DemoPaths`), how a stage that already finished with the same settings is skipped on a rerun
(`cached_stage`), and the progress hook the CLI draws bars from. The stages are in `demo_stages`, the run that
strings them together in `demo_workflow`."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Protocol

from tracegen_cli.demo_cli import DemoError

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
