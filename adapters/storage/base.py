"""Object storage seen as keys under a root URI: list (streamed), head, read, write, sign."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

# PAI's supported image formats, by file extension.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"})


def is_supported_image(key: str) -> bool:
    return posixpath.splitext(key)[1].lower() in IMAGE_EXTENSIONS


UNKNOWN = -1  # the size and time of a file listed without them (``list(sizes=False)``)


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object. ``key`` is relative to the storage root, ``/``-separated."""

    key: str
    uri: str
    size: int
    mtime_ms: int
    etag: str | None = None  # OSS ETag (the fingerprint PAI uses); None for local files
    # A listed entry that is not a usable file says why (local disks: a symlink loop, a name
    # that is not UTF-8, ...); ``skip``: not a file at all (a FIFO, a device), so not a failure.
    # A key ending in "/" is a folder that could not be listed.
    problem: str | None = None
    skip: bool = False


class Storage(Protocol):
    """What a dataset's files live in. Implementations: local folders, Alibaba OSS."""

    root_uri: str

    def list(self, prefix: str = "", *, sizes: bool = True) -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, streamed page by page (never the whole listing).
        ``sizes=False``: a caller that reads every file anyway (and takes its size and time
        from the read) lets a storage that must ask for them file by file list plain files
        with ``UNKNOWN`` size and time instead."""
        ...

    def head(self, key: str) -> ObjectInfo: ...

    def read(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        """The object's bytes, or the inclusive ``(first, last)`` byte range of them."""
        ...

    def write(self, key: str, data: bytes, content_type: str | None = None, *,
              exclusive: bool = False) -> str:
        """Store ``data`` at ``key`` and return its URI. ``exclusive``: only if nothing is
        there yet, atomically (raises ``AlreadyExistsError``): two writers cannot both win."""
        ...

    def signed_url(self, key: str, expires_s: int = 3600) -> str: ...

    def key_of(self, uri: str) -> str:
        """The key of a URI under this root (the inverse of ``ObjectInfo.uri``)."""
        ...
