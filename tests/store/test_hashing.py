"""Content addresses: streaming SHA-256 of files and frame folders, and the forge-config hash."""

import hashlib

import pytest

from store import hashing
from store.errors import SchemaError
from store.hashing import config_hash, sha256_of_path


def test_file_hash_equals_hashlib_and_streams_in_chunks(tmp_path, monkeypatch):
    payload = bytes(range(256)) * 5000  # 1.28 MB
    path = tmp_path / "clip.mp4"
    path.write_bytes(payload)
    monkeypatch.setattr(hashing, "CHUNK_BYTES", 4096)  # force many reads
    assert sha256_of_path(path) == hashlib.sha256(payload).hexdigest()


def test_frame_folder_hash_covers_sorted_names_and_bytes(tmp_path):
    folder = tmp_path / "frames"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.png").write_bytes(b"bb")
    (folder / "a.png").write_bytes(b"a")
    (folder / "sub" / "c.png").write_bytes(b"c")
    expected = hashlib.sha256(b"a.png\x001\x00a" + b"b.png\x002\x00bb" + b"sub/c.png\x001\x00c").hexdigest()
    assert sha256_of_path(folder) == expected
    (folder / "a.png").rename(folder / "z.png")  # renaming a frame changes the key
    assert sha256_of_path(folder) != expected


def test_hash_of_missing_or_empty_path_names_it(tmp_path):
    with pytest.raises(SchemaError, match="neither a file nor a folder"):
        sha256_of_path(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SchemaError, match="holds no files"):
        sha256_of_path(tmp_path / "empty")


def test_config_hash_is_stable_and_order_free():
    a = config_hash({"fps": 10, "tracker": {"name": "cotracker", "grid": [20, 20]}})
    b = config_hash({"tracker": {"grid": (20, 20), "name": "cotracker"}, "fps": 10})
    assert a == b and len(a) == 16 and int(a, 16) >= 0
    assert a == hashlib.sha256(b'{"fps":10,"tracker":{"grid":[20,20],"name":"cotracker"}}').hexdigest()[:16]
    assert config_hash({"fps": 11, "tracker": {"name": "cotracker", "grid": [20, 20]}}) != a


@pytest.mark.parametrize("bad", [{"x": float("nan")}, {1: 2}, {"x": object()}])
def test_config_hash_rejects_non_json(bad):
    with pytest.raises(SchemaError):
        config_hash(bad)
