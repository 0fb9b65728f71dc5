"""A synthetic trace dataset with learnable structure, in the store's `TraceDataset` item layout.

Each scene holds two coloured blocks on a tilted table; the instruction names one block and a
direction, and exactly the grid points on that block move that way, 4 % of the image side per step,
for a random number of steps (the rest of the horizon is padding). Depth (when present) is the
table plane with blocks 5 cm proud of it; moving "up" also lifts the block 2 cm per step towards the
camera. A model must read the instruction (which colour, which way) and the image (where that block
is) to predict the trace, so this exercises every input. Used by tests, benchmarks and demos.
"""

from __future__ import annotations

import numpy as np

from store.trace import grid_points

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 70, 230), "yellow": (230, 210, 40)}
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
PHRASINGS = ("move the {c} block {d}", "push the {c} cube to the {d}", "slide the {c} block {d}wards")
SIZES = ((160, 120), (128, 96), (192, 144))
LIFT_M_PER_STEP = 0.02
STEP_FRACTION = 0.04  # of the image side per step: within the +-1 delta clamp even after a 0.8 crop


class SyntheticTraceDataset:
    """`len(ds)` items; item i is a deterministic function of (seed, i).

    Args:
        num_videos: distinct scenes; `video_key` is f"synthetic-{seed}-{video}".
        samples_per_video: items per scene (same scene, different instruction draws).
        steps: steps after the start in each item's trace (items hold steps + 1 rows).
        depth_fraction: share of scenes that come with a depth map.
        seed: base seed.
    """

    def __init__(self, num_videos: int = 8, samples_per_video: int = 4, steps: int = 32, depth_fraction: float = 0.5, seed: int = 0):
        self.num_videos, self.samples_per_video, self.steps = num_videos, samples_per_video, steps
        self.depth_fraction, self.seed = depth_fraction, seed
        self.keys = [f"synthetic-{seed}-{v}" for v in range(num_videos) for _ in range(samples_per_video)]

    def __len__(self) -> int:
        return self.num_videos * self.samples_per_video

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} synthetic samples")
        video, sample = divmod(index, self.samples_per_video)
        scene_rng = np.random.default_rng([self.seed, video])
        rng = np.random.default_rng([self.seed, video, sample, 1])
        width, height = SIZES[int(scene_rng.integers(len(SIZES)))]
        has_depth = bool(scene_rng.random() < self.depth_fraction)
        image, depth, boxes = _render_scene(scene_rng, width, height)
        target = int(rng.integers(len(boxes)))
        direction = list(DIRECTIONS)[int(rng.integers(len(DIRECTIONS)))]
        colour = boxes[target][0]
        moving_steps = int(rng.integers(6, min(self.steps, 32) + 1))
        traj, valid = _trace(boxes[target][1], DIRECTIONS[direction], moving_steps, depth, width, height, self.steps)
        if not has_depth:
            traj[..., 2] = np.nan
        focal = float(width)
        intrinsics = np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]], dtype=np.float32)
        return {
            "image": image,
            "depth": depth if has_depth else np.full((height, width), np.nan, dtype=np.float32),
            "has_depth": has_depth,
            "traj": traj,
            "valid": valid,
            "visible": np.repeat(valid[None], traj.shape[0], axis=0),
            "intrinsics": intrinsics,
            "instructions": [p.format(c=colour, d=direction) for p in PHRASINGS],
            "video_key": self.keys[index],
            "sample_index": sample,
        }


def _render_scene(rng: np.random.Generator, width: int, height: int):
    """Image uint8 (H, W, 3), depth float32 (H, W) and [(colour, (x0, y0, x1, y1))] for two blocks."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = rng.integers(60, 120, size=3)
    rows = np.arange(height, dtype=np.float32)[:, None]
    depth = np.broadcast_to(1.0 + 0.3 * rows / height, (height, width)).astype(np.float32).copy()
    colours = rng.choice(list(COLOURS), size=2, replace=False)
    boxes = []
    halves = [(0, width // 2), (width // 2, width)]  # one block per half so they never overlap
    rng.shuffle(halves)
    for colour, (left, right) in zip(colours, halves, strict=True):
        side_w, side_h = int(width * rng.uniform(0.25, 0.35)), int(height * rng.uniform(0.3, 0.45))
        x0 = int(rng.integers(left, max(left + 1, right - side_w)))
        y0 = int(rng.integers(0, height - side_h))
        image[y0 : y0 + side_h, x0 : x0 + side_w] = COLOURS[str(colour)]
        depth[y0 : y0 + side_h, x0 : x0 + side_w] -= 0.05
        boxes.append((str(colour), (x0, y0, x0 + side_w, y0 + side_h)))
    return image, depth, boxes


def _trace(box, direction, moving_steps, depth, width, height, steps):
    """traj (K, steps+1, 3) and valid (steps+1,): points inside `box` move, the rest stay."""
    grid = grid_points(width, height)  # (K, 2)
    x0, y0, x1, y1 = box
    inside = (grid[:, 0] >= x0) & (grid[:, 0] < x1) & (grid[:, 1] >= y0) & (grid[:, 1] < y1)  # (K,)
    cols = np.clip(np.round(grid[:, 0]).astype(int), 0, width - 1)
    rows = np.clip(np.round(grid[:, 1]).astype(int), 0, height - 1)
    start_z = depth[rows, cols]  # (K,)
    step = np.array([STEP_FRACTION * width * direction[0], STEP_FRACTION * height * direction[1], 0.0])
    if direction == (0, -1):
        step[2] = -LIFT_M_PER_STEP
    counts = np.arange(steps + 1, dtype=np.float32)  # (steps+1,)
    start = np.concatenate([grid, start_z[:, None]], axis=-1)  # (K, 3)
    traj = start[:, None, :] + inside[:, None, None] * counts[None, :, None] * step  # (K, steps+1, 3)
    valid = counts <= moving_steps
    traj = np.where(valid[None, :, None], traj, np.nan).astype(np.float32)
    return traj, valid


def write_synthetic_store(location, num_videos: int = 24, samples_per_video: int = 2, depth_fraction: float = 0.5, seed: int = 0) -> str:
    """Write synthetic scenes into a trace store (one video per scene) so `tracegen pretrain` can read them.

    Each video's samples share the scene, target block and direction (its instructions), with
    different durations, as forged clips of one task would.

    Returns:
        The store's location.
    """
    import hashlib

    from store.samples import VideoSamples
    from store.trace import TRACE_LENGTH
    from store.trace_store import TraceStore

    store = TraceStore.create(location)
    items_per_video = SyntheticTraceDataset(num_videos, 1, steps=TRACE_LENGTH - 1, depth_fraction=depth_fraction, seed=seed)
    for video in range(num_videos):
        item = items_per_video[video]
        rng = np.random.default_rng([seed, video, 7])
        cut = [int(rng.integers(6, int(item["valid"].sum()) + 1)) for _ in range(samples_per_video)]
        traces = np.stack([np.where((np.arange(TRACE_LENGTH) <= c)[None, :, None], item["traj"], np.nan) for c in cut])
        valid = np.stack([np.arange(TRACE_LENGTH) <= c for c in cut])  # (S, L)
        frames = min(TRACE_LENGTH - 1, 64)
        samples = VideoSamples(
            traces=traces.astype(np.float32),
            valid=valid,
            visible=np.repeat(valid[:, None], traces.shape[1], axis=1),
            query_frame=np.zeros(samples_per_video, dtype=np.int32),
            image=np.repeat(item["image"][None], samples_per_video, axis=0),
            intrinsics=np.repeat(item["intrinsics"][None], samples_per_video, axis=0),
            raw_traces=np.nan_to_num(traces[:, :, :frames], nan=0.0).astype(np.float32),
            camera=np.tile(np.eye(4, dtype=np.float32), (frames, 1, 1)),
            depth=np.repeat(item["depth"][None], samples_per_video, axis=0) if item["has_depth"] else None,
            frame_index=np.where(valid, np.arange(TRACE_LENGTH, dtype=np.float32), np.nan).astype(np.float32),
        )
        height, width = item["image"].shape[:2]
        attrs = {
            "sources": [f"synthetic-{seed}-{video}.mp4"],
            "fps": 30.0,
            "frame_count": frames,
            "size": [height, width],
            "embodiment": "synthetic",
            "instructions": item["instructions"],
            "dataset": "synthetic",
        }
        key = hashlib.sha256(f"synthetic-{seed}-{video}".encode()).hexdigest()
        forge = {"config": {"synthetic": True}, "depth_source": "synthetic" if item["has_depth"] else "none", "camera_motion": "static"}
        store.write_video(key, attrs, "5e1f0c0de0000000", forge, samples)
    return str(store.location)
