"""Where a store lives: a local folder or any fsspec URL, behind the few file operations the store needs.

Zarr reads and writes arrays; this module lists folders, reads `zarr.json` metadata without building
zarr objects (fast listings), measures size on disk and removes trees. Local folders also publish by
`os.rename`; remote stores publish with a commit marker instead (see `trace_store`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from store.errors import StoreWriteError


class StoreBackend:
    """File operations relative to a store root.

    Attributes:
        location: the location as the user gave it.
        local_root: the root folder for local stores, else None.
        url: the fsspec URL for remote stores, else None.
    """

    def __init__(self, location: str | Path) -> None:
        text = str(location)
        self.location = text
        self.local_root: Path | None = None
        self.url: str | None = None
        if "://" not in text:
            self.local_root = Path(text).expanduser().absolute()
        elif text.startswith("file://"):
            self.local_root = Path(text[len("file://") :]).expanduser().absolute()
        else:
            import fsspec

            self.url = text.rstrip("/")
            self._fs, self._root = fsspec.core.url_to_fs(self.url)
            self._root = self._root.rstrip("/")

    @property
    def is_local(self) -> bool:
        return self.local_root is not None

    def zarr_store(self, read_only: bool):
        """A zarr store object for the root (LocalStore, or FsspecStore for URLs)."""
        from zarr.storage import FsspecStore, LocalStore

        if self.local_root is not None:
            return LocalStore(self.local_root, read_only=read_only)
        return FsspecStore.from_url(self.url, read_only=read_only)

    def _remote(self, relative: str) -> str:
        return f"{self._root}/{relative}" if relative else self._root

    def list_dir(self, relative: str) -> list[str]:
        """Names directly under `relative` (files and folders); [] when it does not exist."""
        if self.local_root is not None:
            try:
                return sorted(os.listdir(self.local_root / relative))
            except (FileNotFoundError, NotADirectoryError):
                return []
        try:
            entries = self._fs.ls(self._remote(relative), detail=False)
        except FileNotFoundError:
            return []
        return sorted({str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries})

    def read_bytes(self, relative: str) -> bytes | None:
        """The bytes of a file, or None when it does not exist."""
        try:
            if self.local_root is not None:
                return (self.local_root / relative).read_bytes()
            return self._fs.cat_file(self._remote(relative))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def read_json(self, relative: str) -> dict[str, Any] | None:
        """A parsed JSON file, or None when it does not exist or is not a JSON object."""
        raw = self.read_bytes(relative)
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def node_attrs(self, relative: str) -> dict[str, Any] | None:
        """The `attributes` of the zarr node at `relative`, or None when there is no node."""
        meta = self.read_json(f"{relative}/zarr.json" if relative else "zarr.json")
        return None if meta is None else dict(meta.get("attributes", {}))

    def exists(self, relative: str) -> bool:
        if self.local_root is not None:
            return (self.local_root / relative).exists()
        return bool(self._fs.exists(self._remote(relative)))

    def files_under(self, relative: str) -> list[tuple[str, int]]:
        """Every file below `relative` as (path relative to the store root, size in bytes)."""
        if self.local_root is not None:
            base = self.local_root / relative
            found = []
            for folder, _, names in os.walk(base):
                for name in names:
                    path = Path(folder) / name
                    found.append((path.relative_to(self.local_root).as_posix(), path.stat().st_size))
            return sorted(found)
        try:
            sizes = self._fs.find(self._remote(relative), detail=True)
        except FileNotFoundError:
            return []
        prefix = len(self._root) + 1
        return sorted((name[prefix:], int(info.get("size", 0))) for name, info in sizes.items())

    def disk_usage(self, relative: str = "") -> int:
        """Bytes of every file below `relative`."""
        return sum(size for _, size in self.files_under(relative))

    def remove_tree(self, relative: str) -> None:
        """Delete a folder and everything in it (no error when absent)."""
        try:
            if self.local_root is not None:
                shutil.rmtree(self.local_root / relative, ignore_errors=False)
            elif self._fs.exists(self._remote(relative)):
                self._fs.rm(self._remote(relative), recursive=True)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StoreWriteError(
                f"cannot remove {relative} from store {self.location} ({exc.strerror or exc}); check permissions"
            ) from exc

    def mtime(self, relative: str) -> float | None:
        """Modification time (seconds since the epoch) of a local path; None for remote or absent."""
        if self.local_root is None:
            return None
        try:
            return (self.local_root / relative).stat().st_mtime
        except FileNotFoundError:
            return None
