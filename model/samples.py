"""From dataset items (the store's `TraceDataset` layout) to model batches.

An item: image uint8 (H, W, 3), depth float32 (H, W) (all NaN when none), has_depth bool,
traj float32 (K, steps+1, 3) in pixels of the image + metres (NaN-padded), valid bool (steps+1,),
visible bool (K, steps+1), intrinsics (3, 3), instructions list[str].

`SampleTransform` augments (optionally), resizes to the model's square input, normalises the trace
(`model.normalize`) and picks one instruction phrasing; `collate` stacks transformed samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from model.augment import color_jitter, crop, flip_horizontal, mirror_instruction, random_crop_box
from model.config import ModelConfig
from model.errors import ModelError
from model.normalize import traj_to_deltas

MIN_DEPTH_M, MAX_DEPTH_M = 0.05, 50.0


class SampleError(ModelError, ValueError):
    """A dataset item that does not have the layout the model trains on."""


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentations for training samples (see `model.augment`); `enabled=False` gives the plain path."""

    enabled: bool = False
    flip_prob: float = 0.5
    crop_scale: float = 0.8
    jitter: float = 0.2


def image_to_input(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 or [0, 1] float (H, W, 3) -> (3, size, size) float32 in [-1, 1]."""
    image = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    interpolation = cv2.INTER_AREA if min(image.shape[:2]) > size else cv2.INTER_LINEAR
    resized = cv2.resize(np.ascontiguousarray(image), (size, size), interpolation=interpolation)
    return (resized.transpose(2, 0, 1) * 2.0 - 1.0).astype(np.float32)


def depth_to_input(depth: np.ndarray | None, size: int) -> np.ndarray:
    """Metric depth (H, W), NaN where unknown, or None -> (2, size, size) [log metres, known]."""
    if depth is None:
        return np.zeros((2, size, size), dtype=np.float32)
    resized = cv2.resize(np.ascontiguousarray(depth, dtype=np.float32), (size, size), interpolation=cv2.INTER_NEAREST)
    known = np.isfinite(resized) & (resized > 0)
    log_depth = np.log(np.clip(np.where(known, resized, 1.0), MIN_DEPTH_M, MAX_DEPTH_M))
    return np.stack([np.where(known, log_depth, 0.0), known]).astype(np.float32)


class SampleTransform:
    """Callable turning one dataset item into model inputs and targets (numpy arrays)."""

    def __init__(self, cfg: ModelConfig, augment: AugmentConfig | None = None):
        self.cfg = cfg
        self.augment = augment or AugmentConfig()

    def __call__(self, item: dict, rng: np.random.Generator) -> dict:
        traj, valid = np.asarray(item["traj"], dtype=np.float32), np.asarray(item["valid"], dtype=bool)
        if traj.ndim != 3 or traj.shape[1] < self.cfg.steps + 1 or valid.shape != traj.shape[1:2]:
            raise SampleError(
                f"item {item.get('video_key', '?')}: traj {traj.shape} / valid {valid.shape} do not hold "
                f"{self.cfg.steps + 1} steps; build the dataset with steps={self.cfg.steps}"
            )
        image = np.asarray(item["image"])
        has_depth = bool(item["has_depth"])
        depth = np.asarray(item["depth"], dtype=np.float32) if has_depth else None
        visible = np.asarray(item["visible"], dtype=bool)
        intrinsics = np.asarray(item["intrinsics"], dtype=np.float32)
        image = image.astype(np.float32) / 255.0
        instructions = list(item["instructions"]) or [""]
        text = instructions[int(rng.integers(len(instructions)))]
        if self.augment.enabled:
            image, depth, traj, visible, intrinsics, flipped = self._augment(image, depth, traj, visible, intrinsics, rng)
            text = mirror_instruction(text) if flipped else text
        height, width = image.shape[:2]
        if not has_depth:
            traj = traj.copy()
            traj[..., 2] = np.nan
        start, deltas, mask = traj_to_deltas(traj, valid, width, height, self.cfg.steps)
        return {
            "image": image_to_input(image, self.cfg.image_size),
            "depth": depth_to_input(depth, self.cfg.image_size),
            "has_depth": has_depth,
            "start": start,
            "deltas": deltas,
            "mask": mask,
            "text": text,
            "traj": traj[:, : self.cfg.steps + 1].astype(np.float32),
            "valid": valid[: self.cfg.steps + 1],
            "visible": visible[:, : self.cfg.steps + 1],
            "size": np.array([width, height], dtype=np.float32),
            "intrinsics": intrinsics,
        }

    def _augment(self, image, depth, traj, visible, intrinsics, rng):
        aug = self.augment
        image = color_jitter(image, rng, aug.jitter) if aug.jitter > 0 else image
        if aug.crop_scale < 1.0:
            box = random_crop_box(image.shape[1], image.shape[0], rng, aug.crop_scale)
            image, depth, traj, intrinsics = crop(image, depth, traj, intrinsics, box)
        flipped = bool(rng.random() < aug.flip_prob)
        if flipped:
            image, depth, traj, visible, intrinsics = flip_horizontal(image, depth, traj, visible, intrinsics)
        return image, depth, traj, visible, intrinsics, flipped


def collate(samples: list[dict]) -> dict:
    """Stack transformed samples: arrays become tensors with a leading batch axis; texts stay a list."""
    batch = {"text": [s["text"] for s in samples]}
    for key in samples[0]:
        if key != "text":
            batch[key] = torch.as_tensor(np.stack([np.asarray(s[key]) for s in samples]))
    return batch


class TransformedDataset(torch.utils.data.Dataset):
    """Wraps a dataset of items; indexed by (item index, augmentation seed) so workers stay reproducible."""

    def __init__(self, dataset, transform: SampleTransform):
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index_and_seed) -> dict:
        index, seed = index_and_seed
        return self.transform(self.dataset[int(index)], np.random.default_rng(seed))
