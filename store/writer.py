"""Writing one forge group: chunking along the sample axis, codecs, and publishing.

Local stores stage the whole group under `_staging/` and publish with `os.rename`; remote (fsspec)
stores write in place and publish by writing the group's `"published": true` attribute last.

Chunks hold whole samples (about `TARGET_CHUNK_BYTES` uncompressed) so a reader decodes whole
samples with few requests. Every chunk is written even when it equals the fill value, so a missing
chunk file always means damage (see `store.verify`).
"""

from __future__ import annotations

import errno
import logging
import os
import uuid
from pathlib import Path

import numpy as np

from store.layout import FORGE, STAGING, VIDEOS
from store.samples import VideoSamples
from store.trace import MODEL_STEPS

log = logging.getLogger(__name__)

TARGET_CHUNK_BYTES = 4 << 20  # uncompressed bytes per chunk


STEP_CHUNK = MODEL_STEPS + 1  # trace arrays split their 129 steps so a training read decodes 33 of them
STEP_CHUNKED = {"traces": 2, "visible": 2}  # array name -> axis of the trace steps


def chunk_shape(
    shape: tuple[int, ...], itemsize: int, target_bytes: int | None = None, step_axis: int | None = None
) -> tuple[int, ...]:
    """Chunks along axis 0 of about `target_bytes` each (at least one sample).

    With `step_axis`, that axis is split into blocks of `STEP_CHUNK` steps (the model reads the
    start plus 32 steps, so it decodes only the first block).
    """
    target_bytes = TARGET_CHUNK_BYTES if target_bytes is None else target_bytes
    inner = list(shape[1:])
    if step_axis is not None:
        inner[step_axis - 1] = min(inner[step_axis - 1], STEP_CHUNK)
    per_sample = int(np.prod(inner, dtype=np.int64)) * itemsize
    along = max(1, min(shape[0], target_bytes // max(per_sample, 1)))
    return (along, *inner)


def codecs_for(name: str, dtype: np.dtype, image_codec: str = "blosc") -> dict:
    """`create_array` codec arguments: the store's image codec for `image`, Blosc/zstd otherwise."""
    from store.codecs import IMAGE_CODECS, ImageCodec, check_image_codec

    choice = IMAGE_CODECS[check_image_codec(image_codec)]
    if name == "image" and choice is not None:
        return {"serializer": ImageCodec(format=choice[0], quality=choice[1]), "compressors": None}
    return {"compressors": compressors_for(name, dtype)}


def compressors_for(name: str, dtype: np.dtype) -> list:
    """Blosc/zstd for every array; byte shuffle for float32 coordinates, bit shuffle for masks."""
    from zarr.codecs import BloscCodec

    if dtype == np.bool_:
        return [BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle")]
    if dtype == np.uint8:
        return [BloscCodec(cname="zstd", clevel=5, shuffle="noshuffle")]  # photos: shuffles within 5%, see store_bench
    return [BloscCodec(cname="zstd", clevel=5, shuffle="shuffle")]


def _fill_value(dtype: np.dtype):
    if dtype.kind == "f":
        return np.nan
    return False if dtype == np.bool_ else 0


def write_forge_group(
    zarr_store, group_path: str, forge_attrs: dict, samples: VideoSamples, image_codec: str = "blosc"
) -> None:
    """Write every array of `samples` under `group_path`, then the attrs carrying `published` last.

    Args:
        zarr_store: a zarr store (a staging LocalStore, or the remote store itself).
        group_path: the forge group's path inside `zarr_store`.
        forge_attrs: attributes including `"published": True`; written after all arrays.
        samples: the validated arrays.
        image_codec: the store's image codec name (`store.codecs.IMAGE_CODECS`).
    """
    import zarr

    group = zarr.open_group(store=zarr_store, path=group_path, mode="w")
    for name, data in samples.arrays().items():
        array = group.create_array(
            name,
            shape=data.shape,
            chunks=chunk_shape(data.shape, data.dtype.itemsize, step_axis=STEP_CHUNKED.get(name)),
            dtype=data.dtype,
            **codecs_for(name, data.dtype, image_codec),
            fill_value=_fill_value(data.dtype),
            config={"write_empty_chunks": True},
        )
        array[...] = data
    group.attrs.update(forge_attrs)  # the commit marker: readers list only groups with published=true


def publish_local(store, key: str, video: dict, cfg: str, forge: dict, samples: VideoSamples, codec: str = "blosc") -> None:
    """Stage video + forge group under `_staging/`, then rename into place (atomic on one filesystem)."""
    import zarr
    from zarr.storage import LocalStore

    root = store.backend.local_root
    staging = root / STAGING / f"{key[:16]}-{cfg}-{uuid.uuid4().hex[:12]}"
    try:
        staging.parent.mkdir(exist_ok=True)
        staged = LocalStore(staging)
        zarr.open_group(store=staged, mode="w", attributes=video)
        zarr.open_group(store=staged, path=FORGE, mode="w")
        write_forge_group(staged, f"{FORGE}/{cfg}", forge, samples, codec)
        target = root / VIDEOS / key
        try:
            os.rename(staging, target)  # a new video: publish the whole group at once
            return
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
        _publish_into_existing(store, staging, target, video, cfg)
    finally:
        if staging.exists():
            store.backend.remove_tree(staging.relative_to(root).as_posix())


def _publish_into_existing(store, staging: Path, target: Path, video: dict, cfg: str) -> None:
    """The video exists: move only the forge group (replacing an older copy), then merge video attrs."""
    import zarr

    dest = target / FORGE / cfg
    if dest.exists():
        trash = staging.parent / f"replaced-{uuid.uuid4().hex[:12]}"
        os.rename(dest, trash)
        try:
            os.rename(staging / FORGE / cfg, dest)
        finally:
            store.backend.remove_tree(trash.relative_to(store.backend.local_root).as_posix())
    else:
        try:
            os.rename(staging / FORGE / cfg, dest)
        except OSError as exc:  # another writer published the same (key, config) just now
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            log.info("video %s config %s was published concurrently; keeping that copy", target.name[:12], cfg)
    group = zarr.open_group(store=store.zarr_store, path=f"{VIDEOS}/{target.name}", mode="r+")
    group.attrs.update(video)


def publish_remote(store, key: str, video: dict, cfg: str, forge: dict, samples: VideoSamples, codec: str = "blosc") -> None:
    """Write in place; `write_forge_group` writes the published marker last; failures remove the group."""
    import zarr

    path = f"{VIDEOS}/{key}/{FORGE}/{cfg}"
    try:
        group = zarr.open_group(store=store.zarr_store, path=f"{VIDEOS}/{key}", mode="a")
        group.attrs.update(video)
        zarr.open_group(store=store.zarr_store, path=f"{VIDEOS}/{key}/{FORGE}", mode="a")
        write_forge_group(store.zarr_store, path, forge, samples, codec)
    except BaseException:
        if store.forge_attrs(key, cfg) is None:
            store.backend.remove_tree(path)
        raise
