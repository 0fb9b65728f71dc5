"""Fit check: does a checkpoint predict the motion of samples it was trained on, better than staying still?

For each video of a store (or the first `--videos`), one sample (`--sample`: the first, whose whole task
lies ahead, as in a trial; or a later one) is predicted from its image, depth and instruction, and
scored over its moving points against the forged trace (`model.evaluate.motion_errors`: a point moves
when it leaves its start by 1 % of the image side). A model that does not beat staying still on its own
training data underfits; one that does but fails on held-out scenes does not generalise. For the points
that truly end far from where they started (the carried object: the arm comes back), it also scores how
far along their true way the prediction takes them, at the step the true trace ends and at the horizon's
end, the step execute plays (`end_travel`). With `--split train` or `--split val` on the store a checkpoint
was pretrained on, only its training or its validation videos are scored: the two side by side say whether
the model underfits (alike) or memorises (training far better).

Run: .venv/bin/python benchmarks/fit_check.py --checkpoint CKPT --store STORE [--videos 40] [--sample 0] [--guidance 2]
     [--split all|train|val]
Prints one JSON object per line: one per video, then the mean.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


SPLITS = ("all", "train", "val")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--videos", type=int, default=40, help="videos scored (the store's first, in key order)")
    parser.add_argument("--sample", type=int, default=0, help="sample index within each video (0: its first query frame)")
    parser.add_argument("--temperature", type=float, default=0.0, help="sampling noise (0: deterministic)")
    parser.add_argument("--guidance", type=float, default=None,
                        help="classifier-free guidance scale (default: the checkpoint's; 1: none)")
    parser.add_argument("--split", choices=SPLITS, default="all",
                        help="score the checkpoint's training or validation videos only (its `data.val_keys`)")
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args(argv)


def split_keys(keys: list[str], val_keys: list[str], split: str) -> list[str]:
    """The store's `keys` in `split` of a checkpoint whose validation videos are `val_keys`."""
    if split == "all":
        return list(keys)
    if not val_keys:
        raise SystemExit("the checkpoint records no validation videos; use --split all")
    held = set(val_keys)
    chosen = [k for k in keys if (k in held) == (split == "val")]
    if not chosen:
        raise SystemExit(f"no {split} video of the checkpoint is in the store; pass the store it was trained on")
    return chosen


def first_frame_errors(model, store: Path, videos: int, sample: int = 0, temperature: float = 0.0,
                      guidance: float | None = None, keys: list[str] | None = None) -> list[dict]:
    """Moving-point errors (`model.evaluate.motion_errors`) of one predicted sample per video of `store`
    (the first `videos` of `keys`, default all, in key order, sample index `sample`; `guidance` None: the
    checkpoint's scale); videos whose sample has no moving point are left out."""
    import numpy as np

    from model.evaluate import motion_errors
    from model.predict import predict_traces
    from store.dataset import TraceDataset

    data = TraceDataset(store, keys=keys, steps=model.cfg.steps)
    rows = []
    for video, (key, _, count) in enumerate(data.entries[:videos]):
        if count <= sample:
            continue
        item = data[int(data.offsets[video]) + sample]
        depth = item["depth"].numpy() if item["has_depth"] else None
        image = item["image"].numpy()
        pred = predict_traces(model, image, depth, item["intrinsics"].numpy(), item["instructions"][0],
                              temperature=temperature, guidance=guidance)[0]  # (1, K, S+1, 3)
        target, valid = item["traj"].numpy()[None], item["valid"].numpy()[None]
        visible = item["visible"].numpy()[None]
        target = np.where(visible[..., None], target, np.nan)  # score what forge saw
        errors = motion_errors(pred, target, valid, np.array([max(image.shape[:2])]))
        travel = end_travel(np.asarray(pred)[0], target[0], valid[0], max(image.shape[:2]))
        if errors["moving_points"]:
            rows.append({"video": key[:12], **{k: round(v, 2) if isinstance(v, float) else v for k, v in errors.items()},
                         **dict(zip(TRAVEL_KEYS, [round(t, 3) for t in travel] if travel else (None, None), strict=True))})
    return rows


FAR_FRACTION = 0.08  # a point ending this share of the image side from its start is carried, not passing
TRAVEL_KEYS = ("travel_true_end", "travel_horizon")


def end_travel(pred, target, valid, side: float) -> tuple[float, float] | None:
    """How far along their true way (start to the true trace's last step) the prediction takes the points
    that truly end at least `FAR_FRACTION` of the image side from where they started, as a fraction of
    that way (1: all the way), in pixels: (at the step the true trace ends, at the prediction's last step);
    None when no point ends that far.

    Args:
        pred, target: (K, S+1, 3) `(u, v, z)` traces (target NaN where unknown); valid: (S+1,) the target's
            real steps; side: the image's longer side, pixels.
    """
    import numpy as np

    last = int(np.flatnonzero(valid)[-1])
    true = target[:, last, :2] - target[:, 0, :2]  # (K, 2)
    far = np.linalg.norm(np.nan_to_num(true, nan=0.0), axis=1) > FAR_FRACTION * side
    if not far.any():
        return None
    way = true[far].mean(0)
    length = float(np.linalg.norm(way))
    along = lambda step: float((pred[far, step, :2] - pred[far, 0, :2]).mean(0) @ way) / length**2  # noqa: E731
    return along(last), along(pred.shape[1] - 1)


SUMMARY_KEYS = ("ade_moving_px", "still_ade_moving_px", "fde_moving_px", "still_fde_moving_px", *TRAVEL_KEYS)


def summarise(rows: list[dict]) -> dict:
    """The mean of each `SUMMARY_KEYS` figure over the `rows` that have it (None when none has)."""
    import numpy as np

    values = {k: [r[k] for r in rows if r.get(k) is not None] for k in SUMMARY_KEYS}
    return {k: round(float(np.mean(v)), 2) if v else None for k, v in values.items()}


def main(argv=None) -> None:
    import torch

    from model.checkpoint import load_checkpoint
    from store.trace_store import TraceStore

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model, _, meta = load_checkpoint(args.checkpoint)
    keys = split_keys(TraceStore.open(args.store).keys(), (meta.get("data") or {}).get("val_keys") or [], args.split)
    rows = first_frame_errors(model, args.store, args.videos, args.sample, args.temperature, args.guidance, keys)
    for row in rows:
        print(json.dumps({"bench": "fit_check", **row}), flush=True)
    print(json.dumps({"bench": "fit_check", "summary": True, "checkpoint": str(args.checkpoint), "store": str(args.store),
                      "split": args.split, "sample": args.sample, "temperature": args.temperature,
                      "guidance": model.cfg.guidance if args.guidance is None else args.guidance, "videos": len(rows), **summarise(rows)}),
          flush=True)


if __name__ == "__main__":
    main()
