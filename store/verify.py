"""`verify`: check every group of a store against the schema and read every chunk.

Finds: groups whose arrays break the schema, missing or undecodable chunks, videos without a
published forge group, unpublished (half-written) groups and leftover staging folders from
interrupted writes. Stale staging folders can be removed with `cleanup=True`.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from store.errors import SchemaError
from store.samples import check_axes
from store.trace_store import FORGE, KEY_PATTERN, VIDEOS, TraceStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    """One finding: `kind` is schema | missing-chunk | corrupt-chunk | unpublished | orphan | staging | stray."""

    kind: str
    path: str
    message: str


@dataclass
class VerifyReport:
    """What `verify` checked and found.

    Attributes:
        videos: published videos checked.
        groups: published forge groups checked.
        chunks: chunks read and decoded.
        problems: every finding, in store order.
        removed: staging folders removed by `cleanup=True`.
    """

    videos: int = 0
    groups: int = 0
    chunks: int = 0
    problems: list[Problem] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, kind: str, path: str, message: str) -> None:
        log.warning("%s: %s", path, message)
        self.problems.append(Problem(kind, path, message))

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "videos": self.videos,
            "groups": self.groups,
            "chunks": self.chunks,
            "problems": [problem.__dict__ for problem in self.problems],
            "removed": self.removed,
        }


def verify(store: TraceStore, cleanup: bool = False, stale_after_s: float = 3600.0) -> VerifyReport:
    """Check every video group and forge group of `store`; read every chunk.

    Args:
        store: the store (opened "a" when `cleanup`).
        cleanup: remove staging folders older than `stale_after_s` (interrupted writes).
        stale_after_s: younger staging folders may belong to a live writer and are only reported.
    Returns:
        A `VerifyReport`; `report.ok` is true when nothing was found.
    """
    report = VerifyReport()
    backend = store.backend
    for name in backend.list_dir(VIDEOS):
        path = f"{VIDEOS}/{name}"
        if name == "zarr.json":
            continue
        if not KEY_PATTERN.fullmatch(name):
            report.add("stray", path, "not a video key folder; remove it")
            continue
        _verify_video(store, name, report)
    if cleanup:
        report.removed = store.cleanup_staging(older_than_s=stale_after_s)
    for path, mtime in store.staging_entries():
        age = "" if mtime is None else f" ({time.time() - mtime:.0f} s old)"
        report.add("staging", path, f"leftover of an interrupted write{age}; remove with verify --cleanup")
    return report


def _verify_video(store: TraceStore, key: str, report: VerifyReport) -> None:
    backend = store.backend
    path = f"{VIDEOS}/{key}"
    if backend.node_attrs(path) is None:
        report.add("schema", path, "video group has no zarr.json; re-forge the video")
    published = 0
    for cfg in backend.list_dir(f"{path}/{FORGE}"):
        group = f"{path}/{FORGE}/{cfg}"
        if cfg == "zarr.json":
            continue
        if store.forge_attrs(key, cfg) is None:
            report.add("unpublished", group, "forge group was never published (interrupted write); re-forge the video")
            continue
        published += 1
        report.groups += 1
        _verify_group(store, group, report)
    if published:
        report.videos += 1
    else:
        report.add("orphan", path, "video has no published forge group; re-forge it or remove the folder")


def _verify_group(store: TraceStore, group: str, report: VerifyReport) -> None:
    backend = store.backend
    arrays = {}
    for name in backend.list_dir(group):
        meta = backend.read_json(f"{group}/{name}/zarr.json")
        if meta is not None and meta.get("node_type") == "array":
            arrays[name] = meta
    try:
        bound = check_axes({name: (tuple(m["shape"]), m["data_type"]) for name, m in arrays.items()}, group)
    except (SchemaError, TypeError, KeyError) as exc:
        report.add("schema", group, str(exc))
        return
    attrs = backend.node_attrs(group) or {}
    if attrs.get("num_samples") != bound["S"]:
        report.add("schema", group, f"attrs say {attrs.get('num_samples')} samples, arrays hold {bound['S']}")
    for name, meta in arrays.items():
        _verify_chunks(store, f"{group}/{name}", meta, report)


def _verify_chunks(store: TraceStore, array_path: str, meta: dict, report: VerifyReport) -> None:
    import zarr

    from store.codecs import CODEC_NAME  # noqa: F401  importing registers the tracegen.image codec

    shape = meta["shape"]
    chunks = meta["chunk_grid"]["configuration"]["chunk_shape"]
    separator = meta.get("chunk_key_encoding", {}).get("configuration", {}).get("separator", "/")
    present = {path[len(array_path) + 1 :] for path, _ in store.backend.files_under(array_path)}
    grid = [range(-(-size // chunk)) for size, chunk in zip(shape, chunks, strict=True)]
    try:
        array = zarr.open_array(store=store.zarr_store, path=array_path, mode="r")
    except Exception as exc:  # unreadable metadata: unknown codec, bad fields
        report.add("schema", array_path, f"array metadata cannot be opened ({type(exc).__name__}: {exc}); re-forge the video")
        return
    for index in itertools.product(*grid):
        key = separator.join(["c", *map(str, index)])
        if key not in present:
            report.add("missing-chunk", f"{array_path}/{key}", "chunk file is missing; re-forge the video")
            continue
        selection = tuple(slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(index, chunks, shape, strict=True))
        try:
            np.asarray(array[selection])
        except Exception as exc:  # any decode failure of damaged bytes
            report.add("corrupt-chunk", f"{array_path}/{key}", f"chunk cannot be decoded ({type(exc).__name__}); re-forge the video")
            continue
        report.chunks += 1
