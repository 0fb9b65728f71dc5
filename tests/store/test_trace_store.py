"""TraceStore: create/open, round trips, key prefixes, configurations, and every bad input of issue 2."""

import errno
import json

import numpy as np
import pytest

from store.errors import CorruptDataError, KeyLookupError, NotAStoreError, SchemaError, StoreWriteError
from store.samples import SCHEMA_VERSION
from store.trace_store import TraceStore
from tests.store.conftest import FORGE_ATTRS, make_video_samples, video_attrs

KEY_A = "a1" * 32
KEY_B = "a2" * 32
KEY_C = "b3" * 32
CFG = "0123456789abcdef"


def assert_samples_equal(expected, actual):
    for name, array in expected.arrays().items():
        got = getattr(actual, name)
        assert got is not None and got.dtype == array.dtype, name
        np.testing.assert_array_equal(got, array, err_msg=name)
    assert (actual.depth is None) == (expected.depth is None)


def test_create_records_schema_and_round_trips_samples(store_path):
    store = TraceStore.create(store_path)
    attrs = store.root_attrs()
    assert attrs["schema_version"] == SCHEMA_VERSION and attrs["created"].startswith("20")
    samples = make_video_samples(num_samples=3)
    store.write_video(KEY_A, video_attrs(), CFG, FORGE_ATTRS, samples)
    reopened = TraceStore.open(store_path)
    assert_samples_equal(samples, reopened.read_samples(KEY_A))
    [info] = reopened.videos()
    assert info.key == KEY_A and info.num_samples == 3 and info.attrs["instructions"] == ["pick up the cup"]
    assert info.default_config == CFG and info.forge_configs is info.forge
    assert info.forge[CFG]["depth_source"] == "synthetic" and info.forge[CFG]["config"] == {"fps": 10, "grid": 20}
    assert reopened.has_forge(KEY_A, CFG) and not reopened.has_forge(KEY_A, "ffff") and not reopened.has_forge(KEY_B, CFG)
    assert TraceStore.create(store_path).keys() == [KEY_A]  # create on an existing store opens it


def test_store_without_depth_round_trips(store_path):
    store = TraceStore.create(store_path)
    samples = make_video_samples(with_depth=False)
    store.write_video(KEY_A, video_attrs(), CFG, FORGE_ATTRS, samples)
    read = store.read_samples(KEY_A)
    assert read.depth is None and store.videos()[0].forge[CFG]["has_depth"] is False
    assert_samples_equal(samples, read)


def test_key_prefix_lookup_like_git(store_path):
    store = TraceStore.create(store_path)
    for key in (KEY_A, KEY_B, KEY_C):
        store.write_video(key, video_attrs(), CFG, FORGE_ATTRS, make_video_samples(num_samples=1))
    assert store.resolve("b") == KEY_C and store.resolve("A1A1") == KEY_A and store.resolve(KEY_B) == KEY_B
    with pytest.raises(KeyLookupError, match="ambiguous: it matches 2 videos .*a1a1a1a1a1a1, a2a2a2a2a2a2"):
        store.resolve("a")
    with pytest.raises(KeyLookupError, match="no video .* matches key prefix 'ff'"):
        store.resolve("ff")
    with pytest.raises(KeyLookupError, match="not a video key prefix"):
        store.resolve("zz")


def test_configs_coexist_and_latest_is_default(store_path):
    store = TraceStore.create(store_path)
    first, second = make_video_samples(num_samples=1, seed=1), make_video_samples(num_samples=2, seed=2)
    store.write_video(KEY_A, video_attrs(), "aaaa0000aaaa0000", FORGE_ATTRS, first)
    store.write_video(KEY_A, video_attrs(instructions=("open it", "open the lid")), "bbbb0000bbbb0000", FORGE_ATTRS, second)
    assert_samples_equal(second, store.read_samples(KEY_A))
    assert_samples_equal(first, store.read_samples(KEY_A, "aaaa0000aaaa0000"))
    assert set(store.videos()[0].forge) == {"aaaa0000aaaa0000", "bbbb0000bbbb0000"}
    assert store.video_attrs(KEY_A)["instructions"] == ["open it", "open the lid"]
    with pytest.raises(KeyLookupError, match="no forge config 'cccc'"):
        store.read_samples(KEY_A, "cccc")
    store.write_video(KEY_A, video_attrs(), "aaaa0000aaaa0000", FORGE_ATTRS, second)  # rewrite replaces
    assert_samples_equal(second, store.read_samples(KEY_A, "aaaa0000aaaa0000"))
    assert store.staging_entries() == []


def test_not_a_store(tmp_path):
    with pytest.raises(NotAStoreError, match="is not a trace store"):
        TraceStore.open(tmp_path / "missing")
    (tmp_path / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}}))
    with pytest.raises(NotAStoreError, match="is not a trace store"):
        TraceStore.open(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "zarr.json").unlink()
    with pytest.raises(NotAStoreError, match="non-empty folder"):
        TraceStore.create(tmp_path)


def test_newer_schema_is_refused(store_path):
    TraceStore.create(store_path)
    meta_path = store_path / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["attributes"]["schema_version"] = SCHEMA_VERSION + 1
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(SchemaError, match=f"schema_version {SCHEMA_VERSION + 1}, newer .* upgrade tracegen"):
        TraceStore.open(store_path)


def test_read_only_mode_and_location(store_path):
    store = TraceStore.create(store_path)
    with pytest.raises(StoreWriteError, match="open it with mode='a'"):
        TraceStore.open(store_path, "r").write_video(KEY_A, video_attrs(), CFG, FORGE_ATTRS, make_video_samples())
    with pytest.raises(StoreWriteError, match="cannot create a store at /sys/"):
        TraceStore.create("/sys/tracegen-test-store")  # sysfs refuses new folders, even to root
    if hasattr(__import__("os"), "geteuid") and __import__("os").geteuid() != 0:
        store_path.chmod(0o555)
        try:
            with pytest.raises(StoreWriteError, match="cannot write video"):
                store.write_video(KEY_A, video_attrs(), CFG, FORGE_ATTRS, make_video_samples())
        finally:
            store_path.chmod(0o755)


@pytest.mark.parametrize(
    ("code", "reason", "message"),
    [
        (errno.ENOSPC, "No space left on device", "the disk is full"),
        (errno.EROFS, "Read-only file system", "Read-only file system; free space or pick a writable store"),
        (errno.EACCES, "Permission denied", "Permission denied"),
    ],
)
def test_failed_disk_write_leaves_nothing_and_retry_succeeds(store_path, monkeypatch, code, reason, message):
    """A full disk or a location that turns read-only mid-write (simulated at zarr's file writer)."""
    import zarr.storage._local as local

    store = TraceStore.create(store_path)
    real_put, calls = local._put, []

    def put_until_failure(path, value, exclusive=False):
        calls.append(path)
        if len(calls) > 6:
            raise OSError(code, reason)
        return real_put(path, value, exclusive=exclusive)

    monkeypatch.setattr(local, "_put", put_until_failure)
    with pytest.raises(StoreWriteError, match=message):
        store.write_video(KEY_A, video_attrs(), CFG, FORGE_ATTRS, make_video_samples())
    assert store.keys() == [] and store.staging_entries() == []
    monkeypatch.setattr(local, "_put", real_put)
    samples = make_video_samples()
    store.write_video(KEY_A, video_attrs(), CFG, FORGE_ATTRS, samples)
    assert_samples_equal(samples, store.read_samples(KEY_A))


def test_exception_mid_write_leaves_nothing_visible(store_path, monkeypatch):
    import store.writer as writer

    store = TraceStore.create(store_path)
    store.write_video(KEY_A, video_attrs(), CFG, FORGE_ATTRS, make_video_samples(seed=1))
    original = writer.write_forge_group

    def crash(zarr_store, group_path, forge_attrs, samples, image_codec="blosc"):
        original(zarr_store, group_path, {}, samples, image_codec)  # arrays written, marker not
        raise RuntimeError("power cut")

    monkeypatch.setattr("store.writer.write_forge_group", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        store.write_video(KEY_B, video_attrs(), CFG, FORGE_ATTRS, make_video_samples())
    with pytest.raises(RuntimeError):
        store.write_video(KEY_A, video_attrs(), "ffff0000ffff0000", FORGE_ATTRS, make_video_samples())
    assert store.keys() == [KEY_A] and list(store.videos()[0].forge) == [CFG]
    monkeypatch.setattr("store.writer.write_forge_group", original)
    samples = make_video_samples(seed=5)
    store.write_video(KEY_B, video_attrs(), CFG, FORGE_ATTRS, samples)
    assert_samples_equal(samples, store.read_samples(KEY_B))


def test_corrupt_chunk_raises_naming_the_array(store_path):
    store = TraceStore.create(store_path)
    store.write_video(KEY_A, video_attrs(), CFG, FORGE_ATTRS, make_video_samples())
    chunk = next(p for p in (store_path / "videos" / KEY_A / "forge" / CFG / "visible" / "c").rglob("*") if p.is_file())
    chunk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CorruptDataError, match=f"videos/{KEY_A}/forge/{CFG}/visible cannot be read"):
        store.read_samples(KEY_A)


def test_bad_keys_and_attrs_are_refused(store_path):
    store = TraceStore.create(store_path)
    samples = make_video_samples(num_samples=1)
    with pytest.raises(SchemaError, match="not 8-64 lowercase hex"):
        store.write_video("../etc", video_attrs(), CFG, FORGE_ATTRS, samples)
    with pytest.raises(SchemaError, match="config hash"):
        store.write_video(KEY_A, video_attrs(), "CFG!", FORGE_ATTRS, samples)
    with pytest.raises(SchemaError, match="video attrs are not plain JSON"):
        store.write_video(KEY_A, {"fps": float("nan")}, CFG, FORGE_ATTRS, samples)


def test_fsspec_memory_store_round_trips():
    url = "memory://tracegen-tests/fsspec-store.zarr"
    store = TraceStore.create(url)
    samples = make_video_samples(num_samples=2)
    store.write_video(KEY_A, video_attrs(), CFG, FORGE_ATTRS, samples)
    reopened = TraceStore.open(url)
    assert reopened.keys() == [KEY_A] and reopened.videos()[0].num_samples == 2
    assert_samples_equal(samples, reopened.read_samples("a1"))
    import fsspec

    fsspec.filesystem("memory").rm("/tracegen-tests", recursive=True)


def test_file_url_opens_the_local_store(store_path):
    TraceStore.create(store_path).write_video(KEY_A, video_attrs(), CFG, FORGE_ATTRS, make_video_samples(num_samples=1))
    store = TraceStore.open(f"file://{store_path}")
    assert store.backend.is_local and store.keys() == [KEY_A]


def test_fsspec_half_write_is_invisible_and_verify_reports_it(monkeypatch):
    import fsspec

    import store.writer as writer
    from store.verify import verify

    url = "memory://tracegen-tests/half.zarr"
    store = TraceStore.create(url)
    original = writer.write_forge_group

    def crash(zarr_store, group_path, forge_attrs, samples, image_codec="blosc"):
        original(zarr_store, group_path, {}, samples, image_codec)  # arrays in place, marker never written
        raise KeyboardInterrupt

    monkeypatch.setattr(writer, "write_forge_group", crash)
    with pytest.raises(KeyboardInterrupt):
        store.write_video(KEY_A, video_attrs(), CFG, FORGE_ATTRS, make_video_samples(num_samples=1))
    assert store.keys() == [] and not store.backend.exists(f"videos/{KEY_A}/forge/{CFG}")  # cleaned up
    # a writer killed outright leaves the unmarked group behind: readers skip it, verify names it
    original(store.zarr_store, f"videos/{KEY_A}/forge/{CFG}", {}, make_video_samples(num_samples=1))
    assert store.keys() == [] and not store.has_forge(KEY_A, CFG)
    assert [p.kind for p in verify(store).problems] == ["unpublished", "orphan"]
    monkeypatch.setattr(writer, "write_forge_group", original)
    samples = make_video_samples(num_samples=1, seed=4)
    store.write_video(KEY_A, video_attrs(), CFG, FORGE_ATTRS, samples)
    assert_samples_equal(samples, TraceStore.open(url).read_samples(KEY_A))
    assert verify(store).ok
    fsspec.filesystem("memory").rm("/tracegen-tests", recursive=True)


def test_write_read_round_trip_over_random_shapes(tmp_path_factory):
    """Property: any schema-valid VideoSamples reads back bit-identical (NaN padding, masks, no depth)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        num_samples=st.integers(1, 3),
        height=st.integers(2, 17),
        width=st.integers(2, 23),
        frames=st.integers(1, 9),
        with_depth=st.booleans(),
        keep_frame_index=st.booleans(),
        seed=st.integers(0, 2**16),
    )
    def round_trip(num_samples, height, width, frames, with_depth, keep_frame_index, seed):
        samples = make_video_samples(num_samples, height, width, max(frames, 2), with_depth, seed)
        if not keep_frame_index:
            samples.frame_index = None
        store = TraceStore.create(tmp_path_factory.mktemp("prop") / "s.zarr")
        store.write_video(KEY_A, video_attrs(), CFG, FORGE_ATTRS, samples)
        read = store.read_samples(KEY_A)
        assert_samples_equal(samples, read)
        assert (read.frame_index is None) == (not keep_frame_index)

    round_trip()


def test_remove_video_takes_out_every_configuration_and_nothing_else(store_path):
    store = TraceStore.create(store_path)
    kept = make_video_samples(num_samples=2)
    for key in (KEY_A, KEY_B):
        store.write_video(key, video_attrs(), CFG, FORGE_ATTRS, kept)
    store.write_video(KEY_A, video_attrs(), "fedcba9876543210", FORGE_ATTRS, make_video_samples(num_samples=1))
    store.remove_video(KEY_A)
    assert store.keys() == [KEY_B] and TraceStore.open(store_path).keys() == [KEY_B]
    assert_samples_equal(kept, store.read_samples(KEY_B))
    assert not (store_path / "videos" / KEY_A).exists() and store.staging_entries() == []
    with pytest.raises(SchemaError, match="not in store"):
        store.remove_video(KEY_A)
    with pytest.raises(StoreWriteError, match="read-only"):
        TraceStore.open(store_path).remove_video(KEY_B)


def test_remove_video_from_an_fsspec_store():
    url = "memory://tracegen-tests/remove.zarr"
    store = TraceStore.create(url)
    for key in (KEY_A, KEY_C):
        store.write_video(key, video_attrs(), CFG, FORGE_ATTRS, make_video_samples(num_samples=1))
    store.remove_video(KEY_C)
    assert TraceStore.open(url).keys() == [KEY_A]
