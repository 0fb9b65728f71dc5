"""Decode a video or frame folder into RGB frames at a capped resolution, split at scene cuts and skip
static stretches. Pure functions below `decode_source` work on arrays."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from forge.config import ForgeConfig
from forge.errors import VideoReadError
from forge.inputs import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

THUMB_SIZE = (80, 60)  # (W, H) thumbnails for cut and stillness tests
TRUNCATION_RATIO = 0.9  # fewer decoded frames than this share of the header's count: truncated


@dataclass
class DecodedVideo:
    """Frames kept for forging.

    Attributes:
        frames: (T, H, W, 3) uint8 RGB at the decoded size.
        frame_ids: (T,) int64 index of each kept frame in the source.
        segments: list of (start, end) half-open ranges into `frames`, one per shot.
        source_size: (H, W) of the source frames.
        scale: decoded pixels per source pixel (<= 1).
        fps: frames per second of the source (0 when unknown).
        source_frame_count: frames read from the source.
    """

    frames: np.ndarray
    frame_ids: np.ndarray
    segments: list[tuple[int, int]]
    source_size: tuple[int, int]
    scale: float
    fps: float
    source_frame_count: int


def decode_source(path: Path, is_frame_folder: bool, config: ForgeConfig) -> DecodedVideo:
    """Read every `stride`-th frame, downscale to `max_side`, cut at shots, drop still frames.

    Raises:
        VideoReadError: unreadable, truncated, empty, or absurdly large input.
    """
    if is_frame_folder:
        reader = _read_folder(path)
    else:
        reader = _read_tracker_npz(path) if path.suffix.lower() == ".npz" else _read_video(path)
    kept, ids, thumbs = [], [], []
    scale, source_size, count, fps = 1.0, (0, 0), 0, 0.0
    for index, frame_bgr, frame_fps in reader:
        count, fps = index + 1, frame_fps
        if index == 0:
            source_size = frame_bgr.shape[:2]
            if source_size[0] * source_size[1] > config.max_pixels or min(source_size) < 16:
                raise VideoReadError(
                    f"{path}: frame size {source_size[1]}x{source_size[0]} is absurd; "
                    f"forge takes 16 px to {config.max_pixels} px frames"
                )
            scale = min(1.0, config.max_side / max(source_size))
        if frame_bgr.shape[:2] != source_size:
            raise VideoReadError(f"{path}: frame {index} is {frame_bgr.shape[:2]}, not {source_size}; re-encode it")
        if index % config.stride:
            continue
        frame = frame_bgr if scale == 1.0 else cv2.resize(
            frame_bgr, _scaled(source_size, scale), interpolation=cv2.INTER_AREA
        )
        kept.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        ids.append(index)
        thumbs.append(cv2.resize(frame, THUMB_SIZE, interpolation=cv2.INTER_AREA))
    if not kept:
        raise VideoReadError(f"{path}: no frame could be decoded; the file is empty or not a video")
    cut_segments = split_at_cuts(np.stack(thumbs), config.cut_threshold, config.min_segment_frames)
    keep_mask = still_frame_mask(np.stack(thumbs), cut_segments, config.still_threshold)
    frames, frame_ids, segments = _apply_mask(np.stack(kept), np.asarray(ids), cut_segments, keep_mask,
                                              config.min_segment_frames)
    log.debug("%s: %d frames read, %d kept, %d segments", path, count, len(frames), len(segments))
    return DecodedVideo(frames, frame_ids, segments, tuple(source_size), scale, fps, count)


def _scaled(size: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(2, int(round(size[1] * scale))), max(2, int(round(size[0] * scale)))


def _read_video(path: Path):
    if not path.is_file() or path.stat().st_size == 0:
        raise VideoReadError(f"{path}: the file is empty (0 bytes); remove it or re-export the video")
    _probe(path)
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoReadError(f"{path}: cannot open the video (unknown container or codec); re-encode it as H.264 mp4")
    try:
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        expected = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield index, frame, fps
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise VideoReadError(f"{path}: no frame could be decoded; the file is truncated or not a video")
    if expected > 0 and index < TRUNCATION_RATIO * expected:
        raise VideoReadError(
            f"{path}: decoded {index} of {expected} frames; the file is truncated, re-copy or re-encode it"
        )


def _probe(path: Path) -> None:
    """Open the container with PyAV first: it raises a readable error for a broken file where
    OpenCV's FFmpeg backend would print to stderr and return nothing."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path}: the file has no video stream; pass a video")
    except av.error.FFmpegError as exc:
        raise VideoReadError(f"{path}: not a readable video ({exc.strerror or exc}); the file is truncated "
                             "or corrupt, re-copy or re-encode it") from exc


def _read_tracker_npz(path: Path):
    """Frames of a TAPIP3D / SpatialTrackerV2 `.npz`: `video` (T, 3, H, W) in [0, 1] (or (T, H, W, 3))."""
    with np.load(path, allow_pickle=False) as data:
        video = np.asarray(data["video"])
    if video.ndim != 4 or 3 not in (video.shape[1], video.shape[3]):
        raise VideoReadError(f"{path}: 'video' has shape {video.shape}; expected (T, 3, H, W) in [0, 1]")
    if video.shape[1] == 3 and video.shape[3] != 3:
        video = np.moveaxis(video, 1, -1)
    scale = 255.0 if video.dtype.kind == "f" and video.max() <= 1.0 else 1.0
    for index, frame in enumerate(np.clip(video * scale, 0, 255).astype(np.uint8)):
        yield index, np.ascontiguousarray(frame[..., ::-1]), 0.0  # RGB -> BGR like the other readers


def _read_folder(path: Path):
    names = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    for index, name in enumerate(names):
        frame = cv2.imread(str(name), cv2.IMREAD_COLOR)
        if frame is None:
            raise VideoReadError(f"{name}: not a readable image; remove it from the frame folder")
        yield index, frame, 0.0


def split_at_cuts(thumbs: np.ndarray, threshold: float, min_frames: int) -> list[tuple[int, int]]:
    """Shot boundaries from colour-histogram correlation of consecutive frames.

    Args:
        thumbs: (T, h, w, 3) uint8 BGR thumbnails.
        threshold: correlation (-1..1) below which consecutive frames belong to different shots.
        min_frames: shots shorter than this are dropped.
    Returns:
        Half-open (start, end) ranges.
    """
    hists = []
    for thumb in thumbs:
        hsv = cv2.cvtColor(thumb, cv2.COLOR_BGR2HSV)
        hist = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256])
        hists.append(cv2.normalize(hist, None).ravel())
    bounds = [0]
    for t in range(1, len(thumbs)):
        correlation = cv2.compareHist(hists[t - 1], hists[t], cv2.HISTCMP_CORREL)
        grey_change = np.abs(thumbs[t].astype(np.int16) - thumbs[t - 1]).mean()
        if correlation < threshold and grey_change > 12.0:  # a cut changes both colours and pixels
            bounds.append(t)
    bounds.append(len(thumbs))
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b - a >= min_frames]


def still_frame_mask(thumbs: np.ndarray, segments: list[tuple[int, int]], threshold: float) -> np.ndarray:
    """Frames to keep: the first of each segment and every frame that differs from the last kept one.

    Returns:
        (T,) bool.
    """
    grey = np.stack([cv2.cvtColor(t, cv2.COLOR_BGR2GRAY) for t in thumbs]).astype(np.float32)
    keep = np.zeros(len(thumbs), dtype=bool)
    for start, end in segments:
        last = start
        keep[start] = True
        for t in range(start + 1, end):
            if np.abs(grey[t] - grey[last]).mean() >= threshold:
                keep[t] = True
                last = t
    return keep


def _apply_mask(frames, frame_ids, segments, keep, min_frames):
    new_index = np.cumsum(keep) - 1
    out_segments = []
    for start, end in segments:
        kept = np.flatnonzero(keep[start:end])
        if len(kept) >= min_frames:
            out_segments.append((int(new_index[start + kept[0]]), int(new_index[start + kept[-1]]) + 1))
    return frames[keep], frame_ids[keep], out_segments
