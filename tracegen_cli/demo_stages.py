"""The stages of `tracegen demo`, each a `tracegen` command run in-process (`demo_cli.run_command`): film the
corpus (`generate_corpus`), forge it (`forge_corpus`), pretrain (`pretrain`), film the target demos
(`generate_target_demos`) and adapt on them (`adapt`). `sim_success.py` builds its own runs from the same parts
(`generate_demos`, `adapt_checkpoint`)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

from tracegen_cli.demo_cli import DemoError, run_command
from tracegen_cli.demo_config import (
    CORPUS_SEED_BASE,
    PRETRAIN_STARTED,
    TARGET_EMBODIMENT,
    TARGET_SEED_BASE,
    DemoConfig,
    DemoPaths,
    ProgressHook,
    cached_stage,
    mark_stage_done,
    stage_is_done,
)


def forge_settings(colour_drift: float = 0.0, plain_objects: bool = False) -> dict:
    """The settings `tracegen forge` runs with here (its defaults, `--colour-drift` and `--plain-objects`): traces,
    and so every model trained on them, change with them, so the stages after filming are keyed by them too."""
    from forge.config import ForgeConfig

    return ForgeConfig(colour_drift=colour_drift, plain_objects=plain_objects).hashed()


def forge_options(colour_drift: float = 0.0, plain_objects: bool = False) -> list:
    """The `tracegen forge` options matching `forge_settings(colour_drift, plain_objects)`."""
    return [*(["--colour-drift", colour_drift] if colour_drift else []), *(["--plain-objects"] if plain_objects else [])]


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
    interrupted = stage_is_done(paths, PRETRAIN_STARTED, settings) and is_resumable(folder)
    if not interrupted and config.pretrain_extend_from is not None:
        extend_pretraining(paths, settings)
        resume = True
    else:
        resume = start_or_resume(paths, PRETRAIN_STARTED, settings, folder)
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


def start_or_resume(paths: DemoPaths, marker: str, settings: dict, folder: Path) -> bool:
    """Whether the training run in checkpoint `folder` is an interrupted one started with `settings` (recorded in
    stage marker `marker`) that `--resume` can continue. If not, the folder is cleared and `settings` recorded as
    started, so the run starts from nothing and a later interruption of it can be resumed."""
    if stage_is_done(paths, marker, settings) and is_resumable(folder):
        return True
    shutil.rmtree(folder, ignore_errors=True)
    mark_stage_done(paths, marker, settings)
    return False


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
                     workers: int = 1, resume: bool = False) -> Path:
    """`tracegen adapt` (or `--from-scratch`) on a folder of demo videos, at `lr` (None: adapt's default),
    holding one demo out for validation unless `holdout` is false, replaying the base's pretraining videos
    in a `replay` share of each batch, keeping the weights `select` (`tracegen adapt --select`; None: its
    default) prefers, forging the demos in `workers` processes (0: one per CPU core); returns the checkpoint folder.

    The demos are forged into `store`, kept apart from the pretraining store so a later pretraining
    run in the same folder can never see target-robot footage. With `resume` (see `start_or_resume`) the
    interrupted run in `out` is continued (`tracegen adapt --resume`); otherwise a checkpoint already there is
    from other settings or an interrupted run the caller chose not to continue: it is replaced.
    """
    if not resume:
        shutil.rmtree(out, ignore_errors=True)
    argv = ["adapt", "--base", base, "--demos", demos, "--out", out, "--steps", steps, "--store", store,
            "--device", device, "--seed", seed, "--threads", threads, "--workers", processes(workers),
            *(["--resume"] if resume else [])]
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


def adapt(config: DemoConfig, paths: DemoPaths, progress: ProgressHook, settings: dict) -> None:
    """Stage 5: adapt the pretrained checkpoint on the target demos, and train the same from scratch. Under these
    `settings` (the stage's key) a run that finished is not run again and one that was interrupted continues
    where it last saved."""
    runs = [("adapted", False)] + ([("scratch", True)] if "scratch" in config.conditions else [])
    progress.begin("adapt", len(runs))
    for name, from_scratch in runs:
        folder = paths.checkpoint(name)
        cached_stage(paths, f"adapt-{name}", settings, lambda f=folder, s=from_scratch, n=name: adapt_checkpoint(
            paths.checkpoint("pretrained"), paths.targets, f, config.adapt_steps, paths.logs / "adapt.log",
            paths.demo_store, from_scratch=s, device=config.device, seed=config.seed, threads=config.threads,
            workers=config.workers, resume=start_or_resume(paths, f"adapt-{n}-started", settings, f)))
        progress.advance("adapt")
    progress.end("adapt")
