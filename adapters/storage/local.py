"""Local folders (``/path`` or ``file:///path``)."""

from __future__ import annotations

import os
import posixpath
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

from ..errors import AdapterError, AlreadyExistsError, ConfigError, NotFoundError
from .base import ObjectInfo


def local_path(uri: str) -> Path:
    if uri.startswith("file://"):
        parsed = urlparse(uri)
        if parsed.netloc not in ("", "localhost"):
            raise ConfigError(f"file URI {uri!r} names a host; use file:///absolute/path")
        return Path(unquote(parsed.path))
    if "://" in uri:
        raise ConfigError(f"{uri!r} is not a local path")
    return Path(uri)


class LocalStorage:
    def __init__(self, root: str):
        self.root = local_path(root).expanduser().resolve()
        self.root_uri = self.root.as_uri()
        self._root_str = str(self.root)

    def _uri(self, key: str) -> str:
        return self.root_uri.rstrip("/") + "/" + quote(key)

    def key_of(self, uri: str) -> str:
        path = local_path(uri).resolve()
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError as exc:
            raise ConfigError(f"{uri!r} is not under {self.root_uri}") from exc

    def _path(self, key: str) -> str:
        # Lexical check only (no per-component lstat): this runs once per file in a scan.
        norm = posixpath.normpath(key)
        if norm.startswith(("../", "/")) or norm == "..":
            raise ConfigError(f"key {key!r} leaves the storage root")
        return os.path.join(self._root_str, norm)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        # An explicit stack of directories and os.scandir iterators keep memory to one
        # directory entry at a time, whatever the tree's size.
        start = self._path(prefix) if prefix else self._root_str
        if not os.path.isdir(start):
            if not prefix:  # a missing root is an error, never "every file is gone"
                raise AdapterError(f"dataset folder {self.root_uri} does not exist or is not a "
                                   "folder (is its volume mounted?)", is_input_error=True)
            return
        if not prefix and not os.access(start, os.R_OK | os.X_OK):
            raise AdapterError(f"dataset folder {self.root_uri} is not readable by this process",
                               is_input_error=True)
        cut = len(self._root_str) + 1
        stack = [start]
        while stack:
            directory = stack.pop()
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file():
                        st = entry.stat()
                        key = entry.path[cut:].replace(os.sep, "/")
                        yield ObjectInfo(key, self._uri(key), st.st_size, st.st_mtime_ns // 1_000_000)

    def head(self, key: str) -> ObjectInfo:
        try:
            st = os.stat(self._path(key))
        except FileNotFoundError as exc:
            raise NotFoundError(f"no file {self._uri(key)}") from exc
        return ObjectInfo(key, self._uri(key), st.st_size, st.st_mtime_ns // 1_000_000)

    def read(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        path = self._path(key)
        try:
            with open(path, "rb") as fh:
                if byte_range is None:
                    return fh.read()
                fh.seek(byte_range[0])
                return fh.read(byte_range[1] - byte_range[0] + 1)
        except FileNotFoundError as exc:
            raise NotFoundError(f"no file {self._uri(key)}") from exc

    def write(self, key: str, data: bytes, content_type: str | None = None, *,
              exclusive: bool = False) -> str:
        path = Path(self._path(key))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.part")
        tmp.write_bytes(data)
        try:
            if exclusive:  # link() fails if the name exists: one of two writers wins
                os.link(tmp, path)
            else:
                os.replace(tmp, path)  # readers never see half a file
        except FileExistsError as exc:
            raise AlreadyExistsError(f"{self._uri(key)} exists already") from exc
        finally:
            tmp.unlink(missing_ok=True)
        return self._uri(key)

    def signed_url(self, key: str, expires_s: int = 3600) -> str:
        """Local files need no signature: the ``file://`` URI itself."""
        self.head(key)
        return self._uri(key)
