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
    "is_supported_image", "open_storage",
]
