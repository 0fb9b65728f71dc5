"""A PyTorch Dataset over every sample of a trace store (the loader the model trains from).

Decoded per-video arrays are cached in a small LRU (bounded in bytes) so random access does not
hit zarr per item; the dataset pickles without its store or cache, so each DataLoader worker opens
the store lazily and keeps its own cache.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from store.errors import SchemaError
from store.trace import MODEL_STEPS, TRACE_LENGTH
from store.trace_store import TraceStore

DATASET_ARRAYS = ["image", "depth", "traces", "valid", "visible", "intrinsics"]


@dataclass
class _VideoBlock:
    """One video's decoded arrays, trimmed to the dataset's steps."""

    image: np.ndarray  # (S, H, W, 3) uint8
    depth: np.ndarray  # (S, H, W) float32; all NaN when the video has no depth
    has_depth: bool
    traj: np.ndarray  # (S, K, steps+1, 3) float32
    valid: np.ndarray  # (S, steps+1) bool
    visible: np.ndarray  # (S, K, steps+1) bool
    intrinsics: np.ndarray  # (S, 3, 3) float32

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.image, self.depth, self.traj, self.valid, self.visible, self.intrinsics))


class TraceDataset(torch.utils.data.Dataset):
    """Every sample of the chosen videos, as tensors with their masks.

    Item i is a dict: "image" uint8 (H, W, 3); "depth" float32 (H, W), all NaN without depth;
    "has_depth" bool; "traj" float32 (K, steps+1, 3) `(u, v, z)`; "valid" bool (steps+1,);
    "visible" bool (K, steps+1); "intrinsics" float32 (3, 3); "instructions" list[str];
    "video_key" str; "sample_index" int.

    Args:
        store: a `TraceStore` or its location.
        keys: video keys or unique prefixes (default: every video).
        steps: trace steps after the start (the model uses 32).
        config_hash: forge configuration to read (default: each video's most recent).
        cache_bytes: bound on decoded arrays kept in memory per process.
    """

    def __init__(
        self,
        store: TraceStore | str | Path,
        keys: list[str] | None = None,
        steps: int = MODEL_STEPS,
        config_hash: str | None = None,
        cache_bytes: int = 2 << 30,
    ) -> None:
        if not 1 <= steps < TRACE_LENGTH:
            raise SchemaError(f"steps={steps} is out of range; pass 1..{TRACE_LENGTH - 1}")
        self._store = store if isinstance(store, TraceStore) else TraceStore.open(store, mode="r")
        self.location = self._store.location
        self.steps = steps
        self.cache_bytes = int(cache_bytes)
        infos = {info.key: info for info in self._store.videos()}
        chosen = sorted(infos) if keys is None else [self._store.resolve(key, among=list(infos)) for key in keys]
        self.entries: list[tuple[str, str, int]] = []  # (video key, config hash, samples)
        self.instructions: dict[str, list[str]] = {}
        for key in chosen:
            cfg = self._store.pick_config(key, config_hash)
            self.entries.append((key, cfg, int(infos[key].forge[cfg].get("num_samples", 0))))
            self.instructions[key] = [str(text) for text in infos[key].attrs.get("instructions", [])]
        self.offsets = np.concatenate([[0], np.cumsum([count for _, _, count in self.entries])]).astype(np.int64)
        self._cache: OrderedDict[int, _VideoBlock] = OrderedDict()
        self._opened_in = os.getpid()

    @property
    def keys(self) -> list[str]:
        return [key for key, _, _ in self.entries]

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_store"], state["_cache"] = None, OrderedDict()
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def locate(self, index: int) -> tuple[int, int]:
        """(video position in `entries`, sample index inside that video) of dataset item `index`."""
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} is out of range for a dataset of {len(self)} samples")
        video = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return video, index - int(self.offsets[video])

    def _block(self, video: int) -> _VideoBlock:
        block = self._cache.get(video)
        if block is not None:
            self._cache.move_to_end(video)
            return block
        if self._store is None or self._opened_in != os.getpid():  # a forked worker opens its own store
            self._store = TraceStore.open(self.location, mode="r")
            self._opened_in = os.getpid()
        key, cfg, count = self.entries[video]
        arrays = self._store.read_group(key, cfg, DATASET_ARRAYS, steps=self.steps)
        image = arrays["image"]
        depth = arrays["depth"]
        if arrays["traces"].shape[0] != count:
            raise SchemaError(f"video {key[:12]} holds {arrays['traces'].shape[0]} samples, its attrs say {count}; run verify")
        block = _VideoBlock(
            image=np.ascontiguousarray(image),
            depth=depth if depth is not None else np.full(image.shape[:3], np.nan, dtype=np.float32),
            has_depth=depth is not None,
            traj=np.ascontiguousarray(arrays["traces"]),
            valid=arrays["valid"],
            visible=np.ascontiguousarray(arrays["visible"]),
            intrinsics=arrays["intrinsics"],
        )
        self._cache[video] = block
        used = sum(b.nbytes for b in self._cache.values())
        while used > self.cache_bytes and len(self._cache) > 1:
            _, dropped = self._cache.popitem(last=False)
            used -= dropped.nbytes
        return block

    def __getitem__(self, index: int) -> dict:
        video, sample = self.locate(int(index))
        block = self._block(video)
        key = self.entries[video][0]
        return {
            "image": torch.from_numpy(block.image[sample]),  # (H, W, 3) uint8
            "depth": torch.from_numpy(block.depth[sample]),  # (H, W) float32
            "has_depth": block.has_depth,
            "traj": torch.from_numpy(block.traj[sample]),  # (K, steps+1, 3)
            "valid": torch.from_numpy(block.valid[sample]),  # (steps+1,)
            "visible": torch.from_numpy(block.visible[sample]),  # (K, steps+1)
            "intrinsics": torch.from_numpy(block.intrinsics[sample]),  # (3, 3)
            "instructions": list(self.instructions[key]),
            "video_key": key,
            "sample_index": sample,
        }


TENSOR_FIELDS = ("image", "depth", "traj", "valid", "visible", "intrinsics")


def collate_samples(items: list[dict]) -> dict:
    """Batch dataset items: tensors stacked on a new axis 0, flags/indices as tensors, the rest as lists.

    Raises:
        SchemaError: images (or depth maps) differ in size; resize before batching or batch per size.
    """
    if not items:
        raise SchemaError("cannot collate an empty batch; pass at least one item")
    sizes = sorted({tuple(item["image"].shape) for item in items})
    if len(sizes) > 1:
        raise SchemaError(f"batch mixes image sizes {sizes}; resize images to one size before collating")
    batch = {name: torch.stack([item[name] for item in items]) for name in TENSOR_FIELDS}  # (B, ...)
    batch["has_depth"] = torch.tensor([bool(item["has_depth"]) for item in items])  # (B,)
    batch["sample_index"] = torch.tensor([int(item["sample_index"]) for item in items])  # (B,)
    batch["instructions"] = [item["instructions"] for item in items]
    batch["video_key"] = [item["video_key"] for item in items]
    return batch


def split_keys(keys: list[str], val_fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """Split videos (not samples) into train and validation, deterministically by key hash.

    Keys are ranked by SHA-256 of `"{seed}:{key}"`; the first `round(n * val_fraction)` (at least
    one when `val_fraction > 0` and there are two or more keys) go to validation. The result does
    not depend on the order of `keys`.

    Returns:
        (train keys, validation keys), each sorted.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise SchemaError(f"val_fraction={val_fraction} is out of range; pass a value in [0, 1)")
    unique = sorted(set(keys))
    ranked = sorted(unique, key=lambda key: hashlib.sha256(f"{seed}:{key}".encode()).hexdigest())
    count = round(len(unique) * val_fraction)
    if val_fraction > 0 and len(unique) >= 2:
        count = min(max(count, 1), len(unique) - 1)
    return sorted(ranked[count:]), sorted(ranked[:count])


class VideoBlockSampler(torch.utils.data.Sampler[int]):
    """Random order that keeps reads local: shuffled blocks of videos, samples shuffled within a block.

    Fully random access over a store larger than the dataset's cache decodes a whole video per
    item; with this sampler each video is decoded once per epoch as long as `block_videos` videos
    fit in the cache. Set `epoch` (or call `set_epoch`) for a new order each epoch.

    Args:
        dataset: the `TraceDataset` to sample.
        block_videos: videos mixed together in one block.
        seed: base seed; the order depends on (seed, epoch) only.
    """

    def __init__(self, dataset: TraceDataset, block_videos: int = 64, seed: int = 0) -> None:
        if block_videos < 1:
            raise SchemaError(f"block_videos={block_videos} must be at least 1")
        self.offsets = dataset.offsets
        self.block_videos = block_videos
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        videos = rng.permutation(len(self.offsets) - 1)
        for start in range(0, len(videos), self.block_videos):
            block = videos[start : start + self.block_videos]
            indices = np.concatenate([np.arange(self.offsets[v], self.offsets[v + 1]) for v in block])
            yield from rng.permutation(indices).tolist()
