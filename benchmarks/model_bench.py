"""Trace-model benchmark: one JSON object per line.

Measures, on this machine's CPU (threads set by --threads):
  params        parameters per preset
  train_rate    training samples/s (tiny) and the data loader's own rate over a real trace store
  latency       `predict_traces` wall time per preset, sampler and step count
  sampler       each preset's default sampler against 100-step Euler on the same network (tiny and small,
                trained here briefly, scored on held-out synthetic scenes; or --checkpoint, scored on the first
                sample of each video of --sampler-store): speed ratio, ADE, and the spread between two seeds
  token_latency (with --only token_latency) prediction latency per trace tokenisation
  tokenisation  (with --tokenisation) per-point vs patch tokens: ADE after the same training, latency

Run: .venv/bin/python benchmarks/model_bench.py [--threads 2] [--train-steps 300] [--tokenisation]
     [--checkpoint CKPT [--sampler-store STORE]] [--only params,train_rate,latency,sampler,tokenisation]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
import time

import numpy as np
import torch

from model.config import PRESETS, TrainConfig, preset
from model.network import TraceFlowNet, count_parameters
from model.predict import predict_traces
from model.samples import AugmentConfig, SampleTransform, TransformedDataset, collate
from model.synthetic import SyntheticTraceDataset, write_synthetic_store
from model.train import _flow_loss, _make_optimizer, _step_batches, evaluate, train


def emit(**record) -> None:
    record["load_avg_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(record), flush=True)


def bench_params() -> None:
    for name in PRESETS:
        cfg = preset(name)
        emit(bench="params", preset=name, params=count_parameters(TraceFlowNet(cfg)), trace_tokens=cfg.num_tokens, width=cfg.width, depth=cfg.depth)


def bench_train_rate(store: str, batch_size: int, steps: int) -> None:
    """Training samples/s of the tiny preset vs the data loader alone, on the same store and transform."""
    from store.dataset import TraceDataset

    dataset = TraceDataset(store)
    cfg = preset("tiny")
    transformed = TransformedDataset(dataset, SampleTransform(cfg, AugmentConfig(enabled=True)))
    batches = _step_batches(len(dataset), batch_size, 0, 0, 0, 1)
    [transformed[pair] for pair in next(batches)]  # warm the store's cache
    started = time.perf_counter()
    loaded = [collate([transformed[pair] for pair in next(batches)]) for _ in range(steps)]
    loader_rate = steps * batch_size / (time.perf_counter() - started)
    torch.manual_seed(0)
    model = TraceFlowNet(cfg).train()
    optimizer = _make_optimizer(model, TrainConfig())
    started = time.perf_counter()
    for i, batch in enumerate(loaded):
        loss = _flow_loss(model, batch, torch.Generator().manual_seed(i), cfg.cond_dropout, torch.device("cpu"), (-0.8, 0.8))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    train_rate = steps * batch_size / (time.perf_counter() - started)
    emit(bench="train_rate", preset="tiny", batch_size=batch_size, train_samples_per_s=round(train_rate, 1),
         loader_samples_per_s=round(loader_rate, 1), loader_over_train=round(loader_rate / train_rate, 1), loader_workers=0)


def _time_predict(model, item, steps, sampler, repeats) -> float:
    args = (item["image"], item["depth"], item["intrinsics"], item["instructions"][0])
    predict_traces(model, *args, steps=steps, sampler=sampler)  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict_traces(model, *args, steps=steps, sampler=sampler)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_latency(presets: list[str], repeats: int) -> None:
    item = SyntheticTraceDataset(1, 1, depth_fraction=1.0)[0]
    for name in presets:
        model = TraceFlowNet(preset(name)).eval()
        settings = [("euler", s) for s in (1, 2, 3, 4, 100)] + [("heun", s) for s in (2, 3, 4, 8)]
        default = (model.cfg.sampler, model.cfg.sample_steps)
        for sampler, steps in settings if name != "base" else [default]:
            seconds = _time_predict(model, item, steps, sampler, repeats if name != "base" else 1)
            calls = steps if sampler == "euler" else 2 * steps - 1
            emit(bench="latency", preset=name, sampler=sampler, steps=steps, network_calls=calls, ms=round(1000 * seconds, 1),
                 default=(sampler == model.cfg.sampler and steps == model.cfg.sample_steps))


def _train_preset(name: str, out: str, train_steps: int, overrides: dict | None = None, seed: int = 0) -> None:
    cfg = TrainConfig(out_dir=out, preset=name, steps=train_steps, batch_size=16, lr=2e-3, warmup_steps=min(50, train_steps // 5),
                      eval_every=0, checkpoint_every=0, seed=seed, model_overrides=overrides or {}, ema_decay=0.99)
    train(cfg, SyntheticTraceDataset(num_videos=64, samples_per_video=8, seed=seed))


SAMPLER_SETTINGS = (("euler", 100), ("euler", 1), ("euler", 2), ("euler", 3), ("heun", 2), ("heun", 3), ("heun", 4))


def _ade(model, val, sampler: str, steps: int) -> tuple[float, float]:
    model.cfg = dataclasses.replace(model.cfg, sampler=sampler, sample_steps=steps)
    started = time.perf_counter()
    metrics = evaluate(model, val, SampleTransform(model.cfg), len(val), seed=1)
    return metrics["ade_px"], time.perf_counter() - started


def _sample_traces(model, items: list[dict], sampler: str, steps: int, seed: int) -> np.ndarray:
    """Traces (N, K, S+1, 3) in pixels sampled for `items` (already transformed), noise seeded by `seed`."""
    from model.normalize import deltas_to_traj
    from model.predict import sample_deltas

    batch = collate(items)
    with torch.no_grad():
        deltas = sample_deltas(model, batch["image"], batch["depth"], batch["has_depth"], batch["text"], batch["start"],
                               steps, sampler, model.cfg.guidance, torch.Generator().manual_seed(seed))
    size = batch["size"]
    return deltas_to_traj(batch["start"], deltas, size[:, 0], size[:, 1], batch["has_depth"]).numpy()


def compare_samplers(model, items: list[dict], label: str, defaults: dict[str, tuple[str, int]], **extra) -> None:
    """ADE (all and moving points), spread between two seeds, and wall time of every sampler setting on the
    same network and the same noise; then, per preset, its default setting against 100-step Euler."""
    from model.evaluate import motion_errors, trace_errors

    batch = collate(items)
    target, valid, sides = batch["traj"].numpy(), batch["valid"].numpy(), batch["size"].amax(dim=1).numpy()
    results = {}
    for sampler, steps in SAMPLER_SETTINGS:
        started = time.perf_counter()
        first = _sample_traces(model, items, sampler, steps, seed=1)
        seconds = time.perf_counter() - started
        second = _sample_traces(model, items, sampler, steps, seed=2)
        moving = motion_errors(first, target, valid, sides)
        spread = trace_errors(first, second, valid)["ade_px"]  # how far two seeds' samples lie apart
        results[sampler, steps] = (trace_errors(first, target, valid)["ade_px"], seconds)
        emit(bench="sampler_setting", data=label, sampler=sampler, steps=steps, ade_px=round(results[sampler, steps][0], 3),
             ade_moving_px=round(moving["ade_moving_px"], 3), still_ade_moving_px=round(moving["still_ade_moving_px"], 3),
             seed_spread_px=round(spread, 3), sample_s=round(seconds, 2), **extra)
    euler_ade, euler_s = results["euler", 100]
    for name, (sampler, steps) in defaults.items():
        ade, seconds = results[sampler, steps]
        emit(bench="sampler", data=label, preset_default=name, default=f"{sampler}-{steps}", default_ade_px=round(ade, 3),
             euler100_ade_px=round(euler_ade, 3), ade_diff_pct=round(100 * (ade - euler_ade) / euler_ade, 2),
             speed_ratio=round(euler_s / seconds, 1), samples=len(items), **extra)


def _default_settings() -> dict[str, tuple[str, int]]:
    """Each CPU preset's default (sampler, steps); base's is not scored (a GPU preset)."""
    return {name: (cfg.sampler, cfg.sample_steps) for name, cfg in PRESETS.items() if name != "base"}


def bench_sampler(workdir: str, train_steps: int, checkpoint: str = "", store: str = "", presets=("tiny", "small")) -> None:
    """Every preset's default sampler vs 100-step Euler on the same network: each preset trained here briefly on
    synthetic scenes and scored on held-out ones, or `checkpoint` scored on the first sample of each video in
    `store` (real forged traces)."""
    from model.checkpoint import load_checkpoint

    if checkpoint:
        model, cfg, meta = load_checkpoint(checkpoint)
        if store:
            from store.dataset import TraceDataset

            data = TraceDataset(store, steps=cfg.steps)
            raw = [data[int(data.offsets[v])] for v in range(min(48, len(data.entries)))]
        else:
            raw = [SyntheticTraceDataset(num_videos=16, samples_per_video=2, seed=1234)[i] for i in range(32)]
        transform = SampleTransform(cfg)
        items = [transform(item, np.random.default_rng([1, i])) for i, item in enumerate(raw)]
        compare_samplers(model, items, store or "synthetic", _default_settings(), checkpoint=checkpoint,
                         checkpoint_step=meta["step"])
        return
    val = SyntheticTraceDataset(num_videos=16, samples_per_video=2, seed=1234)
    for name in presets:
        out = f"{workdir}/sampler-{name}"
        _train_preset(name, out, train_steps)
        model, cfg, meta = load_checkpoint(out)
        transform = SampleTransform(cfg)
        items = [transform(val[i], np.random.default_rng([1, i])) for i in range(len(val))]
        compare_samplers(model, items, "synthetic", {name: _default_settings()[name]}, preset=name,
                         train_steps=train_steps, still_ade_px=round(evaluate_zero_motion(val), 3))


def evaluate_zero_motion(val) -> float:
    """ADE of predicting that nothing moves: the floor a trained model must beat."""
    from model.evaluate import trace_errors

    items = [val[i] for i in range(len(val))]
    target = np.stack([it["traj"] for it in items])
    still = np.repeat(target[:, :, :1], target.shape[2], axis=2)
    return trace_errors(still, target, np.stack([it["valid"] for it in items]))["ade_px"]


def bench_tokenisation(workdir: str, train_steps: int, repeats: int) -> None:
    from model.checkpoint import load_checkpoint

    val = SyntheticTraceDataset(num_videos=16, samples_per_video=2, seed=1234)
    item = val[0]
    for point_patch, time_patch in ((1, 32), (2, 32), (2, 8), (4, 32)):
        out = f"{workdir}/tok{point_patch}x{time_patch}"
        started = time.perf_counter()
        _train_preset("tiny", out, train_steps, {"point_patch": point_patch, "time_patch": time_patch})
        train_s = time.perf_counter() - started
        model, cfg, _ = load_checkpoint(out)
        ade, _ = _ade(model, val, cfg.sampler, cfg.sample_steps)
        ms = 1000 * _time_predict(model, item, cfg.sample_steps, cfg.sampler, repeats)
        emit(bench="tokenisation", point_patch=point_patch, time_patch=time_patch, tokens=cfg.num_tokens, train_steps=train_steps,
             train_s=round(train_s, 1), ade_px=round(ade, 3), predict_ms=round(ms, 1))


def bench_token_latency(repeats: int) -> None:
    """Prediction latency of the tiny preset per trace tokenisation (weights do not change the cost)."""
    item = SyntheticTraceDataset(1, 1, depth_fraction=1.0)[0]
    for point_patch, time_patch in ((1, 32), (2, 32), (2, 8), (4, 32)):
        model = TraceFlowNet(preset("tiny", point_patch=point_patch, time_patch=time_patch)).eval()
        ms = 1000 * _time_predict(model, item, model.cfg.sample_steps, model.cfg.sampler, repeats)
        emit(bench="token_latency", point_patch=point_patch, time_patch=time_patch, tokens=model.cfg.num_tokens,
             params=count_parameters(model), predict_ms=round(ms, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tokenisation", action="store_true")
    parser.add_argument("--checkpoint", default="", help="checkpoint for the sampler comparison (default: train tiny and small)")
    parser.add_argument("--sampler-store", default="", help="with --checkpoint: score samplers on this trace store's videos")
    parser.add_argument("--only", default="", help="comma list of sections to run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    only = set(filter(None, args.only.split(",")))
    emit(bench="machine", threads=args.threads, cpu_count=os.cpu_count(), torch=torch.__version__)
    with tempfile.TemporaryDirectory() as workdir:
        if not only or "params" in only:
            bench_params()
        if not only or "train_rate" in only:
            bench_train_rate(write_synthetic_store(f"{workdir}/store.zarr", 24, 4), batch_size=16, steps=8)
        if not only or "latency" in only:
            bench_latency(["tiny", "small", "base"], args.repeats)
        if not only or "sampler" in only:
            bench_sampler(workdir, args.train_steps, args.checkpoint, args.sampler_store)
        if "token_latency" in only:
            bench_token_latency(args.repeats)
        if args.tokenisation or "tokenisation" in only:
            bench_tokenisation(workdir, args.train_steps, args.repeats)


if __name__ == "__main__":
    main()
