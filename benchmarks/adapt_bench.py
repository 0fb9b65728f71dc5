"""Adapt benchmark: the offline version of the paper's Table 1, plus prediction latency.

Data (all from the MuJoCo simulator, `robot.sim`): a pretraining corpus (default: the task done by a
human hand and by another robot; `--corpus` adds e.g. SO-101 episodes of other tasks); five SO-101
demos of the task to adapt on; further SO-101 episodes in unseen layouts held out for scoring, both
filmed by the workstation's calibrated camera (`--target-camera`), as a user films demos for their
robot. Everything is forged with one `ForgeConfig` (sensor depth from the sidecars).

Models, scored on the held-out SO-101 samples (ADE/FDE in pixels of the 160x120 frames and in cm, over
all 400 points and over the moving ones; one sampled prediction per sample, seeded), and on samples they
were trained on (`fit_*`: the adapted and scratch models on their five demos, the pretrained one on up
to 64 corpus samples; a model that does not beat stay-still there underfits rather than fails to
generalise):
  stay-still every point keeps its start (how much of the all-points error is static background);
  zero-shot  the pretrained model as it is;
  adapted    `tracegen adapt` of it on the five demos (fine-tuned from its weights);
  scratch    `tracegen adapt --from-scratch`: the same architecture trained on the five demos alone.

Prints one JSON object per line. Run: `.venv/bin/python benchmarks/adapt_bench.py [--quick]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--task", default="place_block")
    parser.add_argument("--corpus", nargs="+", default=["human:place_block", "other_robot:place_block"],
                        help="pretraining videos as EMBODIMENT:TASK pairs (add e.g. so101:sweep for a new-task setting)")
    parser.add_argument("--corpus-episodes", type=int, default=12, help="episodes per corpus pair")
    parser.add_argument("--demos", type=int, default=5, help="SO-101 demos to adapt on")
    parser.add_argument("--heldout", type=int, default=6, help="held-out SO-101 episodes scored")
    parser.add_argument("--size", default="160x120")
    parser.add_argument("--target-camera", default="calibrated", choices=("calibrated", "static"),
                        help="camera of the SO-101 demos and held-out episodes: the workstation's calibrated one "
                             "(as deployed), or a random static pose per episode")
    parser.add_argument("--pretrain-steps", type=int, default=600)
    parser.add_argument("--adapt-steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--width", type=int, default=64, help="model width (the tiny preset, narrowed for 2 cores)")
    parser.add_argument("--depth", type=int, default=2, help="decoder blocks")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 avoids oversubscribing a shared CPU)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="adapt/scratch seeds")
    parser.add_argument("--finetune-lrs", type=float, nargs="+", default=[None],
                        help="peak learning rates of the adapted condition, each run side by side (default: tracegen adapt's)")
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="a minute-long smoke run with tiny numbers")
    args = parser.parse_args(argv)
    if args.quick:
        args.corpus_episodes, args.heldout, args.pretrain_steps, args.adapt_steps = 2, 2, 4, 2
        args.batch_size, args.latency_runs = 4, 3
    return args


def film(task: str, embodiment: str, episodes: int, seed: int, size: str, out: Path, camera: str = "static") -> Path:
    """Render `episodes` episodes with the simulator's scripted demonstrator (kept when already there:
    the simulator is deterministic, so the same seed writes the same bytes)."""
    from robot.sim.episode import EpisodeConfig
    from robot.sim.writer import generate_demos

    if out.is_dir() and len(list(out.glob("*.mp4"))) == episodes:
        return out
    width, height = (int(x) for x in size.split("x"))
    config = EpisodeConfig(task=task, embodiment=embodiment, camera=camera, seed=seed, width=width, height=height)
    generate_demos(config, episodes, out)
    return out


def forge_folder(folder: Path, store_path: Path, forge_config) -> list[str]:
    """Forge every video of `folder` into the store; returns the keys that gave samples."""
    from tracegen_cli.adapt_workflow import forge_demo_paths

    keys, _forged, _skipped = forge_demo_paths([folder], store_path, forge_config, lambda event: None)
    return keys


def dataset(store_path: Path, keys: list[str]):
    from store.dataset import TraceDataset

    return TraceDataset(store_path, keys=keys, steps=32)


def pretrain(args, store_path: Path, keys: list[str], forge_config, out: Path) -> Path:
    from model.config import TrainConfig
    from model.train import train

    overrides = {"width": args.width, "heads": max(1, args.width // 32), "depth": args.depth, "image_size": args.image_size}
    cfg = TrainConfig(out_dir=str(out), preset="tiny", model_overrides=overrides, steps=args.pretrain_steps,
                      batch_size=args.batch_size, warmup_steps=max(1, args.pretrain_steps // 20), eval_every=0,
                      checkpoint_every=0, device="cpu", threads=args.threads, log_every=50,
                      provenance={"forge_config": forge_config.as_dict(), "corpus_keys": keys})
    return train(cfg, dataset(store_path, keys), None)


def score(checkpoint: Path | None, heldout) -> dict:
    """ADE/FDE of one sampled prediction per held-out sample: over all points, and over moving points.

    `checkpoint=None` scores the stay-still baseline (every point keeps its start), which shows how
    much of the all-points figure is the static background. Moving points: `model.evaluate.moving_points`
    (the ground truth leaves its start by 1 % of the image side at some valid step), the rule `pretrain`,
    `adapt` and `benchmarks/fit_check.py` report with.
    """
    import numpy as np

    from model.checkpoint import load_checkpoint
    from model.evaluate import moving_points, trace_errors
    from model.predict import predict_traces

    model = load_checkpoint(checkpoint)[0] if checkpoint is not None else None
    preds, targets, valids, intrinsics, visible, moving = [], [], [], [], [], []
    for index in range(len(heldout)):
        item = heldout[index]
        target, valid = item["traj"].numpy(), item["valid"].numpy()  # (K, 33, 3), (33,)
        if model is None:
            pred = np.repeat(target[:, :1], target.shape[1], axis=1)  # (K, 33, 3)
        else:
            depth = item["depth"].numpy() if item["has_depth"] else None
            pred = predict_traces(model, item["image"].numpy(), depth, item["intrinsics"].numpy(),
                                  item["instructions"][0], seed=index)[0][0]  # (K, 33, 3)
        side = np.array([max(item["image"].shape[:2])])
        moves = moving_points(target[None], valid[None], side)[0, :, 0].numpy()  # (K,)
        preds.append(pred), targets.append(target), valids.append(valid)
        intrinsics.append(item["intrinsics"].numpy()), visible.append(item["visible"].numpy())
        moving.append(item["visible"].numpy() & moves[:, None])
    stack = [np.stack(a) for a in (preds, targets, valids, intrinsics)]
    every = trace_errors(*stack, visible=np.stack(visible))
    movers = trace_errors(*stack, visible=np.stack(moving))
    result = {f"{name}_all": round(every[name], 3) for name in ("ade_px", "fde_px", "ade_cm", "fde_cm")}
    result.update({f"{name}_moving": round(movers[name], 3) for name in ("ade_px", "fde_px", "ade_cm", "fde_cm")})
    result["moving_points"] = int(np.stack(moving)[:, :, 0].sum())
    return result


def training_subset(data, limit: int = 64):
    """Up to `limit` samples spread evenly over a training set (the fit check of `score`)."""
    import torch

    step = max(1, len(data) // limit)
    return torch.utils.data.Subset(data, list(range(0, len(data), step))[:limit])


def fit_fields(checkpoint: Path | None, data, prefix: str = "fit_") -> dict:
    """`score` on training samples, its keys prefixed."""
    return {f"{prefix}{name}": value for name, value in score(checkpoint, data).items()
            if name in ("ade_px_all", "ade_px_moving", "fde_px_moving", "moving_points")}


def adapt_run(args, base: Path, demos: Path, store_path: Path, out: Path, from_scratch: bool, seed: int,
              lr: float | None = None):
    from tracegen_cli.adapt_workflow import AdaptConfig, adapt

    shutil.rmtree(out, ignore_errors=True)  # a rerun in the same work folder trains anew (adapt keeps a checkpoint)
    cfg = AdaptConfig(base=base, demos=[str(demos)], out_dir=out, store=store_path, steps=args.adapt_steps,
                      from_scratch=from_scratch, batch_size=args.batch_size, holdout=False, seed=seed, device="cpu",
                      threads=args.threads, lr=lr)
    started = time.perf_counter()
    result = adapt(cfg)
    return result, time.perf_counter() - started


def latency(checkpoint: Path, heldout, runs: int, threads: int) -> dict:
    """Model load and single-image prediction latency (median, p90) on one held-out frame."""
    import numpy as np
    import torch

    from model.checkpoint import load_checkpoint
    from model.predict import predict_traces

    torch.set_num_threads(threads)
    started = time.perf_counter()
    model, cfg, _ = load_checkpoint(checkpoint)
    load_ms = 1000 * (time.perf_counter() - started)
    item = heldout[0]
    image, depth = item["image"].numpy(), item["depth"].numpy()
    intrinsics, text = item["intrinsics"].numpy(), item["instructions"][0]
    predict_traces(model, image, depth, intrinsics, text)  # warm-up
    times = []
    for seed in range(runs):
        started = time.perf_counter()
        predict_traces(model, image, depth, intrinsics, text, seed=seed)
        times.append(1000 * (time.perf_counter() - started))
    return {"bench": "predict_latency", "device": "cpu", "threads": threads, "image": list(image.shape[:2]),
            "sampler": cfg.sampler, "sample_steps": cfg.sample_steps, "load_ms": round(load_ms, 1),
            "predict_ms_median": round(statistics.median(times), 1),
            "predict_ms_p90": round(float(np.percentile(times, 90)), 1), "runs": runs}


def main(argv=None) -> None:
    import logging

    import torch

    from forge.config import ForgeConfig
    from tracegen_cli.adapt_workflow import FINETUNE_LR, SCRATCH_LR

    logging.basicConfig(level=logging.WARNING)
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="adapt_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    forge_config = ForgeConfig()
    store_path = work / "store.zarr"

    started = time.perf_counter()
    pairs = [pair.split(":") for pair in args.corpus]
    corpus = [film(task, body, args.corpus_episodes, 1 + index, args.size, work / "corpus" / f"{body}-{task}")
              for index, (body, task) in enumerate(pairs)]
    demos = film(args.task, "so101", args.demos, 50, args.size, work / f"demos-{args.target_camera}", args.target_camera)
    heldout_dir = film(args.task, "so101", args.heldout, 90, args.size, work / f"heldout-{args.target_camera}",
                       args.target_camera)
    film_s = time.perf_counter() - started

    started = time.perf_counter()
    corpus_keys = [key for folder in corpus for key in forge_folder(folder, store_path, forge_config)]
    heldout_keys = forge_folder(heldout_dir, store_path, forge_config)
    forge_s = time.perf_counter() - started
    corpus_set, heldout = dataset(store_path, corpus_keys), dataset(store_path, heldout_keys)
    emit({"bench": "adapt_data", "task": args.task, "size": args.size, "corpus": args.corpus, "corpus_videos": len(corpus_keys),
          "corpus_samples": len(corpus_set), "demo_videos": args.demos, "heldout_videos": len(heldout_keys),
          "heldout_samples": len(heldout), "film_s": round(film_s, 1), "forge_s": round(forge_s, 1)})

    started = time.perf_counter()
    base = pretrain(args, store_path, corpus_keys, forge_config, work / "ckpt" / "pretrained")
    pretrain_s = time.perf_counter() - started
    model_info = json.loads((base / "config.json").read_text())["model"]
    common = {"bench": "adapt", "task": args.task, "corpus": args.corpus, "heldout_samples": len(heldout),
              "model": {k: model_info[k] for k in ("width", "depth", "image_size")}}
    corpus_fit = training_subset(corpus_set)
    demo_fit = dataset(store_path, forge_folder(demos, store_path, forge_config))
    emit({**common, "condition": "stay-still", "train_steps": 0, **score(None, heldout),
          **fit_fields(None, demo_fit)})
    emit({**common, "condition": "zero-shot", "train_steps": args.pretrain_steps, "train_s": round(pretrain_s, 1),
          **score(base, heldout), **fit_fields(base, corpus_fit),
          "fit_on": "corpus", **fit_fields(None, corpus_fit, prefix="fit_still_")})
    runs = [("adapted", False, lr) for lr in args.finetune_lrs] + [("scratch", True, None)]
    checkpoint = lambda condition, seed, lr: work / "ckpt" / (f"{condition}-{seed}" if lr is None else f"{condition}-lr{lr:g}-{seed}")  # noqa: E731
    for seed in args.seeds:
        for condition, scratch, lr in runs:
            out = checkpoint(condition, seed, lr)
            result, seconds = adapt_run(args, base, demos, store_path, out, scratch, seed, lr)
            used_lr = lr if lr is not None else (SCRATCH_LR if scratch else FINETUNE_LR)
            emit({**common, "condition": condition, "seed": seed, "lr": used_lr, "demos": len(result.demos.keys),
                  "demo_samples": sum(result.demos.samples.values()), "train_steps": args.adapt_steps,
                  "train_s": round(seconds, 1), **score(out, heldout),
                  **fit_fields(out, demo_fit), "fit_on": "demos"})
    emit(latency(checkpoint("adapted", args.seeds[0], args.finetune_lrs[0]), heldout, args.latency_runs, args.threads))


if __name__ == "__main__":
    main()
