"""Task success in simulation: the paper's Table 1 in miniature, on a CPU.

For each task and N seeded evaluation layouts, the success of
  (a) pretrained + 5 target-robot (SO-101) demos          ("adapted")
  (b) the same architecture trained from scratch on them   ("scratch")
  (c) the pretrained model with no demos                   ("zero-shot")
  (d) pretrained + 5 human-hand phone-video demos          ("human-adapted")
  (o) the scripted demonstration's exact trace, no model   ("oracle": the execution pipeline's ceiling)
and the prediction latency; and, offline, each model's moving-point ADE/FDE on the first frames of
`--heldout-layouts` further SO-101 demos of unseen layouts beside staying still (more layouts than the
trials, no execution in between: does the model generalise at all?). Every trial renders the arm camera (RGB-D), predicts, executes through the
servo-bus emulator on a pseudo-terminal (the path a real arm takes) and asks the simulator whether the
task succeeded. Goals: (a) >= 80 %, (a) - (b) >= 40 points, (d) >= 60 %; the numbers are reported as
measured.

Usage:
    MUJOCO_GL=egl .venv/bin/python benchmarks/sim_success.py --trials 5 --out bench-sim-success

Prints a table on stderr and one JSON object per line on stdout. Stages already finished in `--out`
with the same settings are reused, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import platform
import shutil
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_TASKS = ("place_block", "ball_in_bin", "open_drawer", "sweep")
CONDITIONS = {"adapted": "(a) pretrained + 5 SO-101 demos", "scratch": "(b) from scratch on the same 5 demos",
              "zero-shot": "(c) pretrained, zero-shot", "human-adapted": "(d) pretrained + 5 human-hand demos",
              "oracle": "(o) the scripted demo's exact trace, no model (the execution pipeline's ceiling)"}
HUMAN_SEED_BASE = 70_000
HELDOUT_SEED_BASE = 95_000  # SO-101 demos of unseen layouts, scored offline (disjoint from demo and trial layouts)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from tracegen_cli.adapt_workflow import SELECTIONS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench-sim-success"), help="work folder (reused)")
    parser.add_argument("--trials", type=int, default=5, help="seeded evaluation layouts per task and condition")
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help="comma-separated simulator tasks")
    parser.add_argument("--eval-tasks", default="",
                        help="comma-separated subset of --tasks to adapt to and evaluate (default: every task)")
    parser.add_argument("--so101-other-tasks", type=int, default=0, metavar="N",
                        help="add N SO-101 videos per pretraining task other than the evaluated one, filmed by the "
                             "calibrated camera the demos and trials use (needs a single --eval-tasks task)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pretrain-steps", type=int, default=1500)
    parser.add_argument("--adapt-steps", type=int, default=300)
    parser.add_argument("--finetune-lr", type=float, default=None,
                        help="peak learning rate of the adapted conditions (default: tracegen adapt's)")
    parser.add_argument("--forge-colour-drift", type=float, default=0.0, metavar="G",
                        help="tracegen forge --colour-drift for the corpus and the held-out layouts (0: off, forge's default)")
    parser.add_argument("--forge-plain-objects", action="store_true",
                        help="tracegen forge --plain-objects for the corpus and the held-out layouts (off: forge's default)")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="processes filming and forging videos (0: one per CPU core; videos and traces do not depend on it)")
    parser.add_argument("--adapt-replay", type=float, default=0.0, metavar="SHARE",
                        help="share of each adapt batch replayed from the pretraining corpus (tracegen adapt --replay; 0: off)")
    parser.add_argument("--adapt-select", choices=tuple(SELECTIONS), default="fde-moving",
                        help="held-out score that picks the weights adapt keeps (tracegen adapt --select)")
    parser.add_argument("--adapt-on-all-demos", action="store_true",
                        help="adapt (and train scratch) on all five demos: tracegen adapt --no-holdout, so no held-out "
                             "demo score in the logs (the --heldout-layouts scores remain)")
    parser.add_argument("--quick-corpus", action="store_true", help="the demo's --quick corpus (smoke run)")
    parser.add_argument("--episodes-per-kind", type=int, default=0,
                        help="cap the videos of each corpus kind per task (0: the demo's full corpus)")
    parser.add_argument("--corpus-scale", type=int, default=1,
                        help="multiply the videos of each corpus kind per task (more pretraining data: "
                             "the simulated corpus costs ~2 s per video to render and forge)")
    parser.add_argument("--batch-size", type=int, default=16, help="pretraining batch size")
    parser.add_argument("--pretrain-lr", type=float, default=None,
                        help="pretraining peak learning rate (tracegen pretrain --lr; default: its own)")
    parser.add_argument("--pretrain-extend-from", type=int, default=None, metavar="N",
                        help="continue the finished N-step pretraining in --out (same other settings) to "
                             "--pretrain-steps with tracegen pretrain --resume, its cosine schedule stretched to the "
                             "new end (not a fresh run of that length; the N-step checkpoint is overwritten)")
    parser.add_argument("--target-demos", type=int, default=5,
                        help="SO-101 (and human) demos per task to adapt on (the paper's five; more shows what the "
                             "architecture can learn of the task when data is not the limit)")
    parser.add_argument("--human-camera", choices=("handheld", "static", "calibrated"), default="handheld",
                        help="camera of the human-hand demos (handheld = the paper's phone videos; calibrated = the "
                             "SO-101's own camera, the view the trials have: the embodiment gap without the view gap)")
    parser.add_argument("--human-depth", action=argparse.BooleanOptionalAction, default=True,
                        help="give the human demos a depth sidecar (--no-human-depth: RGB only, depth from SfM)")
    parser.add_argument("--conditions", default=",".join(CONDITIONS), help="subset of " + ",".join(CONDITIONS))
    parser.add_argument("--execute-mode", choices=("gripper", "object"), default="gripper",
                        help="tracegen execute --mode of every trial: follow the gripper's trace points, or grasp "
                             "the object the trace moves and carry it along its path (or push it where the trace slides it, or pull a drawer by its front)")
    parser.add_argument("--guidance", type=float, default=None,
                        help="classifier-free guidance scale of every prediction, trials and held-out layouts (tracegen "
                             "predict --guidance; default: the checkpoint's, 1: none)")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="sampling noise scale of every prediction (tracegen predict --temperature; 0: deterministic)")
    parser.add_argument("--samples", type=int, default=1,
                        help="hypotheses predicted per trial (tracegen predict --samples); execute plays the first "
                             "whose plan passes every check")
    parser.add_argument("--calibrated-corpus", type=int, default=0, metavar="N",
                        help="add N human-hand and N other-robot videos per pretraining task filmed by the SO-101 "
                             "workstation's calibrated camera (people and other robots doing the tasks in front of "
                             "the robot's own camera)")
    parser.add_argument("--heldout-layouts", type=int, default=10, metavar="N",
                        help="also score every model offline on the first frames of N SO-101 demos of unseen layouts: "
                             "moving-point ADE/FDE vs staying still (benchmarks/fit_check.py's measure; 0: skip)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: fastest on a busy machine)")
    return parser.parse_args(argv)


def prepare_task(task: str, args, config, paths, log: Path) -> dict[str, Path]:
    """Target and human demos of one task, and the checkpoints adapted on them; returns checkpoints by condition."""
    from tracegen_cli.demo_config import TARGET_EMBODIMENT, TARGET_SEED_BASE, cached_stage
    from tracegen_cli.demo_stages import adapt_checkpoint, forge_settings, generate_demos, start_or_resume
    from tracegen_cli.demo_trials import oracle_predictor
    from tracegen_cli.demo_workflow import stage_keys

    conditions = args.conditions.split(",")
    base = paths.checkpoint("pretrained")
    upstream = stage_keys(config, config.tasks, task)["pretrain"]  # the target matters to --so101-other-tasks
    folder = paths.out / "tasks" / task
    checkpoints = {"zero-shot": base, "oracle": oracle_predictor(task)}
    so101_demos, human_demos = folder / "so101_demos", folder / "human_demos"
    # Demos and the scratch model never see the pretrained weights (scratch takes only their architecture), so
    # their keys leave the pretraining settings out: a rerun with another prior reuses them.
    demo_key = {"task": task, "demos": config.target_demos, "seed": args.seed, "so101_camera": "calibrated",
                "so101_start": "home"}
    cached_stage(paths, f"{task}-so101-demos", demo_key, lambda: generate_demos(  # the camera the trials observe with
        task, TARGET_EMBODIMENT, so101_demos, config.target_demos, TARGET_SEED_BASE + 100 * args.seed, log,
        camera="calibrated", start="home", workers=config.workers))  # from the ready pose, as the trials start
    runs = [("adapted", so101_demos, False), ("scratch", so101_demos, True)]
    if "human-adapted" in conditions:
        human_key = {**demo_key, "camera": args.human_camera, "depth": args.human_depth}
        cached_stage(paths, f"{task}-human-demos", human_key, lambda: generate_demos(
            task, "human", human_demos, config.target_demos, HUMAN_SEED_BASE + 100 * args.seed, log,
            camera=args.human_camera, depth=args.human_depth, workers=config.workers))
        runs.append(("human-adapted", human_demos, False))
    for name, demos, scratch in runs:
        if name not in conditions:
            continue
        out = folder / "checkpoints" / name
        lr = None if scratch else args.finetune_lr
        replay = 0.0 if scratch else args.adapt_replay  # the from-scratch control sees the demos alone
        prior = {"preset": config.preset} if scratch else upstream
        key = {**prior, **demo_key, "forge": forge_settings(config.colour_drift, config.plain_objects), "condition": name, "adapt_steps": config.adapt_steps,
               "human_camera": args.human_camera, "human_depth": args.human_depth, **({"lr": lr} if lr is not None else {}),
               **({"holdout": False} if args.adapt_on_all_demos else {}), **({"replay": replay} if replay else {}),
               "select": args.adapt_select}  # in every key: stages adapted before --select judged by all points' ADE

        def adapt_run(name=name, demos=demos, out=out, scratch=scratch, lr=lr, replay=replay, key=key) -> None:
            adapt_checkpoint(base, demos, out, config.adapt_steps, log, paths.out / "demo_store", from_scratch=scratch,
                             device=config.device, seed=args.seed, threads=config.threads, lr=lr,
                             holdout=not args.adapt_on_all_demos, replay=replay, select=args.adapt_select,
                             workers=config.workers,  # an interrupted run of these settings continues:
                             resume=start_or_resume(paths, f"{task}-{name}-started", key, out))

        cached_stage(paths, f"{task}-{name}", key, adapt_run)
        checkpoints[name] = out
    return {name: checkpoints[name] for name in conditions if name in checkpoints}


def heldout_errors(task: str, checkpoints: dict, args, paths, log: Path) -> list[dict]:
    """Each model's first-frame moving-point errors on `args.heldout_layouts` SO-101 demos of unseen layouts,
    beside staying still: how far it generalises, measured on more layouts than the trials and without execution."""
    import torch
    from fit_check import first_frame_errors, summarise

    from model.checkpoint import load_checkpoint
    from tracegen_cli.demo_cli import run_command
    from tracegen_cli.demo_config import TARGET_EMBODIMENT, cached_stage
    from tracegen_cli.demo_stages import forge_options, forge_settings, generate_demos, processes

    folder, store = paths.out / "heldout" / task / "videos", paths.out / "heldout" / task / "store"
    key = {"task": task, "layouts": args.heldout_layouts, "seed": args.seed, "camera": "calibrated", "start": "home",
           "forge": forge_settings(args.forge_colour_drift, args.forge_plain_objects)}

    def film_and_forge() -> None:
        shutil.rmtree(folder.parent, ignore_errors=True)  # another layout count: start over
        generate_demos(task, TARGET_EMBODIMENT, folder, args.heldout_layouts, HELDOUT_SEED_BASE + 100 * args.seed, log,
                       camera="calibrated", start="home", workers=args.workers)
        run_command(["forge", folder, "--store", store, *forge_options(args.forge_colour_drift, args.forge_plain_objects),
                     "--workers", processes(args.workers)], log)

    cached_stage(paths, f"{task}-heldout-layouts", key, film_and_forge)
    torch.set_num_threads(args.threads)
    lines = []
    for name, checkpoint in checkpoints.items():
        if not isinstance(checkpoint, Path):  # the oracle has no network
            continue
        model, _, meta = load_checkpoint(checkpoint)
        rows = first_frame_errors(model, store, args.heldout_layouts, guidance=args.guidance)
        kept = (meta.get("kept") or {}).get("weights")  # which weights adapt kept (see `tracegen adapt`)
        lines.append({"benchmark": "sim_success", "heldout": True, "task": task, "condition": name, "layouts": len(rows),
                      **({"kept": kept} if kept else {}), **summarise(rows)})
    return lines


def json_lines(trials, args, seconds: float, heldout: list[dict]) -> list[dict]:
    """One line per (task, condition), one per condition over all tasks, and the goals check, with which weights
    `adapt` kept per task and condition: a goal met by "base" is met by the unchanged prior, not by the demos."""
    from tracegen_cli.demo_report import condition_totals, success_table, wilson_interval

    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    machine = f"{platform.machine()} {platform.processor() or platform.system()}, {_cores()} cores"
    lines = []
    for row in success_table(trials):
        lines.append({"benchmark": "sim_success", "task": row.task, "condition": row.condition,
                      "successes": row.successes, "trials": row.trials, "rate": row.rate,
                      "rate_ci95": _interval(wilson_interval(row.successes, row.trials)),
                      "stage_failures": row.failures_by_error, "median_predict_ms": _finite(row.median_predict_ms),
                      "median_goal_cm": _finite(row.median_goal_cm), "median_start_goal_cm": _finite(row.median_start_goal_cm),
                      "median_travel": _finite(row.median_travel), "median_off_line_cm": _finite(row.median_off_line_cm)})
    totals = condition_totals(trials)
    latencies = [t.predict_ms for t in trials if math.isfinite(t.predict_ms)]
    for name, total in totals.items():
        lines.append({"benchmark": "sim_success", "task": "all", "condition": name, "successes": int(total["successes"]),
                      "trials": int(total["trials"]), "rate": total["rate"],
                      "rate_ci95": _interval(wilson_interval(int(total["successes"]), int(total["trials"])))})
    rate = {name: total["rate"] for name, total in totals.items()}
    lines.append({
        "benchmark": "sim_success", "summary": True, "date": stamp, "machine": machine,
        "trials_per_task": args.trials, "tasks": args.tasks.split(","),
        "eval_tasks": (args.eval_tasks or args.tasks).split(","), "corpus_scale": args.corpus_scale,
        "so101_other_tasks": args.so101_other_tasks, "calibrated_corpus": args.calibrated_corpus,
        "heldout_layouts": args.heldout_layouts, "pretrain_steps": args.pretrain_steps,
        "adapt_steps": args.adapt_steps, "batch_size": args.batch_size, "pretrain_lr": args.pretrain_lr,
        "pretrain_extend_from": args.pretrain_extend_from,
        "episodes_per_kind": args.episodes_per_kind,
        "target_demos": args.target_demos,
        "human_camera": args.human_camera, "human_depth": args.human_depth, "execute_mode": args.execute_mode,
        "temperature": args.temperature, "guidance": "the checkpoint's" if args.guidance is None else args.guidance, "samples": args.samples, "adapt_on_all_demos": args.adapt_on_all_demos,
        "adapt_select": args.adapt_select, "adapt_replay": args.adapt_replay, "finetune_lr": args.finetune_lr, "forge_colour_drift": args.forge_colour_drift,
        "forge_plain_objects": args.forge_plain_objects,
        "kept": {f"{h['task']}/{h['condition']}": h["kept"] for h in heldout if "kept" in h},
        "wall_seconds": round(seconds, 1),
        "median_predict_ms": _finite(float(sorted(latencies)[len(latencies) // 2]) if latencies else math.nan),
        "goal_a_ge_80": _goal(rate.get("adapted"), lambda a: a >= 0.8),
        "goal_a_minus_b_ge_40pts": _goal(_diff(rate.get("adapted"), rate.get("scratch")), lambda d: d >= 0.4),
        "goal_d_ge_60": _goal(rate.get("human-adapted"), lambda d: d >= 0.6),
    })
    return lines


def _diff(a, b):
    return None if a is None or b is None else a - b


def _goal(value, test):
    return None if value is None or not math.isfinite(value) else bool(test(value))


def _interval(bounds: tuple[float, float]):
    return [round(bound, 3) for bound in bounds] if all(math.isfinite(b) for b in bounds) else None


def _finite(value: float):
    return round(value, 2) if math.isfinite(value) else None


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    from tracegen_cli.demo_command import render_success_table, stage_bars
    from tracegen_cli.demo_config import (
        QUICK_CORPUS,
        TRIAL_SEED_BASE,
        CorpusEntry,
        DemoConfig,
        DemoPaths,
        cached_stage,
        so101_other_tasks,
    )
    from tracegen_cli.demo_evaluate import evaluate_conditions
    from tracegen_cli.demo_report import DemoReport, write_report
    from tracegen_cli.demo_stages import forge_corpus, generate_corpus, pretrain
    from tracegen_cli.demo_trials import load_predictor
    from tracegen_cli.demo_workflow import stage_keys

    args = parse_args(argv)
    tasks = tuple(args.tasks.split(","))
    eval_tasks = tuple(args.eval_tasks.split(",")) if args.eval_tasks else tasks
    if not set(eval_tasks) <= set(tasks):
        raise SystemExit(f"--eval-tasks {args.eval_tasks}: pick from --tasks {args.tasks}")
    if args.so101_other_tasks and len(eval_tasks) != 1:
        raise SystemExit(f"--so101-other-tasks {args.so101_other_tasks} leaves SO-101 footage of the evaluated task "
                         "out of pretraining, so it needs exactly one --eval-tasks task")
    config = DemoConfig.full(out=args.out, seed=args.seed, tasks=tasks, pretrain_steps=args.pretrain_steps,
                             adapt_steps=args.adapt_steps, device=args.device, threads=args.threads)
    if args.quick_corpus:
        config = replace(config, corpus=QUICK_CORPUS, quick=True)
    elif args.episodes_per_kind > 0:
        config = replace(config, corpus=tuple(replace(e, episodes=min(e.episodes, args.episodes_per_kind))
                                               for e in config.corpus))
    if args.corpus_scale < 1:
        raise SystemExit(f"--corpus-scale {args.corpus_scale}: use a whole number >= 1")
    if args.pretrain_extend_from is not None and not 1 <= args.pretrain_extend_from < args.pretrain_steps:
        raise SystemExit(f"--pretrain-extend-from {args.pretrain_extend_from}: extend a finished run of fewer steps "
                         f"than --pretrain-steps {args.pretrain_steps}")
    config = replace(config, corpus=tuple(replace(e, episodes=e.episodes * args.corpus_scale) for e in config.corpus),
                     batch_size=args.batch_size, pretrain_lr=args.pretrain_lr,
                     pretrain_extend_from=args.pretrain_extend_from, target_demos=args.target_demos,
                     colour_drift=args.forge_colour_drift, plain_objects=args.forge_plain_objects,
                     workers=args.workers)
    if args.so101_other_tasks:
        config = replace(config, corpus=(*config.corpus, so101_other_tasks(args.so101_other_tasks)))
    if args.calibrated_corpus:
        config = replace(config, corpus=(*config.corpus, *(CorpusEntry(embodiment, "calibrated", True, args.calibrated_corpus)
                                                           for embodiment in ("human", "other_robot"))))
    paths = DemoPaths(args.out)
    paths.logs.mkdir(parents=True, exist_ok=True)
    keys = stage_keys(config, tasks, eval_tasks[0])
    started = time.perf_counter()
    trials, heldout = [], []
    with stage_bars() as bars:
        from tracegen_cli.demo_command import RichStageProgress

        progress = RichStageProgress(bars)
        cached_stage(paths, "corpus", keys["corpus"], lambda: generate_corpus(config, paths, tasks, progress,
                                                                                 eval_tasks[0]))
        cached_stage(paths, "forge", keys["forge"], lambda: forge_corpus(paths, tasks, progress, config.colour_drift,
                                                                                        config.plain_objects,
                                                                                        config.workers))
        cached_stage(paths, "pretrain", keys["pretrain"], lambda: pretrain(config, paths, progress, keys["pretrain"]))
        seeds = [TRIAL_SEED_BASE + 1000 * args.seed + i for i in range(args.trials)]
        for task in eval_tasks:
            checkpoints = prepare_task(task, args, config, paths, paths.logs / f"{task}.log")
            if args.heldout_layouts > 0:
                heldout += heldout_errors(task, checkpoints, args, paths, paths.logs / f"{task}-heldout.log")
            trials += evaluate_conditions(checkpoints, task, seeds, paths.trials / task, paths.report, config.device,
                                          progress, paths.logs / f"{task}-evaluate.log", threads=config.threads,
                                          mode=args.execute_mode, workers=config.workers,
                                          make_predictor=functools.partial(load_predictor, temperature=args.temperature,
                                                                           samples=args.samples, guidance=args.guidance))
    seconds = time.perf_counter() - started
    report = DemoReport(title="sim_success benchmark", smoke_run=config.quick, settings=vars(args) | {"out": str(args.out)},
                        stage_seconds={"total": seconds}, trials=trials,
                        notes=[f"{k}: {v}" for k, v in CONDITIONS.items()] + [
                            f"{h['task']} {h['condition']}: first frames of {h['layouts']} unseen layouts, moving points "
                            f"ADE {h['ade_moving_px']} px (staying still {h['still_ade_moving_px']}), FDE "
                            f"{h['fde_moving_px']} px (still {h['still_fde_moving_px']})"
                            + (f"; adapt kept {h['kept']}" if "kept" in h else "") for h in heldout])
    write_report(report, paths.report)
    Console(stderr=True).print(render_success_table(report, "sim_success: task success per condition"))
    for line in heldout + json_lines(trials, args, seconds, heldout):
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
