"""The content-addressed Zarr v3 trace store (DESIGN.md section 4).

Layout::

    <store>/zarr.json                          root attrs: schema_version, created, format, image_codec
    <store>/videos/<sha256>/                   one group per source video (attrs: sources, fps, ...)
        forge/<config-hash>/                   one group per forge configuration: the arrays of
                                               `store.samples.ARRAY_SPECS` + forge attrs
    <store>/_staging/                          writes in progress (local stores); never read

Publishing: on a local folder a forge group is written complete under `_staging/` and moved into
place with `os.rename` (atomic), so readers never see half a group and a killed writer leaves only a
staging folder (`verify` reports it, `cleanup_staging` removes it). On fsspec URLs the group's own
`zarr.json` gains `"published": true` as the last write (a commit marker); readers only list groups
with that marker. Nothing is shared between video groups (no index), so writers of different videos
never race; the listing is derived by scanning.
"""

from __future__ import annotations

import datetime
import errno
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from store.backend import StoreBackend
from store.errors import (
    KeyLookupError,
    NotAStoreError,
    SchemaError,
    StoreError,
    StoreWriteError,
)
from store.layout import CONFIG_PATTERN, FORGE, KEY_PATTERN, STAGING, STORE_FORMAT, VIDEOS
from store.reader import read_group
from store.samples import ARRAY_SPECS, SCHEMA_VERSION, VideoSamples
from store.writer import publish_local, publish_remote

log = logging.getLogger(__name__)



def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class VideoInfo:
    """One published video.

    Attributes:
        key: SHA-256 hex of the source bytes.
        attrs: the video group's attributes (sources, fps, frame_count, size, embodiment, ...).
        forge: {config hash: forge attrs} of every published forge configuration.
        num_samples: samples of the default (most recently written) configuration.
    """

    key: str
    attrs: dict[str, Any]
    forge: dict[str, dict[str, Any]]
    num_samples: int

    @property
    def forge_configs(self) -> dict[str, dict[str, Any]]:
        """Alias of `forge`: {config hash: forge attrs}."""
        return self.forge

    @property
    def default_config(self) -> str:
        """The most recently published configuration (the one `read_samples` uses by default)."""
        return latest_config(self.forge)


def latest_config(forge: dict[str, dict[str, Any]]) -> str:
    return max(forge, key=lambda cfg: (str(forge[cfg].get("created", "")), cfg))


def _json_attrs(attrs: dict, what: str) -> dict:
    try:
        return json.loads(json.dumps(attrs, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"{what} are not plain JSON ({exc}); pass str/int/float/bool/list/dict values only") from exc


class TraceStore:
    """A trace store at a local folder or fsspec URL. Build with `create` or `open`."""

    def __init__(self, backend: StoreBackend, mode: str) -> None:
        self.backend = backend
        self.mode = mode
        self._zarr_store = None

    # ------------------------------------------------------------------ opening
    @property
    def location(self) -> str:
        return self.backend.location

    @classmethod
    def create(cls, location: str | Path, image_codec: str = "blosc") -> TraceStore:
        """Create a new store at `location`, or open the store already there for appending.

        Args:
            location: folder or fsspec URL.
            image_codec: codec of the `image` arrays of a new store (see `store.codecs.IMAGE_CODECS`):
                "blosc" (default, lossless and exact), "png", "webp-lossless", "webp-95", "jpeg-95".
                An existing store keeps the codec it was created with.
        """
        from store.codecs import check_image_codec

        check_image_codec(image_codec)
        backend = StoreBackend(location)
        if backend.node_attrs("") is not None:
            return cls.open(location, mode="a")
        if backend.local_root is not None and backend.local_root.is_dir() and any(backend.local_root.iterdir()):
            raise NotAStoreError(
                f"{location} is a non-empty folder that is not a trace store; pick a new or empty folder"
            )
        import zarr

        attrs = {"schema_version": SCHEMA_VERSION, "created": utc_now(), "format": STORE_FORMAT, "image_codec": image_codec}
        try:
            if backend.local_root is not None:
                backend.local_root.mkdir(parents=True, exist_ok=True)
            root = zarr.open_group(store=backend.zarr_store(read_only=False), mode="w", attributes=attrs)
            root.create_group(VIDEOS)
        except OSError as exc:
            raise StoreWriteError(
                f"cannot create a store at {location} ({exc.strerror or exc}); pick a writable location"
            ) from exc
        log.info("created trace store %s", location)
        return cls(backend, "a")

    @classmethod
    def open(cls, location: str | Path, mode: str = "r") -> TraceStore:
        """Open an existing store; mode "r" reads, "a" also writes.

        Raises:
            NotAStoreError: no store at `location`.
            SchemaError: the store was written by a newer schema version.
        """
        if mode not in ("r", "a"):
            raise StoreError(f"store mode {mode!r} is not 'r' or 'a'; pass mode='r' to read or 'a' to append")
        backend = StoreBackend(location)
        attrs = backend.node_attrs("")
        if attrs is None or "schema_version" not in attrs:
            raise NotAStoreError(
                f"{location} is not a trace store (no zarr.json with schema_version); "
                "create one with TraceStore.create or `tracegen forge`"
            )
        version = attrs["schema_version"]
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise SchemaError(
                f"store {location} has schema_version {version}, newer than this tracegen's {SCHEMA_VERSION}; "
                "upgrade tracegen to read it"
            )
        return cls(backend, mode)

    def root_attrs(self) -> dict[str, Any]:
        return self.backend.node_attrs("") or {}

    @property
    def zarr_store(self):
        if self._zarr_store is None:
            self._zarr_store = self.backend.zarr_store(read_only=self.mode == "r")
        return self._zarr_store

    def __getstate__(self) -> dict:  # zarr stores hold event-loop state; reopen lazily after pickling
        return {"backend_location": self.location, "mode": self.mode}

    def __setstate__(self, state: dict) -> None:
        self.__init__(StoreBackend(state["backend_location"]), state["mode"])

    def __repr__(self) -> str:
        return f"TraceStore({self.location!r}, mode={self.mode!r})"

    # ------------------------------------------------------------------ listing
    def forge_attrs(self, video_key: str, config_hash: str) -> dict[str, Any] | None:
        """Attributes of a published forge group, or None when it is absent or unpublished."""
        attrs = self.backend.node_attrs(f"{VIDEOS}/{video_key}/{FORGE}/{config_hash}")
        return attrs if attrs is not None and attrs.get("published") is True else None

    def has_forge(self, video_key: str, config_hash: str) -> bool:
        """True when `video_key` already has a published group for `config_hash` (no work to redo)."""
        return self.forge_attrs(video_key, config_hash) is not None

    def forge_configs(self, video_key: str) -> dict[str, dict[str, Any]]:
        """{config hash: forge attrs} of every published forge group of one video."""
        configs = {}
        for name in self.backend.list_dir(f"{VIDEOS}/{video_key}/{FORGE}"):
            attrs = self.forge_attrs(video_key, name)
            if attrs is not None:
                configs[name] = attrs
        return configs

    def keys(self) -> list[str]:
        """Keys of every video with at least one published forge group, sorted."""
        return [key for key in self._candidate_keys() if self.forge_configs(key)]

    def _candidate_keys(self, prefix: str = "") -> list[str]:
        return [
            name for name in self.backend.list_dir(VIDEOS) if name.startswith(prefix) and KEY_PATTERN.fullmatch(name)
        ]

    def video_attrs(self, key: str) -> dict[str, Any]:
        """The attributes of a video group (sources, fps, frame_count, size, embodiment, instructions...)."""
        key = self.resolve(key)
        return self.backend.node_attrs(f"{VIDEOS}/{key}") or {}

    def videos(self) -> list[VideoInfo]:
        """Every published video with its attrs and forge configurations, sorted by key."""
        infos = []
        for key in self._candidate_keys():
            forge = self.forge_configs(key)
            if forge:
                attrs = self.backend.node_attrs(f"{VIDEOS}/{key}") or {}
                samples = int(forge[latest_config(forge)].get("num_samples", 0))
                infos.append(VideoInfo(key=key, attrs=attrs, forge=forge, num_samples=samples))
        return infos

    def resolve(self, prefix: str, among: list[str] | None = None) -> str:
        """The unique published video key starting with `prefix` (like a git hash prefix).

        Args:
            prefix: hex prefix (any case).
            among: published keys already listed (skips rescanning the store when resolving many).
        Raises:
            KeyLookupError: the prefix is not hex, matches no video, or matches several.
        """
        text = str(prefix).strip().lower()
        if not re.fullmatch(r"[0-9a-f]{1,64}", text):
            raise KeyLookupError(f"'{prefix}' is not a video key prefix; keys are hex, list them with `tracegen inspect STORE`")
        if among is None:
            matches = [key for key in self._candidate_keys(text) if self.forge_configs(key)]
        else:
            matches = sorted(key for key in among if key.startswith(text))
        if not matches:
            raise KeyLookupError(f"no video in {self.location} matches key prefix '{prefix}'; list keys with `tracegen inspect {self.location}`")
        if len(matches) > 1:
            shown = ", ".join(key[:12] for key in matches[:4]) + (", ..." if len(matches) > 4 else "")
            raise KeyLookupError(f"key prefix '{prefix}' is ambiguous: it matches {len(matches)} videos ({shown}); type more characters")
        return matches[0]

    def pick_config(self, key: str, config_hash: str | None) -> str:
        """`config_hash` if published for `key`, else (when None) the most recent configuration."""
        forge = self.forge_configs(key)
        if config_hash is None:
            if not forge:
                raise KeyLookupError(f"video {key[:12]} has no published forge group; re-run `tracegen forge`")
            return latest_config(forge)
        if config_hash not in forge:
            known = ", ".join(sorted(forge)) or "none"
            raise KeyLookupError(f"video {key[:12]} has no forge config '{config_hash}'; it has: {known}")
        return config_hash

    # ------------------------------------------------------------------ reading
    def read_arrays(
        self, key_or_prefix: str, config_hash: str | None = None, names: list[str] | None = None, steps: int | None = None
    ) -> dict[str, np.ndarray | None]:
        """Selected arrays of one forge group (absent optional arrays come back as None).

        Args:
            key_or_prefix: a video key or unique prefix.
            config_hash: forge configuration; None for the most recent.
            names: array names (default: all of the schema).
            steps: when given, trace-step arrays keep only the first `steps + 1` steps.
        """
        key = self.resolve(key_or_prefix)
        return self.read_group(key, self.pick_config(key, config_hash), names, steps)

    def read_group(
        self, key: str, config_hash: str, names: list[str] | None = None, steps: int | None = None
    ) -> dict[str, np.ndarray | None]:
        """`read_arrays` for an exact key and configuration (no prefix lookup; the dataset's fast path)."""
        wanted = names or [spec.name for spec in ARRAY_SPECS]
        return read_group(self, f"{VIDEOS}/{key}/{FORGE}/{config_hash}", wanted, steps, key)

    def read_samples(self, key_or_prefix: str, config_hash: str | None = None) -> VideoSamples:
        """All arrays of one video's forge group as validated `VideoSamples`."""
        arrays = self.read_arrays(key_or_prefix, config_hash)
        return VideoSamples(**arrays)

    # ------------------------------------------------------------------ writing
    def write_video(
        self, video_key: str, video_attrs: dict, config_hash: str, forge_attrs: dict, samples: VideoSamples
    ) -> str:
        """Write one video's samples for one forge configuration, atomically.

        The group becomes visible only when complete; an exception (or a kill) before that leaves
        nothing visible and a retry succeeds. Rewriting an existing (key, config) replaces it.

        Args:
            video_key: SHA-256 hex of the source (see `store.hashing.sha256_of_path`).
            video_attrs: sources, fps, frame_count, size [H, W], embodiment, instructions, dataset...
            config_hash: `store.hashing.config_hash` of the forge settings.
            forge_attrs: forge config, depth_source, camera_motion, timings, versions...
            samples: the arrays.
        Returns:
            The published group's path inside the store.
        """
        if self.mode != "a":
            raise StoreWriteError(f"store {self.location} is open read-only; open it with mode='a' to write")
        if not KEY_PATTERN.fullmatch(str(video_key)):
            raise SchemaError(f"video key {video_key!r} is not 8-64 lowercase hex; use store.hashing.sha256_of_path")
        if not CONFIG_PATTERN.fullmatch(str(config_hash)):
            raise SchemaError(f"config hash {config_hash!r} is not lowercase hex; use store.hashing.config_hash")
        samples.validate(f"video {video_key[:12]}")
        video = _json_attrs(video_attrs, "video attrs")
        forge = _json_attrs(forge_attrs, "forge attrs")
        forge.update(
            published=True,
            config_hash=config_hash,
            created=utc_now(),
            num_samples=samples.num_samples,
            image_size=list(samples.image_size),
            has_depth=samples.depth is not None,
            nbytes=samples.nbytes(),
            schema_version=SCHEMA_VERSION,
        )
        try:
            codec = str(self.root_attrs().get("image_codec", "blosc"))
            if self.backend.is_local:
                publish_local(self, video_key, video, config_hash, forge, samples, codec)
            else:
                publish_remote(self, video_key, video, config_hash, forge, samples, codec)
        except OSError as exc:
            if isinstance(exc, StoreError):
                raise
            reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
            raise StoreWriteError(
                f"cannot write video {video_key[:12]} to store {self.location}: {reason}; free space or pick a writable store"
            ) from exc
        log.info("wrote video %s config %s (%d samples)", video_key[:12], config_hash, samples.num_samples)
        return f"{VIDEOS}/{video_key}/{FORGE}/{config_hash}"

    # ------------------------------------------------------------------ maintenance
    def remove_video(self, key: str) -> None:
        """Remove one video (every forge configuration of it) from the store.

        A local store first renames the group out of `videos/` (atomic, so readers see the video whole or
        not at all) and then deletes it; a remote one deletes each forge group's metadata first, so an
        interrupted removal leaves no published group behind.
        """
        import uuid

        if self.mode != "a":
            raise StoreWriteError(f"store {self.location} is open read-only; open it with mode='a' to remove videos")
        if not KEY_PATTERN.fullmatch(str(key)) or key not in self._candidate_keys():
            raise SchemaError(f"video {key!r} is not in store {self.location}; pass a full key from `tracegen inspect`")
        if self.backend.is_local:
            root = Path(self.backend.local_root)
            doomed = root / STAGING / f"removed-{key[:16]}-{uuid.uuid4().hex[:12]}"
            doomed.parent.mkdir(parents=True, exist_ok=True)
            os.rename(root / VIDEOS / key, doomed)
            self.backend.remove_tree(f"{STAGING}/{doomed.name}")
            return
        for config in self.backend.list_dir(f"{VIDEOS}/{key}/{FORGE}"):
            self.backend.remove_tree(f"{VIDEOS}/{key}/{FORGE}/{config}/zarr.json")
        self.backend.remove_tree(f"{VIDEOS}/{key}")

    def staging_entries(self) -> list[tuple[str, float | None]]:
        """Leftover staging folders (interrupted writes) as (path, modification time)."""
        return [(f"{STAGING}/{name}", self.backend.mtime(f"{STAGING}/{name}")) for name in self.backend.list_dir(STAGING)]

    def cleanup_staging(self, older_than_s: float = 3600.0) -> list[str]:
        """Remove staging folders older than `older_than_s` (younger ones may be live writes)."""
        import time

        if self.mode != "a":
            raise StoreWriteError(f"store {self.location} is open read-only; open it with mode='a' to clean up")
        removed = []
        for path, mtime in self.staging_entries():
            if mtime is None or time.time() - mtime >= older_than_s:
                self.backend.remove_tree(path)
                removed.append(path)
        return removed
