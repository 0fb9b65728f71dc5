"""The directory runner: mixed inputs, broken files, skipping, --force, --dry-run, kill and resume."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from forge.config import ForgeConfig
from forge.runner import FAILED, FORGED, SKIPPED, WOULD_FORGE, forge_directory
from store.trace_store import TraceStore
from tests.forge.synthetic import SceneSpec, render, write_video

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small_scene():
    return render(SceneSpec(width=160, height=120, focal=130.0, num_frames=16, seed=4))


def _mixed_folder(root: Path, scene) -> Path:
    write_video(scene, root / "rgbd", "with_depth")
    write_video(scene, root / "rgb", "frames", depth=False, instruction=None, frame_folder=True)
    broken = root / "broken"
    broken.mkdir()
    (broken / "zero.mp4").write_bytes(b"")
    whole = (root / "rgbd" / "with_depth.mp4").read_bytes()
    (broken / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    write_video(scene, broken, "bad_depth", depth=False)
    np.savez(broken / "bad_depth.depth.npz", depth=np.ones((16, 50, 50), np.float32))
    return root


def _status(summary):
    return {Path(o.source).name: o.status for o in summary.outcomes}


def test_mixed_folder_forges_good_videos_and_reports_broken_ones(small_scene, tmp_path):
    videos = _mixed_folder(tmp_path / "videos", small_scene)
    store_path = tmp_path / "store"
    config = ForgeConfig(query_every=8, min_segment_frames=4)
    summary = forge_directory(videos, store_path, config)
    assert _status(summary) == {"bad_depth.mp4": FAILED, "truncated.mp4": FAILED, "zero.mp4": FAILED,
                                "frames": FORGED, "with_depth.mp4": FORGED}
    reasons = {Path(o.source).name: o.reason for o in summary.outcomes}
    assert "empty" in reasons["zero.mp4"] and "depth frames are 50x50" in reasons["bad_depth.mp4"]
    assert summary.failed
    store = TraceStore.open(store_path)
    assert len(store.keys()) == 2
    depth_sources = sorted(store.forge_attrs(k, c)["depth_source"] for k in store.keys() for c in store.forge_configs(k))
    assert depth_sources == ["none", "sensor"]

    again = forge_directory(videos, store_path, config)  # nothing left to do for the good ones
    assert _status(again)["with_depth.mp4"] == SKIPPED and _status(again)["frames"] == SKIPPED
    forced = forge_directory(videos / "rgbd", store_path, ForgeConfig(query_every=8, min_segment_frames=4, force=True))
    assert _status(forced) == {"with_depth.mp4": FORGED} and not forced.failed


def test_dry_run_writes_nothing(small_scene, tmp_path):
    write_video(small_scene, tmp_path / "videos", "one")
    summary = forge_directory(tmp_path / "videos", tmp_path / "store", ForgeConfig(dry_run=True))
    assert _status(summary) == {"one.mp4": WOULD_FORGE}
    assert not (tmp_path / "store").exists()


def test_sidecar_change_reforges(small_scene, tmp_path):
    write_video(small_scene, tmp_path / "videos", "one")
    config = ForgeConfig(min_segment_frames=4)
    forge_directory(tmp_path / "videos", tmp_path / "store", config)
    (tmp_path / "videos" / "one.depth.npz").unlink()
    assert _status(forge_directory(tmp_path / "videos", tmp_path / "store", config)) == {"one.mp4": FORGED}


@pytest.mark.slow
def _published_keys(store_path: Path) -> list:
    """The store's published videos, none while its folder exists but its root zarr.json is not written yet."""
    from store.errors import NotAStoreError

    try:
        return TraceStore.open(store_path).keys()
    except NotAStoreError:
        return []


def test_pool_and_kill_then_resume_loses_nothing(tmp_path):
    videos = tmp_path / "videos"
    for index in range(4):  # four different videos (different textures), so four content keys
        scene = render(SceneSpec(width=160, height=120, focal=130.0, num_frames=16, seed=10 + index))
        write_video(scene, videos, f"clip{index}", instruction=f"task {index}")
    store_path = tmp_path / "store"
    code = "import sys; from tracegen_cli.main import run; sys.argv[0] = 'tracegen'; run()"
    process = subprocess.Popen([sys.executable, "-c", code, "-q", "forge", str(videos), "--store", str(store_path)],
                               cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill once the first video is published
        if _published_keys(store_path):
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    published = len(TraceStore.open(store_path).keys())
    assert published >= 1
    summary = forge_directory(videos, store_path, ForgeConfig(workers=2))
    statuses = list(_status(summary).values())
    assert not summary.failed and len(TraceStore.open(store_path).keys()) == 4
    assert statuses.count(SKIPPED) == published and statuses.count(FORGED) == 4 - published
