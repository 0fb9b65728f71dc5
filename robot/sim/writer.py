"""Write an episode as the files `tracegen forge` reads.

`<name>.mp4` (H.264 via PyAV), `<name>.depth.npz` (key `depth`, float32 [T, H, W] metres, rounded to
14 significant bits: relative error <= 1.3e-4, 0.13 mm at 1 m, which makes it compress 4x better),
`<name>.json` (instructions, embodiment, fps, intrinsics, world-to-camera poses, task, seed, start, success)
and `<name>.gt.npz` (`world` [T, 400, 3], `camera_uvz` [T, 400, 3], `visible` [T, 400], `geom` [400]).
Every file is written under a temporary name and renamed, so a reader never sees half a file, and
with fixed archive timestamps, so the same seed gives the same bytes.
"""

from __future__ import annotations

import json
import multiprocessing
import zipfile
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from robot.sim.episode import Episode


def episode_name(episode: Episode) -> str:
    """`<task>-<embodiment>-<camera>-s<seed>-<index>`."""
    return config_name(episode.config)


def config_name(c) -> str:
    """The file stem of the episode an `EpisodeConfig` films (see `episode_name`)."""
    return f"{c.task}-{c.embodiment}-{c.camera}-s{c.seed}-{c.index:03d}"


def episode_files(config) -> list[str]:
    """The file names `write_episode` writes for the episode `config` (an `EpisodeConfig`) films."""
    name = config_name(config)
    return [f"{name}.mp4", *([f"{name}.depth.npz"] if config.depth else []), f"{name}.gt.npz", f"{name}.json"]


def written_episodes(config, episodes: int, out_dir: str | Path) -> int:
    """How many of the `episodes` episodes from `config.index` on are already in `out_dir`, in a row from the
    first, filmed with `config`'s settings: each has all its files (each written atomically) and a sidecar
    recording the same task, embodiment, camera, seed, index, start, size and frame rate. The same settings
    write the same bytes, so `generate_demos` from `config.index + written_episodes(...)` completes the run
    exactly as one uninterrupted run would have written it."""
    from dataclasses import replace

    out_dir = Path(out_dir)
    for offset in range(episodes):
        c = replace(config, index=config.index + offset)
        files = episode_files(c)
        if not all((out_dir / name).is_file() for name in files):
            return offset
        try:
            meta = json.loads((out_dir / files[-1]).read_text())
        except (OSError, ValueError):
            return offset
        wanted = {"task": c.task, "embodiment": c.embodiment, "camera": c.camera, "seed": c.seed, "episode": c.index,
                  "start": c.start, "size": [c.width, c.height], "fps": c.fps}
        if any(meta.get(key) != value for key, value in wanted.items()):
            return offset
    return episodes


def write_video(path: Path, frames: np.ndarray, fps: float) -> None:
    """Encode (T, H, W, 3) uint8 RGB frames as H.264 (yuv420p, CRF 17, single-threaded: same bytes every run)."""
    from fractions import Fraction

    import av

    with av.open(str(path), mode="w", format="mp4") as container:
        rate = Fraction(fps).limit_denominator(1000)
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.thread_count = 1
        # No encoder threads and no lookahead thread: with them x264's output varies from run to run.
        stream.options = {"crf": "17", "preset": "veryfast", "threads": "1",
                          "x264-params": "threads=1:sliced-threads=0:lookahead-threads=1:sync-lookahead=0:rc-lookahead=0:mbtree=0"}
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = index, 1 / rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def episode_metadata(episode: Episode) -> dict:
    """The `<name>.json` sidecar's content."""
    c, k = episode.config, episode.intrinsics
    return {
        "instructions": episode.instructions,
        "instruction": episode.instructions[0],
        "embodiment": c.embodiment,
        "fps": c.fps,
        "intrinsics": {"fx": float(k[0, 0]), "fy": float(k[1, 1]), "cx": float(k[0, 2]), "cy": float(k[1, 2])},
        "camera_poses": [[[float(x) for x in row] for row in pose] for pose in episode.camera_poses],
        "task": c.task,
        "seed": c.seed,
        "episode": c.index,
        "camera": c.camera,
        "start": c.start,
        "size": [c.width, c.height],
        "frames": int(len(episode.frames)),
        "success": episode.success,
        "simulator": "mujoco",
    }


def write_episode(episode: Episode, out_dir: str | Path) -> dict[str, Path]:
    """Write the episode's files into `out_dir`; returns their paths by kind."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = episode_name(episode)
    paths = {"video": out_dir / f"{name}.mp4", "json": out_dir / f"{name}.json", "gt": out_dir / f"{name}.gt.npz"}
    if episode.depth is not None:
        paths["depth"] = out_dir / f"{name}.depth.npz"
    jobs = [(paths["video"], lambda tmp: write_video(tmp, episode.frames, episode.config.fps)),
            (paths["gt"], lambda tmp: _savez(tmp, world=episode.gt_world, camera_uvz=episode.gt_uvz,
                                             visible=episode.gt_visible, geom=episode.gt_geom)),
            (paths["json"], lambda tmp: tmp.write_text(json.dumps(episode_metadata(episode), indent=1) + "\n"))]
    if episode.depth is not None:
        jobs.insert(1, (paths["depth"], lambda tmp: _savez(tmp, depth=round_mantissa(episode.depth))))
    with ThreadPoolExecutor(max_workers=2) as pool:  # x264 and deflate release the GIL: encode while compressing
        for future in [pool.submit(_atomic, path, write) for path, write in jobs]:
            future.result()
    return paths


def round_mantissa(values: np.ndarray, drop_bits: int = 10) -> np.ndarray:
    """float32 `values` with the lowest `drop_bits` mantissa bits cleared (NaN stays NaN)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return (bits & np.uint32((0xFFFFFFFF << drop_bits) & 0xFFFFFFFF)).view(np.float32)


def _savez(path: Path, **arrays) -> None:
    """`np.savez_compressed` with fixed entry timestamps (numpy stamps the current time) and fast deflate."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info._compresslevel = 1  # ZipFile(compresslevel=...) does not reach entries given as ZipInfo
            with archive.open(info, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.asanyarray(array), allow_pickle=False)


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    tmp.replace(path)


def generate_demos(config, episodes: int, out_dir: str | Path, on_episode=None, workers: int = 1) -> list[dict]:
    """Film and write `episodes` episodes of `config` (an `EpisodeConfig`; its `index` is the first one).

    Args:
        on_episode: called with each episode's summary as it is written (for progress bars).
        workers: processes filming episodes at once. Each episode depends only on its own settings, so the
            files are the same bytes for any count.
    Returns:
        One summary per episode, in episode order: name, frames, success, seconds, and the written paths.
    """
    from dataclasses import replace

    from robot.sim.errors import SimConfigError

    if episodes < 1:
        raise SimConfigError(f"--episodes {episodes} must be at least 1")
    if workers < 1:
        raise SimConfigError(f"--workers {workers} must be at least 1")
    config.validate()
    configs = [replace(config, index=config.index + offset) for offset in range(episodes)]
    if workers == 1 or episodes == 1:
        summaries = []
        for c in configs:
            summaries.append(film_episode(c, out_dir))
            if on_episode is not None:
                on_episode(summaries[-1])
        return summaries
    context = multiprocessing.get_context("spawn")  # a forked MuJoCo/EGL context is not safe to reuse
    with ProcessPoolExecutor(max_workers=min(workers, episodes), mp_context=context) as pool:
        futures = [pool.submit(film_episode, c, str(out_dir)) for c in configs]
        try:
            for future in as_completed(futures):
                if on_episode is not None:
                    on_episode(future.result())
        except BaseException:
            for future in futures:
                future.cancel()  # episodes not started yet; those under way finish and are kept (atomic files)
            raise
    return [future.result() for future in futures]


def film_episode(config, out_dir: str | Path) -> dict:
    """Film and write the one episode `config` describes; returns its summary (see `generate_demos`)."""
    from robot.sim.episode import generate_episode

    episode = generate_episode(config)
    paths = write_episode(episode, out_dir)
    return {"name": episode_name(episode), "frames": int(len(episode.frames)), "success": episode.success,
            "seconds": round(episode.timings["total_s"], 3), "paths": {k: str(v) for k, v in paths.items()}}
