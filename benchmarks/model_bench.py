"""Trace-model benchmark: one JSON object per line.

Measures, on this machine's CPU (threads set by --threads):
  params        parameters per preset
  train_rate    training samples/s (tiny) and the data loader's own rate over a real trace store
  latency       `predict_traces` wall time per preset, sampler and step count
  sampler       the default sampler against 100-step Euler on one briefly trained tiny network:
                speed ratio and ADE of each on held-out synthetic scenes
  token_latency (with --only token_latency) prediction latency per trace tokenisation
  tokenisation  (with --tokenisation) per-point vs patch tokens: ADE after the same training, latency

Run: .venv/bin/python benchmarks/model_bench.py [--threads 2] [--train-steps 300] [--tokenisation]
     [--checkpoint CKPT] [--only params,train_rate,latency,sampler,tokenisation]
"""

from __future__ import annotations

import argparse
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
        settings = [("heun", s) for s in (1, 2, 3, 4, 8)] + [("euler", s) for s in (4, 100)]
        for sampler, steps in settings if name != "base" else [("heun", 4)]:
            seconds = _time_predict(model, item, steps, sampler, repeats if name != "base" else 1)
            calls = steps if sampler == "euler" else 2 * steps - 1
            emit(bench="latency", preset=name, sampler=sampler, steps=steps, network_calls=calls, ms=round(1000 * seconds, 1),
                 default=(sampler == model.cfg.sampler and steps == model.cfg.sample_steps))


def _train_tiny(out: str, train_steps: int, overrides: dict, seed: int = 0) -> None:
    cfg = TrainConfig(out_dir=out, preset="tiny", steps=train_steps, batch_size=16, lr=2e-3, warmup_steps=min(50, train_steps // 5),
                      eval_every=0, checkpoint_every=0, seed=seed, model_overrides=overrides, ema_decay=0.99)
    train(cfg, SyntheticTraceDataset(num_videos=64, samples_per_video=8, seed=seed))


def _ade(model, val, sampler: str, steps: int) -> tuple[float, float]:
    model.cfg = preset("tiny", **{**model.cfg.to_dict(), "sampler": sampler, "sample_steps": steps})
    started = time.perf_counter()
    metrics = evaluate(model, val, SampleTransform(model.cfg), len(val), seed=1)
    return metrics["ade_px"], time.perf_counter() - started


def bench_sampler(workdir: str, train_steps: int, checkpoint: str = "") -> None:
    """Default sampler vs 100-step Euler on the same tiny network (trained here briefly, or --checkpoint),
    same noise, on held-out synthetic scenes; a few other step counts alongside."""
    from model.checkpoint import load_checkpoint

    if not checkpoint:
        checkpoint = f"{workdir}/sampler"
        _train_tiny(checkpoint, train_steps, {})
    model, cfg, meta = load_checkpoint(checkpoint)
    val = SyntheticTraceDataset(num_videos=16, samples_per_video=2, seed=1234)
    results = {}
    for sampler, steps in (("euler", 100), ("heun", 2), ("heun", 3), ("heun", 4), ("heun", 8), ("euler", 4)):
        results[sampler, steps] = _ade(model, val, sampler, steps)
        emit(bench="sampler_setting", sampler=sampler, steps=steps, ade_px=round(results[sampler, steps][0], 3),
             eval_s=round(results[sampler, steps][1], 2))
    cfg = preset("tiny")  # today's default sampler, whatever the checkpoint was saved with
    (default_ade, default_s), (euler_ade, euler_s) = results[cfg.sampler, cfg.sample_steps], results["euler", 100]
    emit(bench="sampler", checkpoint_step=meta["step"], default=f"{cfg.sampler}-{cfg.sample_steps}", default_ade_px=round(default_ade, 3),
         euler100_ade_px=round(euler_ade, 3), ade_diff_pct=round(100 * (default_ade - euler_ade) / euler_ade, 2),
         speed_ratio=round(euler_s / default_s, 1), still_baseline_ade_px=round(evaluate_zero_motion(val), 3), val_samples=len(val))


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
        _train_tiny(out, train_steps, {"point_patch": point_patch, "time_patch": time_patch})
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
    parser.add_argument("--checkpoint", default="", help="tiny checkpoint for the sampler comparison (default: train one)")
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
            bench_sampler(workdir, args.train_steps, args.checkpoint)
        if "token_latency" in only:
            bench_token_latency(args.repeats)
        if args.tokenisation or "tokenisation" in only:
            bench_tokenisation(workdir, args.train_steps, args.repeats)


if __name__ == "__main__":
    main()
