"""One video -> the store's samples: decode, track, decide camera motion, recover poses and depth, lift,
retarget. Pure stages from forge's modules; the only I/O is reading the source and its sidecars.

Scene cuts: one source file is one store video group; every shot (segment) contributes samples, and
the forge attrs list the segments (decoded frame ranges, camera motion, depth source of each).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from forge import camera as camera_stage
from forge.bundle import refine_poses
from forge.config import ForgeConfig
from forge.decode import DecodedVideo, decode_source
from forge.depth import load_sensor_depth
from forge.errors import InputError, ReconstructionError
from forge.inputs import VideoSource
from forge.lift import lift_2d_homography, lift_2d_static, lift_sfm, lift_with_depth
from forge.odometry import chain_poses, poses_from_depth
from forge.reacquire import bridge_gaps
from forge.tracking import (
    PLAIN_BLOB_TOLERANCE,
    PLAIN_COLOUR_STEP,
    GridTracks,
    LKSettings,
    query_frames,
    track_grids,
)
from store.samples import VideoSamples
from store.trace import retarget_arc_length

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, float], None]
ODOMETRY_NOTE = "poses from sensor depth (RANSAC Kabsch on the static grid points)"


@dataclass
class SegmentResult:
    """Per-shot outcome, recorded in the forge attrs."""

    start: int
    end: int
    camera_motion: str
    depth_source: str
    samples: int
    note: str = ""


@dataclass
class ForgedVideo:
    """What `forge_video` produced for one source: the samples and the attrs to store with them."""

    samples: VideoSamples
    video_attrs: dict
    forge_attrs: dict
    segments: list[SegmentResult] = field(default_factory=list)


@dataclass
class _Pieces:
    """Per-sample arrays collected across segments."""

    traces: list = field(default_factory=list)
    valid: list = field(default_factory=list)
    visible: list = field(default_factory=list)
    query: list = field(default_factory=list)
    intrinsics: list = field(default_factory=list)
    raw: list = field(default_factory=list)
    depth: list = field(default_factory=list)
    frame_index: list = field(default_factory=list)


def forge_video(source: VideoSource, config: ForgeConfig, on_progress: ProgressCallback | None = None) -> ForgedVideo:
    """Forge one video (see the module docstring).

    Raises:
        ForgeError: unreadable input, bad sidecars or depth, or no usable segment.
    """
    report = on_progress or (lambda stage, fraction: None)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    decoded = decode_source(source.path, source.is_frame_folder, config)
    timings["decode"] = time.perf_counter() - started
    report("decode", 0.1)
    if not decoded.segments:
        raise InputError(f"{source.path}: no shot of at least {config.min_segment_frames} moving frames; nothing to forge")
    sensor_depth = _sensor_depth(source, decoded, config, timings)
    intrinsics, intrinsics_source = _intrinsics(source, decoded)
    camera = np.tile(np.eye(4, dtype=np.float32), (len(decoded.frames), 1, 1))
    pieces, results = _Pieces(), []
    for number, (start, end) in enumerate(decoded.segments):
        result = _forge_segment(source, decoded, (start, end), config, sensor_depth, intrinsics, camera, pieces, timings)
        results.append(result)
        report("segments", 0.1 + 0.9 * (number + 1) / len(decoded.segments))
    if not pieces.traces:
        raise InputError(f"{source.path}: no segment gave a trace (shots shorter than {config.min_track_frames} frames)")
    samples = _samples(pieces, decoded, camera, sensor_depth is not None)
    timings["total"] = time.perf_counter() - started
    video_attrs = _video_attrs(source, decoded, config)
    forge_attrs = _forge_attrs(config, results, timings, intrinsics_source, decoded)
    forge_attrs["instruction_from_folder_name"] = video_attrs["instruction_from_folder_name"]
    return ForgedVideo(samples, video_attrs, forge_attrs, results)


def _sensor_depth(source: VideoSource, decoded: DecodedVideo, config: ForgeConfig, timings: dict) -> np.ndarray | None:
    path = source.sidecar.depth_path if source.sidecar.depth_array is None else source.sidecar.depth_array
    if config.depth == "sensor" and path is None:
        raise InputError(f"{source.path}: --depth sensor but no <name>.depth.npz or <name>.depth/ beside it; "
                         "add the depth or use --depth auto")
    if path is None or config.depth not in ("auto", "sensor"):
        return None
    started = time.perf_counter()
    depth = load_sensor_depth(path, source.sidecar.depth_units, decoded.frame_ids, decoded.source_frame_count,
                              decoded.source_size, decoded.frames.shape[1:3])
    timings["depth_load"] = time.perf_counter() - started
    return depth


def _intrinsics(source: VideoSource, decoded: DecodedVideo) -> tuple[np.ndarray | None, str]:
    """Sidecar intrinsics scaled to the decoded frames (pixel centres stay centres), or None."""
    given = source.sidecar.intrinsics
    if given is None:
        return None, "unknown"
    scaled = given.copy()
    scaled[0, 0] *= decoded.scale
    scaled[1, 1] *= decoded.scale
    scaled[:2, 2] = (given[:2, 2] + 0.5) * decoded.scale - 0.5
    return scaled, "sidecar"


def _forge_segment(source, decoded, bounds, config, sensor_depth, intrinsics, camera, pieces, timings) -> SegmentResult:
    start, end = bounds
    frames = decoded.frames[start:end]
    started = time.perf_counter()
    grey = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
    queries = query_frames(start, end, config.query_every, config.min_track_frames)
    settings = LKSettings(config.lk_window, config.lk_levels, config.fb_threshold, config.still_patch,
                          config.flow_fallback, config.reacquire_every, config.colour_drift,
                          PLAIN_COLOUR_STEP if config.plain_objects else 0.0, PLAIN_BLOB_TOLERANCE if config.plain_objects else 0.0)
    tracks = track_grids(grey, start, queries, config.max_steps, settings, colour=frames)
    _add(timings, "track", started)
    motion = _camera_motion(source, decoded, bounds, tracks, config)
    height, width = frames.shape[1:3]
    poses, scene_points, k, depth_source, note = _geometry(source, decoded, bounds, motion, config,
                                                           sensor_depth, intrinsics, timings, tracks)
    started = time.perf_counter()
    if poses is None:  # RGB-D odometry: per-track poses relative to each query frame
        relative = [poses_from_depth(t, sensor_depth[t.query_frame : t.query_frame + t.num_frames], k, config.seed)
                    for t in tracks]
        poses = chain_poses(tracks, relative, start, end)
        _add(timings, "odometry", started)
        started = time.perf_counter()
    camera[start:end] = poses.astype(np.float32)
    for index, track in enumerate(tracks):
        if note == ODOMETRY_NOTE:
            world_to_camera = _invert_rigid(relative[index])  # world = the query camera; NaN stays NaN
            frames = slice(track.query_frame, track.query_frame + track.num_frames)
            raw, visible = lift_with_depth(track, sensor_depth[frames], k, world_to_camera)
        else:
            raw, visible = _lift(track, start, poses, k, depth_source, sensor_depth, scene_points, motion, config)
        raw, bridged = bridge_gaps(raw, visible)
        raw = np.where((visible | bridged)[..., None], raw, np.nan)  # unknown values are NaN
        retargeted = retarget_arc_length(raw, visible, width, height, max_steps=config.max_steps)
        traj = retargeted.traj  # NaN where a step's frames are unknown; bridged steps stay finite, unseen
        pieces.traces.append(traj)
        pieces.valid.append(retargeted.valid)
        pieces.visible.append(retargeted.visible)
        pieces.query.append(track.query_frame)
        pieces.intrinsics.append(k if k is not None else camera_stage.default_intrinsics(width, height))
        pieces.raw.append(raw.astype(np.float32))
        pieces.frame_index.append(_source_frames(retargeted.frame_index, track.query_frame, decoded.frame_ids))
        if sensor_depth is not None:
            pieces.depth.append(sensor_depth[track.query_frame])
    _add(timings, "lift", started)
    return SegmentResult(start, end, motion, depth_source, len(tracks), note)


def _add(timings: dict, stage: str, started: float) -> None:
    timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - started


def _camera_motion(source, decoded, bounds, tracks: list[GridTracks], config: ForgeConfig) -> str:
    if config.camera != "auto":
        return config.camera
    poses = source.sidecar.camera_poses
    if poses is not None:
        ids = decoded.frame_ids[bounds[0] : bounds[1]]
        return "moving" if not np.allclose(poses[ids], poses[ids[0]], atol=1e-6) else "static"
    return "moving" if camera_stage.background_motion(tracks) > config.static_motion_px else "static"


def _geometry(source, decoded, bounds, motion, config, sensor_depth, intrinsics, timings, tracks):
    """Poses (F, 4, 4), sparse scene points, intrinsics, depth source and a note for one segment."""
    start, end = bounds
    height, width = decoded.frames.shape[1:3]
    identity = np.tile(np.eye(4), (end - start, 1, 1))
    wants_depth = config.depth != "none"
    if motion == "static":
        k = intrinsics if intrinsics is not None else camera_stage.default_intrinsics(width, height)
        return identity, None, k, "sensor" if sensor_depth is not None else "none", ""
    if source.sidecar.camera_poses is not None:
        poses = _sidecar_poses(source, decoded, bounds)
        k = intrinsics if intrinsics is not None else camera_stage.default_intrinsics(width, height)
        return poses, None, k, "sensor" if sensor_depth is not None else "none", "poses from sidecar"
    if not wants_depth:
        return identity, None, intrinsics, "none", "2D homography compensation"
    if sensor_depth is not None:
        k = intrinsics if intrinsics is not None else camera_stage.default_intrinsics(width, height)
        return None, None, k, "sensor", ODOMETRY_NOTE
    started = time.perf_counter()
    try:
        recon = _reconstruct(decoded.frames[start:end], intrinsics, config)
        _add(timings, "sfm", started)
        started = time.perf_counter()
        poses, points = refine_poses(tracks, start, recon[0], recon[2], rounds=config.bundle_rounds,
                                     seed=config.seed)
        _add(timings, "sfm_points", started)
        if len(points) < 8:
            raise ReconstructionError(f"only {len(points)} grid tracks are static and well triangulated")
    except (ReconstructionError, np.linalg.LinAlgError) as exc:
        log.warning("%s frames %d-%d: %s; falling back to 2D traces", source.path, start, end, exc)
        _add(timings, "sfm", started)
        return identity, None, intrinsics, "none", f"SfM failed: {str(exc).splitlines()[0]}"
    return poses, points, recon[2], "sfm", ""


def _sidecar_poses(source, decoded, bounds) -> np.ndarray:
    poses = source.sidecar.camera_poses
    if len(poses) != decoded.source_frame_count:
        raise InputError(f"{source.path}: {len(poses)} camera_poses for {decoded.source_frame_count} frames; "
                         "give one world-to-camera pose per video frame")
    return poses[decoded.frame_ids[bounds[0] : bounds[1]]]


def _reconstruct(frames: np.ndarray, intrinsics, config: ForgeConfig):
    """SfM on up to `config.sfm_keyframes` evenly spaced frames, the others' poses interpolated; the scale
    is normalised so the scene's median depth in the first frame is 1.

    Returns:
        poses (F, 4, 4), SfM points (M, 3), intrinsics (3, 3).
    """
    keys = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), config.sfm_keyframes)).round().astype(int))
    recon = camera_stage.reconstruct(frames[keys], intrinsics, max_features=config.sfm_max_features,
                                     overlap=config.sfm_overlap, threads=config.sfm_threads, seed=config.seed)
    poses = np.full((len(frames), 4, 4), np.nan)
    poses[keys] = np.where(recon.registered[:, None, None], recon.world_to_camera, np.nan)
    known = np.isfinite(poses[:, 0, 0])
    poses = camera_stage.interpolate_poses(np.where(known[:, None, None], poses, 0.0), known)
    observed = [xyz for _, xyz in recon.observations if len(xyz)]
    points = np.concatenate(observed) if observed else np.zeros((0, 3))
    cam0 = points @ poses[0, :3, :3].T + poses[0, :3, 3]
    if (cam0[:, 2] > 0).sum() < 8:
        raise ReconstructionError(f"SfM triangulated {len(points)} points in front of the first frame; too few to lift")
    scale = 1.0 / float(np.median(cam0[cam0[:, 2] > 0, 2]))
    poses[:, :3, 3] *= scale
    return poses, points * scale, recon.intrinsics


def _invert_rigid(transforms: np.ndarray) -> np.ndarray:
    """Inverse of rigid (F, 4, 4) transforms; NaN entries stay NaN."""
    rotation_t = np.swapaxes(transforms[:, :3, :3], 1, 2)
    out = np.tile(np.eye(4), (len(transforms), 1, 1))
    out[:, :3, :3] = rotation_t
    out[:, :3, 3] = -np.einsum("fij,fj->fi", rotation_t, transforms[:, :3, 3])
    out[~np.isfinite(transforms).all((1, 2))] = np.nan
    return out


def _lift(track, start, poses, k, depth_source, sensor_depth, scene_points, motion, config):
    local = slice(track.query_frame - start, track.query_frame - start + track.num_frames)
    if depth_source == "sensor":
        frames = slice(track.query_frame, track.query_frame + track.num_frames)
        return lift_with_depth(track, sensor_depth[frames], k, poses[local])
    if depth_source == "sfm":
        raw, visible, stats = lift_sfm(track, poses[local], k, scene_points, seed=config.seed)
        log.debug("query frame %d: %s", track.query_frame, stats)
        return raw, visible
    if motion == "moving":
        return lift_2d_homography(track, seed=config.seed)
    return lift_2d_static(track)


def _source_frames(frame_index: np.ndarray, query: int, frame_ids: np.ndarray) -> np.ndarray:
    decoded = query + frame_index.astype(np.float64)
    return np.interp(decoded, np.arange(len(frame_ids)), frame_ids).astype(np.float32) * np.where(
        np.isfinite(frame_index), 1.0, np.nan
    ).astype(np.float32)


def _samples(pieces: _Pieces, decoded: DecodedVideo, camera: np.ndarray, has_depth: bool) -> VideoSamples:
    longest = max(r.shape[1] for r in pieces.raw)
    raw = np.full((len(pieces.raw), pieces.raw[0].shape[0], longest, 3), np.nan, dtype=np.float32)
    for i, r in enumerate(pieces.raw):
        raw[i, :, : r.shape[1]] = r
    query = np.asarray(pieces.query, dtype=np.int32)
    return VideoSamples(
        traces=np.stack(pieces.traces).astype(np.float32),
        valid=np.stack(pieces.valid),
        visible=np.stack(pieces.visible),
        query_frame=query,
        image=np.ascontiguousarray(decoded.frames[query]),
        intrinsics=np.stack(pieces.intrinsics).astype(np.float32),
        raw_traces=raw,
        camera=camera,
        depth=np.stack(pieces.depth).astype(np.float32) if has_depth else None,
        frame_index=np.stack(pieces.frame_index).astype(np.float32),
    )


def _video_attrs(source: VideoSource, decoded: DecodedVideo, config: ForgeConfig) -> dict:
    sidecar = source.sidecar
    from_folder = not sidecar.instructions and config.instruction is None
    instructions = sidecar.instructions or [config.instruction or _folder_instruction(source)]
    return {
        "sources": [source.path.name],
        "fps": float(sidecar.fps or decoded.fps or 0.0),
        "frame_count": int(decoded.source_frame_count),
        "size": [int(s) for s in decoded.source_size],
        "embodiment": sidecar.embodiment or config.embodiment,
        "instructions": instructions,
        "dataset": sidecar.dataset or source.path.parent.name,
        "instruction_from_folder_name": from_folder,
    }


def _folder_instruction(source: VideoSource) -> str:
    return source.path.parent.name.replace("_", " ").replace("-", " ").strip() or source.path.stem


def _forge_attrs(config, results: list[SegmentResult], timings, intrinsics_source, decoded) -> dict:
    import av
    import cv2 as cv
    import pycolmap

    sources = {r.depth_source for r in results if r.samples}
    depth_source = next((s for s in ("sensor", "sfm", "none") if s in sources), "none")
    motion = "moving" if any(r.camera_motion == "moving" for r in results) else "static"
    return {
        "config": config.hashed(),
        "depth_source": depth_source,
        "camera_motion": motion,
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "versions": {"opencv": cv.__version__, "pycolmap": pycolmap.__version__, "av": av.__version__,
                     "numpy": np.__version__},
        "intrinsics_source": intrinsics_source,
        "decode": {"scale": decoded.scale, "frames_decoded": len(decoded.frames),
                   "frame_ids": [int(i) for i in decoded.frame_ids]},
        "segments": [r.__dict__ for r in results],
        "segment_layout": "one video group per source; samples from every segment (see segments)",
    }

