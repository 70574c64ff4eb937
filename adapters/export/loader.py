"""Read an export folder on the training side: a map-style dataset without importing torch.

``ExportDataset(uri)`` has ``__len__`` and ``__getitem__`` (so ``torch.utils.data.DataLoader``
takes it as it is) and iterates in order. Rows are found by byte offset, so random access to
row 900,000 reads one line; part files from OSS are fetched once into a local cache folder.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from PIL import Image

from ..errors import AdapterError
from ..storage import OssConfig, UriReader
from ..storage.local import local_path
from .manifest import MANIFEST_NAME, Manifest

Sample = dict[str, Any]


class ExportDataset:
    """Samples ``{"uri", "image", "tags", "meta"}`` from an export.

    Args:
        uri: the export folder or its manifest (``file://``, a path, or ``oss://``).
        load_images: read each image (a PIL RGB image); False leaves ``image`` as None.
        transform: applied to each sample before it is returned.
        cache_dir: where OSS part files are kept (default: a temporary folder).
    """

    def __init__(self, uri: str, *, oss_config: OssConfig | None = None,
                 load_images: bool = True, transform: Callable[[Sample], Any] | None = None,
                 cache_dir: str | None = None):
        manifest_uri = uri if uri.endswith(".yaml") else uri.rstrip("/") + "/" + MANIFEST_NAME
        self.reader = UriReader(oss_config)
        self.manifest = Manifest.from_yaml(self.reader.read(manifest_uri).decode())
        self.load_images = load_images
        self.transform = transform
        folder = manifest_uri.rsplit("/", 1)[0]
        self._paths = [self._local_copy(f"{folder}/{p.path}", p.sha256, cache_dir)
                       for p in self.manifest.files]
        self._offsets = [_line_offsets(p) for p in self._paths]
        self._starts = list(np.cumsum([0, *[len(o) for o in self._offsets]]))

    def _local_copy(self, uri: str, sha256: str, cache_dir: str | None) -> str:
        if not uri.startswith("oss://"):
            return str(local_path(uri))
        folder = cache_dir or os.path.join(tempfile.gettempdir(), "mmdm-export-cache")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, sha256 + ".jsonl")
        if not os.path.exists(path):
            data = self.reader.read(uri)
            if hashlib.sha256(data).hexdigest() != sha256:
                raise AdapterError(f"{uri} does not match its checksum", is_input_error=True)
            with open(path + ".part", "wb") as fh:
                fh.write(data)
            os.replace(path + ".part", path)
        return path

    def __len__(self) -> int:
        return int(self._starts[-1])

    def row(self, index: int) -> dict[str, Any]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        part = bisect.bisect_right(self._starts, index) - 1
        with open(self._paths[part], "rb") as fh:
            fh.seek(int(self._offsets[part][index - self._starts[part]]))
            return json.loads(fh.readline())

    def __getitem__(self, index: int) -> Any:
        row = self.row(index)
        sample: Sample = {"uri": row["Uri"], "image": None, "tags": _tags(row), "meta": row}
        if self.load_images:
            with Image.open(io.BytesIO(self.reader.read(row["Uri"]))) as im:
                sample["image"] = im.convert("RGB")
        return self.transform(sample) if self.transform else sample

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]


def _line_offsets(path: str) -> np.ndarray:
    offsets, pos = [], 0
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                offsets.append(pos)
            pos += len(line)
    return np.asarray(offsets, dtype=np.int64)


def _tags(row: dict[str, Any]) -> list[str]:
    """The effective tags: Tags.all when exported, else what the kept groups give."""
    tags = row.get("Tags") or {}
    if "all" in tags:
        return list(tags["all"])
    removed = set(tags.get("user-delete-ai-tags") or [])
    return list(dict.fromkeys([*(t for t in tags.get("ai") or [] if t not in removed),
                               *(tags.get("user") or [])]))
