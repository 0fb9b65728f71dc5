"""verify: a clean store verifies clean; damage of every kind is found; concurrent writers lose nothing."""

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from store.trace_store import TraceStore
from store.verify import verify
from tests.store.conftest import FORGE_ATTRS, make_video_samples, video_attrs

CFG = "0123456789abcdef"


def _written(store_path, count=2):
    store = TraceStore.create(store_path)
    keys = [f"{i + 1:x}" * 64 for i in range(count)]
    for i, key in enumerate(keys):
        store.write_video(key, video_attrs(), CFG, FORGE_ATTRS, make_video_samples(seed=i))
    return store, keys


def test_clean_store_verifies_clean(store_path):
    store, _ = _written(store_path)
    report = verify(store)
    assert report.ok and report.videos == 2 and report.groups == 2
    assert report.chunks == 2 * (8 + 4 + 4)  # one chunk per array, but traces and visible split 129 steps into 4


def test_missing_and_corrupt_chunks_are_found(store_path):
    store, (key_a, key_b) = _written(store_path)
    group_a = store_path / "videos" / key_a / "forge" / CFG
    group_b = store_path / "videos" / key_b / "forge" / CFG
    (group_a / "image" / "c" / "0" / "0" / "0" / "0").unlink()
    (group_b / "traces" / "c" / "0" / "0" / "0" / "0").write_bytes(b"not blosc" * 50)
    kinds = {(p.kind, p.path) for p in verify(store).problems}
    assert kinds == {
        ("missing-chunk", f"videos/{key_a}/forge/{CFG}/image/c/0/0/0/0"),
        ("corrupt-chunk", f"videos/{key_b}/forge/{CFG}/traces/c/0/0/0/0"),
    }


def test_schema_breaks_are_found(store_path):
    store, (key_a, key_b) = _written(store_path)
    meta_path = store_path / "videos" / key_a / "forge" / CFG / "valid" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["data_type"] = "uint8"
    meta_path.write_text(json.dumps(meta))
    os.rename(store_path / "videos" / key_b / "forge" / CFG / "camera", store_path / "camera-moved")
    problems = verify(store).problems
    assert [p.kind for p in problems] == ["schema", "schema"]
    assert "'valid' has dtype uint8" in problems[0].message and "'camera' is missing" in problems[1].message
    os.rename(store_path / "camera-moved", store_path / "videos" / key_b / "forge" / CFG / "camera")
    meta["data_type"] = "bool"
    meta["codecs"] = [{"name": "no-such-codec"}]
    meta_path.write_text(json.dumps(meta))
    [problem] = verify(store).problems
    assert problem.kind == "schema" and problem.path.endswith("/valid") and "cannot be opened" in problem.message


def _crash_writer(store_path: str, key: str) -> None:
    """Write a video but SIGKILL this process after the third array (a kill mid-write)."""
    import store.writer as writer

    real = writer.chunk_shape
    calls = []

    def chunk_then_die(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)

    writer.chunk_shape = chunk_then_die
    TraceStore.open(store_path, "a").write_video(key, video_attrs(), CFG, FORGE_ATTRS, make_video_samples())


def test_kill_mid_write_leaves_only_staging_and_retry_succeeds(store_path):
    store, _ = _written(store_path, count=1)
    key = "c" * 64
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {os.getcwd()!r})
        from tests.store.test_verify import _crash_writer
        _crash_writer({str(store_path)!r}, {key!r})
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    assert store.keys() == ["1" * 64]  # nothing half-visible
    report = verify(store)
    assert [p.kind for p in report.problems] == ["staging"]
    assert verify(store, cleanup=True, stale_after_s=3600).problems  # too young to remove
    cleaned = verify(TraceStore.open(store_path, "a"), cleanup=True, stale_after_s=0)
    assert cleaned.ok and len(cleaned.removed) == 1
    samples = make_video_samples(seed=9)
    store.write_video(key, video_attrs(), CFG, FORGE_ATTRS, samples)
    np.testing.assert_array_equal(store.read_samples(key).traces, samples.traces)


def _write_many(store_path: str, first: int, count: int) -> None:
    store = TraceStore.open(store_path, "a")
    for i in range(first, first + count):
        store.write_video(f"{i:064x}", video_attrs(name=f"v{i}.mp4"), CFG, FORGE_ATTRS, make_video_samples(num_samples=1, seed=i))
        # a second config of a shared video: both processes add to the same video group
        store.write_video("f" * 64, video_attrs(), f"{i:016x}", FORGE_ATTRS, make_video_samples(num_samples=1, seed=i))


@pytest.mark.slow  # spawns two interpreters: ~2 s idle, ~6 s on a loaded 2-core machine
def test_two_processes_writing_at_once_lose_nothing(store_path):
    TraceStore.create(store_path)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(str(store_path), first, 4)) for first in (0, 100)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    store = TraceStore.open(store_path)
    expected = [f"{i:064x}" for i in (*range(4), *range(100, 104))]
    assert store.keys() == sorted(expected + ["f" * 64])
    assert sorted(store.forge_configs("f" * 64)) == sorted(f"{i:016x}" for i in (*range(4), *range(100, 104)))
    for i in (0, 3, 100, 103):
        np.testing.assert_array_equal(store.read_samples(f"{i:064x}").traces, make_video_samples(num_samples=1, seed=i).traces)
    report = verify(store)
    assert report.ok and report.groups == 16
