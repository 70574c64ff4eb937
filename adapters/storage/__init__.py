"""Where dataset files live: local folders and Alibaba OSS behind one small interface."""

from __future__ import annotations

from .base import IMAGE_EXTENSIONS, ObjectInfo, Storage, is_supported_image
from .local import LocalStorage
from .oss import OssConfig, OssStorage


def open_storage(uri: str, oss_config: OssConfig | None = None) -> Storage:
    """``oss://…`` -> :class:`OssStorage`; a path or ``file://`` URI -> :class:`LocalStorage`."""
    if uri.startswith("oss://"):
        return OssStorage(uri, oss_config)
    return LocalStorage(uri)


__all__ = [
    "IMAGE_EXTENSIONS", "LocalStorage", "ObjectInfo", "OssConfig", "OssStorage", "Storage",
    "UriReader", "is_supported_image", "open_storage",
]


class UriReader:
    """Reads files by URI (``file://…`` or ``oss://bucket/…``), one storage per bucket.

    Jobs read by URI rather than through the version's root, since a logical version's files
    may live anywhere.
    """

    def __init__(self, oss_config: OssConfig | None = None):
        self._oss_config = oss_config
        self._buckets: dict[str, OssStorage] = {}
        self._local = LocalStorage("/")

    def storage_for(self, uri: str) -> tuple[Storage, str]:
        if uri.startswith("oss://"):
            bucket = uri[len("oss://"):].split("/", 1)[0]
            if bucket not in self._buckets:
                self._buckets[bucket] = OssStorage(f"oss://{bucket}/", self._oss_config)
            storage: Storage = self._buckets[bucket]
        else:
            storage = self._local
        return storage, storage.key_of(uri)

    def read(self, uri: str) -> bytes:
        storage, key = self.storage_for(uri)
        return storage.read(key)

    def signed_url(self, uri: str, expires_s: int = 3600) -> str:
        storage, key = self.storage_for(uri)
        return storage.signed_url(key, expires_s)
