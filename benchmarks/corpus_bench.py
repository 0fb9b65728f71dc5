"""Building a corpus in parallel: filming (`tracegen sim demos --workers`) and forging (`tracegen forge --workers`)
one video at a time against N at once, side by side in one run, on the same episodes.

Prints one JSON object per line:
  {"stage": "film", "workers": N, "videos": V, "seconds": S, "videos_per_min": R, "same_bytes": true}
  {"stage": "forge", "workers": N, "videos": V, "seconds": S, "videos_per_min": R, "same_traces": true}
  {"stage": "...", "speedup": R}                 N workers against one

`same_bytes` / `same_traces`: every file (every store array) equals the one-worker run's. Rounds alternate the
order of the two settings, so a machine that slows down during the run penalises both.

Usage: MUJOCO_GL=egl python benchmarks/corpus_bench.py [--episodes 12] [--workers 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from forge.config import ForgeConfig  # noqa: E402
from forge.runner import FAILED, forge_directory  # noqa: E402
from robot.sim.episode import EpisodeConfig  # noqa: E402
from robot.sim.writer import generate_demos  # noqa: E402

KINDS = (("human", "calibrated"), ("other_robot", "calibrated"))  # the scale runs' corpus is mostly these two


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def film(folder: Path, episodes: int, task: str, workers: int) -> float:
    started = time.perf_counter()
    for embodiment, camera in KINDS:
        config = EpisodeConfig(task=task, embodiment=embodiment, camera=camera, seed=7, start="park")
        generate_demos(config, episodes // len(KINDS), folder, workers=workers)
    return time.perf_counter() - started


def forge(folder: Path, store: Path, workers: int, plain_objects: bool) -> float:
    started = time.perf_counter()
    summary = forge_directory(folder, store, ForgeConfig(workers=workers, plain_objects=plain_objects))
    failed = [f"{o.source}: {o.reason}" for o in summary.outcomes if o.status == FAILED]
    if failed:
        raise SystemExit(f"forging failed: {failed[0]}")
    return time.perf_counter() - started


def files_equal(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names)


def arrays(store: Path) -> dict[str, np.ndarray]:
    import zarr

    def walk(group, prefix=""):
        for key, member in group.members():
            if isinstance(member, zarr.Group):
                yield from walk(member, f"{prefix}{key}/")
            else:
                yield f"{prefix}{key}", np.asarray(member[...])

    return dict(walk(zarr.open_group(str(store), mode="r")))


def stores_equal(a: Path, b: Path) -> bool:
    left, right = arrays(a), arrays(b)
    return left.keys() == right.keys() and all(np.array_equal(left[k], right[k], equal_nan=True) for k in left)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=12, help="episodes per round, split over the kinds")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="the parallel setting")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--task", default="ball_in_bin")
    parser.add_argument("--plain-objects", action="store_true", help="forge with --plain-objects")
    args = parser.parse_args()
    settings = (1, args.workers)
    seconds = {(stage, w): [] for stage in ("film", "forge") for w in settings}
    same = {"film": True, "forge": True}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            order = settings if round_ % 2 == 0 else settings[::-1]
            folders = {w: Path(tmp, f"r{round_}-w{w}") for w in settings}
            for w in order:
                seconds["film", w].append(film(folders[w], args.episodes, args.task, w))
            same["film"] &= files_equal(folders[1], folders[args.workers])
            for w in order:  # each forges the films of the one-worker run: the same input
                seconds["forge", w].append(forge(folders[1], Path(tmp, f"r{round_}-store-w{w}"), w, args.plain_objects))
            same["forge"] &= stores_equal(Path(tmp, f"r{round_}-store-w1"), Path(tmp, f"r{round_}-store-w{args.workers}"))
    videos = args.rounds * (args.episodes // len(KINDS)) * len(KINDS)
    for stage in ("film", "forge"):
        for w in settings:
            total = sum(seconds[stage, w])
            emit({"stage": stage, "task": args.task, "workers": w, "videos": videos, "seconds": round(total, 1),
                  "videos_per_min": round(60 * videos / total, 1),
                  "same_bytes" if stage == "film" else "same_traces": same[stage],
                  **({"plain_objects": args.plain_objects} if stage == "forge" else {})})
        emit({"stage": stage, "speedup": round(sum(seconds[stage, 1]) / sum(seconds[stage, args.workers]), 2),
              "workers": args.workers, "cpu_count": os.cpu_count()})


if __name__ == "__main__":
    main()
