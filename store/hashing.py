"""Content addresses: streaming SHA-256 of a video (file or frame folder) and the forge-config hash."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from store.errors import SchemaError

CHUNK_BYTES = 1 << 20  # read 1 MiB at a time so multi-GB videos never sit in memory


def _update_from_file(digest: hashlib._Hash, path: Path) -> None:
    with path.open("rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            digest.update(block)


def sha256_of_path(path: str | Path) -> str:
    """SHA-256 (hex) of a video file's bytes, or of a frame folder.

    A folder hashes, for every file below it in sorted order of relative POSIX names, the name, a
    NUL, the byte count and the bytes, so renaming, adding or editing any frame changes the key.

    Args:
        path: a file or a directory.
    Returns:
        64 lowercase hex characters.
    """
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_file():
        _update_from_file(digest, path)
        return digest.hexdigest()
    if not path.is_dir():
        raise SchemaError(f"cannot hash {path}: it is neither a file nor a folder; pass a video file or a frame folder")
    files = sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.relative_to(path).as_posix())
    if not files:
        raise SchemaError(f"cannot hash folder {path}: it holds no files; pass a folder of frames")
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode("utf-8") + b"\0")
        digest.update(str(file.stat().st_size).encode("ascii") + b"\0")
        _update_from_file(digest, file)
    return digest.hexdigest()


def _canonical(value: Any, where: str) -> Any:
    """Plain JSON values with every float finite; tuples become lists; mapping keys must be str."""
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise SchemaError(f"config key {key!r} at {where} is not a string; use string keys")
        return {key: _canonical(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise SchemaError(f"config value {value} at {where} is not finite; use a finite number or null")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise SchemaError(f"config value {value!r} at {where} is a {type(value).__name__}; use JSON types only")


def config_hash(config: dict) -> str:
    """Stable hash of every setting: canonical JSON (sorted keys, no spaces), SHA-256, first 16 hex.

    Args:
        config: JSON-able settings; key order does not matter, tuples equal lists.
    Returns:
        16 lowercase hex characters.
    """
    if not isinstance(config, dict):
        raise SchemaError(f"config must be a dict, got {type(config).__name__}; pass the forge settings as a dict")
    text = json.dumps(_canonical(config, "config"), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
