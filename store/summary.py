"""What `tracegen inspect` reports: store totals, one video's details and per-sample motion statistics."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

from store.samples import VideoSamples
from store.trace_store import TraceStore


@dataclass
class StoreSummary:
    """Totals of a store.

    Attributes:
        location: where the store lives; schema_version, created, image_codec: root attrs.
        videos, samples: counts over each video's default forge configuration.
        embodiments, depth_sources, datasets: {name: videos}.
        forge_configs: {config hash: videos using it}.
        disk_bytes: bytes of every file of the store; data_bytes: uncompressed array bytes (all configs).
        compression_ratio: data_bytes / bytes of the published groups on disk.
        staging: leftover staging folders (interrupted writes).
        rows: one dict per video (key, samples, embodiment, depth source, configs, instruction).
    """

    location: str
    schema_version: int
    created: str
    image_codec: str = "blosc"
    videos: int = 0
    samples: int = 0
    embodiments: dict[str, int] = field(default_factory=dict)
    depth_sources: dict[str, int] = field(default_factory=dict)
    datasets: dict[str, int] = field(default_factory=dict)
    forge_configs: dict[str, int] = field(default_factory=dict)
    disk_bytes: int = 0
    data_bytes: int = 0
    compression_ratio: float = math.nan
    staging: int = 0
    rows: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["compression_ratio"] = None if math.isnan(self.compression_ratio) else round(self.compression_ratio, 3)
        return out


def summarize_store(store: TraceStore) -> StoreSummary:
    """Scan every published video of `store` (metadata only; no array is decoded)."""
    root = store.root_attrs()
    summary = StoreSummary(
        store.location, int(root.get("schema_version", 0)), str(root.get("created", "")), str(root.get("image_codec", "blosc"))
    )
    embodiments, depth, datasets, configs = Counter(), Counter(), Counter(), Counter()
    group_bytes = 0
    for info in store.videos():
        default = info.forge[info.default_config]
        summary.videos += 1
        summary.samples += info.num_samples
        embodiments[str(info.attrs.get("embodiment", "unknown"))] += 1
        depth_source = str(default.get("depth_source", "none")) if default.get("has_depth", True) else "none"
        depth[depth_source] += 1
        datasets[str(info.attrs.get("dataset", ""))] += 1
        configs.update(list(info.forge))
        summary.data_bytes += sum(int(attrs.get("nbytes", 0)) for attrs in info.forge.values())
        group_bytes += store.backend.disk_usage(f"videos/{info.key}")
        instructions = info.attrs.get("instructions") or [""]
        summary.rows.append({
            "key": info.key,
            "samples": info.num_samples,
            "embodiment": str(info.attrs.get("embodiment", "unknown")),
            "depth_source": depth_source,
            "configs": sorted(info.forge),
            "instruction": str(instructions[0]),
            "sources": list(info.attrs.get("sources", [])),
        })
    summary.embodiments, summary.depth_sources = dict(embodiments), dict(depth)
    summary.datasets, summary.forge_configs = dict(datasets), dict(configs)
    summary.disk_bytes = store.backend.disk_usage()
    summary.compression_ratio = summary.data_bytes / group_bytes if group_bytes else math.nan
    summary.staging = len(store.staging_entries())
    return summary


def motion_statistics(samples: VideoSamples) -> list[dict]:
    """Per-sample motion of the traced points.

    Returns:
        One dict per sample: query_frame, valid_steps, visible (fraction over valid steps),
        mean_disp_px / max_disp_px (start to last valid step, u-v pixels, over points visible at
        both), path_px (mean u-v path length), z_min / z_max (metres, None without depth).
    """
    stats = []
    for s in range(samples.num_samples):
        steps = int(samples.valid[s].sum())
        traj = samples.traces[s, :, :steps].astype(np.float64)  # (K, n, 3)
        seen = samples.visible[s, :, :steps]  # (K, n)
        ends = seen[:, 0] & seen[:, -1] & np.isfinite(traj[:, -1, :2]).all(-1)
        disp = np.linalg.norm(traj[ends, -1, :2] - traj[ends, 0, :2], axis=-1)  # (k,)
        seg = np.linalg.norm(np.diff(traj[:, :, :2], axis=1), axis=-1)  # (K, n-1)
        path = np.nansum(seg, axis=1).mean() if steps > 1 else 0.0
        z = traj[..., 2][np.isfinite(traj[..., 2])]
        stats.append({
            "sample": s,
            "query_frame": int(samples.query_frame[s]),
            "valid_steps": steps - 1,
            "visible": round(float(seen.mean()), 3),
            "mean_disp_px": round(float(disp.mean()), 2) if disp.size else None,
            "max_disp_px": round(float(disp.max()), 2) if disp.size else None,
            "path_px": round(float(path), 2),
            "z_min": round(float(z.min()), 3) if z.size else None,
            "z_max": round(float(z.max()), 3) if z.size else None,
        })
    return stats


def video_details(store: TraceStore, key_or_prefix: str, config_hash: str | None = None) -> dict:
    """One video: key, attrs, forge configurations, the chosen configuration and its sample statistics."""
    key = store.resolve(key_or_prefix)
    cfg = store.pick_config(key, config_hash)
    samples = store.read_samples(key, cfg)
    return {
        "key": key,
        "attrs": store.video_attrs(key),
        "forge": store.forge_configs(key),
        "config": cfg,
        "image_size": list(samples.image_size),
        "raw_frames": int(samples.raw_traces.shape[2]),
        "camera_frames": int(samples.camera.shape[0]),
        "samples": motion_statistics(samples),
    }
