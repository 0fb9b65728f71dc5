"""Interop with the TraceForge/TraceGen per-episode layout (DESIGN.md section 4).

One episode folder per video (named by its key) inside a dataset folder::

    <out>/<video key>/images/<stem>.png                 RGB reference frame
    <out>/<video key>/samples/<stem>.npz                keypoints (K, 2), traj (K, L, 3) pixels + z,
                                                         -inf padded, traj_2d (K, L, 2), valid_steps
                                                         (L,) bool, frame_index (L,) + tracegen extras
    <out>/<video key>/depth/<stem>_raw.npz              depth (H, W) metres (only with depth)
    <out>/<video key>/three_instructions.json           instruction_1..3
    <out>/<video key>/tracegen.json                     video attrs, forge attrs, config hash
    <out>/<video key>/camera.npy                        (T, 4, 4) world-to-camera

TraceGen's loader reads the first four; the extras (`visible`, `intrinsics`, `query_frame`,
`raw_traces`, `sample_index` inside each npz, and the two episode files) make export -> import an
identity. Episodes written by TraceForge itself (no extras) import too, with documented fallbacks.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

from store.errors import SchemaError, StoreError
from store.hashing import config_hash as hash_config
from store.hashing import sha256_of_path
from store.samples import VideoSamples
from store.trace import MAX_STEPS, TRACE_LENGTH
from store.trace_store import TraceStore

log = logging.getLogger(__name__)

DEFAULT_HFOV_DEG = 60.0  # intrinsics assumed for episodes that carry none


class InteropError(StoreError, ValueError):
    """A TraceForge episode folder that cannot be read, or an export target that cannot be written."""


def export_traceforge(store: TraceStore, out_dir: str | Path, keys: list[str] | None = None) -> list[Path]:
    """Write each video's default forge group as a TraceForge/TraceGen episode folder.

    Args:
        store: the source store.
        out_dir: dataset folder; one episode folder per video is created inside.
        keys: video keys or prefixes (default: all).
    Returns:
        The episode folders written.
    """
    import cv2

    out_dir = Path(out_dir)
    written = []
    for key in [store.resolve(k) for k in keys] if keys is not None else store.keys():
        cfg = store.pick_config(key, None)
        samples = store.read_samples(key, cfg)
        episode = out_dir / key
        try:
            for sub in ("images", "samples") + (("depth",) if samples.depth is not None else ()):
                (episode / sub).mkdir(parents=True, exist_ok=True)
            stems = _stems(samples.query_frame)
            for s, stem in enumerate(stems):
                if not cv2.imwrite(str(episode / "images" / f"{stem}.png"), samples.image[s][:, :, ::-1]):
                    raise OSError(f"cv2 could not write {episode / 'images' / stem}.png")
                np.savez_compressed(episode / "samples" / f"{stem}.npz", **_sample_arrays(samples, s))
                if samples.depth is not None:
                    np.savez_compressed(episode / "depth" / f"{stem}_raw.npz", depth=samples.depth[s])
            _write_episode_files(episode, store, key, cfg, samples)
        except OSError as exc:
            raise InteropError(f"cannot write episode {episode} ({exc}); pick a writable export folder") from exc
        written.append(episode)
        log.info("exported %s (%d samples) to %s", key[:12], samples.num_samples, episode)
    return written


def _stems(query_frame: np.ndarray) -> list[str]:
    """File stems: the query frame number (as TraceForge names them), or the sample index if repeated."""
    frames = [int(frame) for frame in query_frame]
    source = frames if len(set(frames)) == len(frames) else list(range(len(frames)))
    return [f"{value:06d}" for value in source]


def _sample_arrays(samples: VideoSamples, s: int) -> dict[str, np.ndarray]:
    traces = samples.traces[s]  # (K, L, 3)
    valid = samples.valid[s]  # (L,)
    traj = np.where(valid[None, :, None], traces, -np.inf).astype(np.float32)  # -inf past the last step
    frame_index = samples.frame_index[s] if samples.frame_index is not None else np.full(TRACE_LENGTH, np.nan, np.float32)
    return {
        "keypoints": traces[:, 0, :2].astype(np.float32),
        "traj": traj,
        "traj_2d": traj[:, :, :2],
        "valid_steps": valid,
        "frame_index": frame_index.astype(np.float32),
        "visible": samples.visible[s],
        "intrinsics": samples.intrinsics[s],
        "query_frame": np.int32(samples.query_frame[s]),
        "raw_traces": samples.raw_traces[s],
        "sample_index": np.int32(s),
    }


def _write_episode_files(episode: Path, store: TraceStore, key: str, cfg: str, samples: VideoSamples) -> None:
    video = store.video_attrs(key)
    instructions = [str(text) for text in video.get("instructions", [])]
    three = {f"instruction_{i + 1}": text for i, text in enumerate(instructions[:3])}
    (episode / "three_instructions.json").write_text(json.dumps(three, indent=2))
    meta = {
        "video_key": key,
        "config_hash": cfg,
        "video_attrs": video,
        "forge_attrs": store.forge_attrs(key, cfg),
        "has_frame_index": samples.frame_index is not None,
    }
    (episode / "tracegen.json").write_text(json.dumps(meta, indent=2))
    np.save(episode / "camera.npy", samples.camera)


def import_traceforge(source: str | Path, store: TraceStore) -> list[str]:
    """Import every episode folder under `source` (or `source` itself if it is one) into `store`.

    Episodes already present (same key and config hash) are not rewritten.

    Returns:
        The video keys of the episodes, in folder order.
    """
    source = Path(source)
    if not source.is_dir():
        raise InteropError(f"{source} is not a folder; pass a TraceForge dataset or episode folder")
    episodes = [source] if (source / "samples").is_dir() else sorted(p for p in source.iterdir() if (p / "samples").is_dir())
    if not episodes:
        raise InteropError(f"{source} holds no episode folder with samples/; pass a TraceForge dataset folder")
    keys = []
    for episode in episodes:
        key, video, cfg, forge, samples = read_episode(episode)
        if store.has_forge(key, cfg):  # content-addressed: the same episode is already there
            log.info("episode %s is already in the store as %s; skipped", episode.name, key[:12])
        else:
            store.write_video(key, video, cfg, forge, samples)
        keys.append(key)
    return keys


def read_episode(episode: Path) -> tuple[str, dict, str, dict, VideoSamples]:
    """One episode folder as (video key, video attrs, config hash, forge attrs, samples)."""
    meta = _read_json(episode / "tracegen.json") or {}
    files = sorted((episode / "samples").glob("*.npz"))
    if not files:
        raise InteropError(f"{episode}/samples holds no .npz; it is not a TraceForge episode")
    loaded = [(_load_npz(path), path.stem) for path in files]
    loaded.sort(key=lambda item: (int(item[0].get("sample_index", 0)), item[1]))
    per_sample = [_sample_from_npz(arrays, stem, episode) for arrays, stem in loaded]
    stack = {name: np.stack([sample[name] for sample in per_sample]) for name in per_sample[0]}
    if not meta.get("has_frame_index", True):
        stack.pop("frame_index")
    camera_path = episode / "camera.npy"
    camera = np.load(camera_path).astype(np.float32) if camera_path.is_file() else _static_camera(stack["query_frame"])
    depth = _read_depth(episode, [stem for _, stem in loaded])
    samples = VideoSamples(camera=camera, depth=depth, **stack)
    video = meta.get("video_attrs") or _video_attrs_from_episode(episode, samples)
    forge = meta.get("forge_attrs") or {
        "config": {"import": "traceforge"},
        "depth_source": "traceforge" if depth is not None else "none",
        "camera_motion": "unknown" if not camera_path.is_file() else "traceforge",
        "intrinsics_source": "episode" if "intrinsics" in loaded[0][0] else f"default {DEFAULT_HFOV_DEG:g} deg horizontal FOV",
    }
    key = meta.get("video_key") or sha256_of_path(episode)
    cfg = meta.get("config_hash") or hash_config(forge["config"])
    forge = {name: value for name, value in forge.items() if name not in ("published", "created")}
    return key, video, cfg, forge, samples


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text())
    except ValueError as exc:
        raise InteropError(f"{path} is not valid JSON ({exc}); fix or delete it") from exc
    return value if isinstance(value, dict) else None


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError) as exc:
        raise InteropError(f"{path} is not a readable .npz ({exc}); re-export the episode") from exc


def _sample_from_npz(arrays: dict[str, np.ndarray], stem: str, episode: Path) -> dict[str, np.ndarray]:
    """Schema arrays of one sample (image included); -inf padding becomes NaN, lengths become 129."""
    import cv2

    where = f"{episode}/samples/{stem}.npz"
    if "traj" not in arrays or arrays["traj"].ndim != 3 or arrays["traj"].shape[2] not in (2, 3):
        raise InteropError(f"{where} lacks traj (K, L, 2|3); it is not a TraceForge sample")
    image = cv2.imread(str(episode / "images" / f"{stem}.png"), cv2.IMREAD_COLOR)
    if image is None:
        raise InteropError(f"{episode}/images/{stem}.png is missing or unreadable; every sample needs its image")
    image = np.ascontiguousarray(image[:, :, ::-1])
    traj = arrays["traj"].astype(np.float32)
    if traj.shape[2] == 2:
        traj = np.concatenate([traj, np.full(traj.shape[:2] + (1,), np.nan, np.float32)], axis=2)
    traj = np.where(np.isneginf(traj), np.nan, traj)
    steps = traj.shape[1]
    valid = _pad(_valid_steps(arrays.get("valid_steps"), steps, where), TRACE_LENGTH, False)
    traces = _pad(traj, TRACE_LENGTH, np.nan, axis=1)
    visible = arrays["visible"].astype(bool) if "visible" in arrays else np.isfinite(traces[:, :, 0]) & valid[None]
    frame_index = arrays.get("frame_index", np.full(steps, np.nan, np.float32)).astype(np.float32)
    raw = arrays["raw_traces"] if "raw_traces" in arrays else traces[:, : min(MAX_STEPS, int(valid.sum()))]
    return {
        "traces": traces,
        "valid": valid,
        "visible": _pad(visible, TRACE_LENGTH, False, axis=1),
        "query_frame": np.int32(arrays["query_frame"] if "query_frame" in arrays else _frame_of(stem)),
        "image": image,
        "intrinsics": arrays["intrinsics"].astype(np.float32) if "intrinsics" in arrays else default_intrinsics(*image.shape[:2]),
        "raw_traces": raw.astype(np.float32),
        "frame_index": _pad(frame_index, TRACE_LENGTH, np.nan),
    }


def _valid_steps(value: np.ndarray | None, steps: int, where: str) -> np.ndarray:
    if value is None:
        raise InteropError(f"{where} lacks valid_steps; it is not a TraceForge sample")
    value = np.asarray(value)
    if value.ndim == 0:  # a count of valid steps
        return np.arange(steps) < int(value)
    if value.shape != (steps,):
        raise InteropError(f"{where}: valid_steps has shape {value.shape}, traj has {steps} steps; re-export it")
    return value.astype(bool)


def _pad(array: np.ndarray, length: int, fill, axis: int = 0) -> np.ndarray:
    """Cut or pad `array` along `axis` to `length` entries."""
    array = np.take(array, np.arange(min(length, array.shape[axis])), axis=axis)
    missing = length - array.shape[axis]
    if missing == 0:
        return array
    shape = list(array.shape)
    shape[axis] = missing
    return np.concatenate([array, np.full(shape, fill, dtype=array.dtype)], axis=axis)


def _frame_of(stem: str) -> int:
    digits = "".join(ch for ch in stem if ch.isdigit())
    return int(digits) if digits else 0


def default_intrinsics(height: int, width: int, hfov_deg: float = DEFAULT_HFOV_DEG) -> np.ndarray:
    """(3, 3) pinhole matrix with the given horizontal field of view, principal point at the centre."""
    focal = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    return np.array([[focal, 0, (width - 1) / 2.0], [0, focal, (height - 1) / 2.0], [0, 0, 1]], dtype=np.float32)


def _static_camera(query_frame: np.ndarray) -> np.ndarray:
    return np.tile(np.eye(4, dtype=np.float32), (int(query_frame.max()) + 1, 1, 1))


def _read_depth(episode: Path, stems: list[str]) -> np.ndarray | None:
    paths = [episode / "depth" / f"{stem}_raw.npz" for stem in stems]
    present = [path.is_file() for path in paths]
    if not any(present):
        return None
    if not all(present):
        missing = paths[present.index(False)]
        raise InteropError(f"{missing} is missing while other samples have depth; export depth for every sample")
    depth = [_load_npz(path).get("depth") for path in paths]
    if any(d is None or d.ndim != 2 for d in depth):
        raise SchemaError(f"a depth file in {episode}/depth lacks a 2-D 'depth' array; re-export the episode")
    return np.stack(depth).astype(np.float32)


def _video_attrs_from_episode(episode: Path, samples: VideoSamples) -> dict:
    three = _read_json(episode / "three_instructions.json") or {}
    instructions = [str(three[k]).strip() for k in ("instruction_1", "instruction_2", "instruction_3") if str(three.get(k, "")).strip()]
    return {
        "sources": [episode.name],
        "fps": None,
        "frame_count": int(samples.camera.shape[0]),
        "size": list(samples.image_size),
        "embodiment": "unknown",
        "instructions": instructions,
        "dataset": episode.parent.name,
    }
