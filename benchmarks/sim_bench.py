"""Simulator benchmark: render rate, episode generation time, scripted-demonstrator success rate.

Prints one JSON object per line:
  {"metric": "render_fps", ...}             offscreen RGB-D frames per second from a moving camera
  {"metric": "episode", ...}                one filmed episode per task x embodiment (generate + write)
  {"metric": "demonstrator_success", ...}   success over seeded layouts (physics only, no rendering)

Usage: MUJOCO_GL=egl python benchmarks/sim_bench.py [--seeds 100] [--other-seeds 20] [--size 320x240]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from robot.sim.cameras import sample_camera  # noqa: E402
from robot.sim.demonstrator import make_plan, run_plan, sample_style  # noqa: E402
from robot.sim.embodiments import EMBODIMENTS  # noqa: E402
from robot.sim.episode import EpisodeConfig, generate_episode  # noqa: E402
from robot.sim.render import FrameRenderer  # noqa: E402
from robot.sim.tasks import TASKS, sample_layout, task_success  # noqa: E402
from robot.sim.world import build_scene  # noqa: E402
from robot.sim.writer import write_episode  # noqa: E402


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def bench_render(width: int, height: int, frames: int) -> None:
    rng = np.random.default_rng(0)
    layout = sample_layout("ball_in_bin", rng)
    scene = build_scene("ball_in_bin", "so101", layout, rng, width, height)
    rig = sample_camera("handheld", rng)
    scene.model.cam_fovy[scene.camera_id] = rig.fovy
    renderer = FrameRenderer(scene.model, width, height, scene.camera_id)
    scene.forward()
    for with_depth in (True, False):
        renderer.render(scene.data, *rig.pose(0.0), with_depth=with_depth)
        started = time.perf_counter()
        for index in range(frames):
            renderer.render(scene.data, *rig.pose(index / 15.0), with_depth=with_depth)
        seconds = time.perf_counter() - started
        emit({"metric": "render_fps", "size": f"{width}x{height}", "depth": with_depth, "frames": frames,
              "fps": round(frames / seconds, 1), "ms_per_frame": round(1000 * seconds / frames, 2)})
    renderer.close()


def bench_episodes(width: int, height: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for task in TASKS:
            for embodiment in EMBODIMENTS:
                config = EpisodeConfig(task=task, embodiment=embodiment, camera="handheld", seed=0, width=width, height=height)
                started = time.perf_counter()
                episode = generate_episode(config)
                generated = time.perf_counter() - started
                write_episode(episode, folder)
                total = time.perf_counter() - started
                count = len(episode.frames)
                emit({"metric": "episode", "task": task, "embodiment": embodiment, "size": f"{width}x{height}",
                      "frames": count, "sim_seconds": round(count / config.fps, 2), "generate_s": round(generated, 3),
                      "write_s": round(total - generated, 3), "frames_per_s_generate": round(count / generated, 1),
                      "frames_per_s_with_write": round(count / total, 1), "success": episode.success})


def bench_success(embodiment: str, seeds: int) -> None:
    for task in TASKS:
        successes, started = 0, time.perf_counter()
        failed = []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            layout = sample_layout(task, rng)
            scene = build_scene(task, embodiment, layout, rng, 64, 48)
            style = sample_style(embodiment, rng)
            run_plan(scene, make_plan(scene, style, rng), style, rng, lambda t: None)
            ok = task_success(task, scene.model, scene.data, layout.params)
            successes += ok
            if not ok:
                failed.append(seed)
        emit({"metric": "demonstrator_success", "task": task, "embodiment": embodiment, "seeds": seeds,
              "successes": successes, "rate": round(successes / seeds, 3), "failed_seeds": failed[:10],
              "seconds_per_episode": round((time.perf_counter() - started) / seeds, 3)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100, help="seeded layouts per task for the SO-101")
    parser.add_argument("--other-seeds", type=int, default=20, help="seeded layouts per task for the other embodiments")
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--render-frames", type=int, default=200)
    parser.add_argument("--skip", nargs="*", default=[], choices=["render", "episodes", "success"])
    args = parser.parse_args()
    width, height = (int(x) for x in args.size.split("x"))
    if "render" not in args.skip:
        bench_render(width, height, args.render_frames)
    if "episodes" not in args.skip:
        bench_episodes(width, height)
    if "success" not in args.skip:
        bench_success("so101", args.seeds)
        for embodiment in ("other_robot", "human"):
            bench_success(embodiment, args.other_seeds)


if __name__ == "__main__":
    main()
