"""Forge a directory: discover videos, skip those already in the store (without decoding them), forge
the rest in a process pool, write each atomically, and report every video's outcome.

One broken video never stops the others: its error becomes a `failed` row with the reason.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue as queue_module
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from forge.config import ForgeConfig
from forge.errors import ForgeError
from forge.inputs import VideoSource, discover, read_sidecar, stem_of
from store.errors import StoreError

log = logging.getLogger(__name__)

FORGED, SKIPPED, FAILED = "forged", "skipped", "failed"
WOULD_FORGE, WOULD_SKIP = "would forge", "would skip"


@dataclass
class VideoOutcome:
    """One video's row in the summary.

    Attributes:
        source: path of the video or frame folder.
        status: forged, skipped, failed, would forge, would skip.
        reason: why (skip reason, error message, or a short description of what was forged).
        key: content hash of the source ("" when it could not be hashed).
        samples: samples written.
        seconds: wall time spent on it.
    """

    source: str
    status: str
    reason: str = ""
    key: str = ""
    samples: int = 0
    seconds: float = 0.0


@dataclass
class ForgeSummary:
    """Every video's outcome; `failed` says whether the run should exit non-zero."""

    config_hash: str
    outcomes: list[VideoOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> bool:
        return self.count(FAILED) > 0


EventCallback = Callable[[str, dict], None]  # (kind, payload): start / progress / done / plan


def forge_directory(video_dir: str | Path, store_location: str | Path, config: ForgeConfig,
                    on_event: EventCallback | None = None) -> ForgeSummary:
    """Forge every video under `video_dir` into the store at `store_location`.

    Events (for progress display): ("plan", {"total": n}), ("start", {"source"}),
    ("progress", {"source", "stage", "fraction"}), ("done", {"outcome": VideoOutcome}).

    Raises:
        ForgeError: the directory is missing or holds no video.
        StoreError: the store cannot be created or opened.
    """
    from store.hashing import config_hash

    emit = on_event or (lambda kind, payload: None)
    sources = discover(Path(video_dir))
    if not sources:
        raise ForgeError(f"no video (.mp4 .avi .mov .mkv .webm) or frame folder under {video_dir}; check the path")
    store = _open_store(store_location, config.dry_run)
    summary = ForgeSummary(config_hash(config.hashed()))
    emit("plan", {"total": len(sources)})
    todo: list[tuple[VideoSource, str, str]] = []
    for source in sources:
        outcome, planned = _plan(source, store, config)
        if outcome is not None:
            summary.outcomes.append(outcome)
            emit("done", {"outcome": outcome})
        else:
            todo.append(planned)
    if config.workers > 1 and len(todo) > 1:
        outcomes = _run_pool(todo, store_location, config, emit)
    else:
        outcomes = [_run_one(item, store_location, config, emit) for item in todo]
    summary.outcomes.extend(outcomes)
    order = {str(s.path): i for i, s in enumerate(sources)}
    summary.outcomes.sort(key=lambda o: order.get(o.source, len(order)))
    return summary


def _open_store(location, dry_run: bool):
    from store.errors import NotAStoreError
    from store.trace_store import TraceStore

    if dry_run:
        try:
            return TraceStore.open(location, mode="r")
        except NotAStoreError:
            return None
    return TraceStore.create(location)


def source_config_hash(source: VideoSource, config: ForgeConfig) -> str:
    """Hash of the forge settings plus the sidecars' contents (intrinsics, depth and poses change
    the output, so editing a sidecar re-forges the video)."""
    from store.hashing import config_hash, sha256_of_path

    stem = stem_of(source.path)
    sidecars = {}
    for suffix in (".json", ".txt", ".depth.npz", ".depth"):
        path = stem.parent / f"{stem.name}{suffix}"
        if path.exists():
            sidecars[suffix] = sha256_of_path(path)
    return config_hash({**config.hashed(), "sidecars": sidecars})


def _plan(source: VideoSource, store, config: ForgeConfig):
    """(outcome, None) when the video needs no forging or cannot be planned, else (None, work item)."""
    from store.hashing import sha256_of_path

    started = time.perf_counter()
    try:
        key = sha256_of_path(source.path)
        cfg_hash = source_config_hash(source, config)
    except (StoreError, OSError) as exc:
        return VideoOutcome(str(source.path), FAILED, f"cannot hash it: {exc}"), None
    present = store is not None and store.has_forge(key, cfg_hash)
    if config.dry_run:
        status = WOULD_SKIP if present and not config.force else WOULD_FORGE
        reason = "already forged with these settings" if status == WOULD_SKIP else (
            "--force" if present else "not in the store")
        return VideoOutcome(str(source.path), status, reason, key), None
    if present and not config.force:
        seconds = time.perf_counter() - started
        return VideoOutcome(str(source.path), SKIPPED, "already forged with these settings", key, 0, seconds), None
    return None, (source, key, cfg_hash)


def _run_one(item, store_location, config: ForgeConfig, emit: EventCallback) -> VideoOutcome:
    source = item[0]
    emit("start", {"source": str(source.path)})
    outcome = forge_one(item, store_location, config,
                        lambda stage, fraction: emit("progress", {"source": str(source.path), "stage": stage,
                                                                  "fraction": fraction}))
    emit("done", {"outcome": outcome})
    return outcome


def forge_one(item, store_location, config: ForgeConfig, on_progress=None) -> VideoOutcome:
    """Forge and write one planned video; every error becomes a failed outcome (never raised)."""
    from forge.pipeline import forge_video
    from store.trace_store import TraceStore

    source, key, cfg_hash = item
    started = time.perf_counter()
    try:
        source = VideoSource(source.path, source.is_frame_folder, read_sidecar(source.path))
        forged = forge_video(source, config, on_progress)
        TraceStore.open(store_location, mode="a").write_video(
            key, forged.video_attrs, cfg_hash, forged.forge_attrs, forged.samples
        )
    except (ForgeError, StoreError) as exc:
        reason = str(exc).splitlines()[0].removeprefix(f"{source.path}: ")
        return VideoOutcome(str(source.path), FAILED, reason, key, 0, time.perf_counter() - started)
    except Exception as exc:  # a bug or a library failure on one video must not stop the others
        log.exception("unexpected error forging %s", source.path)
        reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        return VideoOutcome(str(source.path), FAILED, reason, key, 0, time.perf_counter() - started)
    motions = sorted({s.camera_motion for s in forged.segments})
    reason = (f"{len(forged.segments)} segment(s), {'/'.join(motions)} camera, "
              f"depth {forged.forge_attrs['depth_source']}")
    return VideoOutcome(str(source.path), FORGED, reason, key, forged.samples.num_samples,
                        time.perf_counter() - started)


def _worker(item, store_location, config: ForgeConfig, events) -> VideoOutcome:
    import cv2

    cv2.setNumThreads(1)
    source = str(item[0].path)
    events.put(("start", {"source": source}))
    return forge_one(item, store_location, config,
                     lambda stage, fraction: events.put(("progress", {"source": source, "stage": stage,
                                                                      "fraction": fraction})))


def _run_pool(todo, store_location, config: ForgeConfig, emit: EventCallback) -> list[VideoOutcome]:
    context = multiprocessing.get_context("spawn")
    outcomes = []
    with context.Manager() as manager:
        events = manager.Queue()
        with ProcessPoolExecutor(max_workers=min(config.workers, len(todo)), mp_context=context) as pool:
            futures = {pool.submit(_worker, item, str(store_location), config, events): item for item in todo}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(events, emit)
                for future in done:
                    outcome = _result(future, futures[future])
                    outcomes.append(outcome)
                    emit("done", {"outcome": outcome})
        _drain(events, emit)
    return outcomes


def _result(future, item) -> VideoOutcome:
    try:
        return future.result()
    except Exception as exc:  # a worker that died (killed, out of memory) fails only its video
        return VideoOutcome(str(item[0].path), FAILED, f"worker died: {type(exc).__name__}: {exc}", item[1])


def _drain(events, emit: EventCallback) -> None:
    while True:
        try:
            kind, payload = events.get_nowait()
        except queue_module.Empty:
            return
        emit(kind, payload)
