"""PAI response shapes built from store records (PascalCase keys, ISO times, JSON strings)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from mmdm.adapters.metadata import FileMeta
from mmdm.adapters.search import SearchPage

from .thumbnails import DEFAULT_MODE


class FileUrls:
    """DownloadUrl/ThumbnailUrl of a dataset's files, served by this app (not presigned OSS
    URLs: the browser may not reach the bucket, and our routes check the Airflow login)."""

    def __init__(self, base: str, dataset_id: str, thumbnail_mode: str | None):
        self.prefix = f"{base}/api/v1/datasets/{quote(dataset_id, safe='')}"
        self.mode = quote(thumbnail_mode or DEFAULT_MODE, safe="")

    def download(self, meta: FileMeta) -> str:
        return f"{self.prefix}/files/{meta.file_meta_id}"

    def thumbnail(self, meta: FileMeta) -> str:
        # The fingerprint in the URL busts the browser cache when the file changes.
        v = quote(meta.file_fingerprint or "", safe="")
        return f"{self.prefix}/thumbnails/{meta.file_meta_id}?ThumbnailMode={self.mode}&v={v}"


def list_item(meta: FileMeta, score: float | None, urls: FileUrls) -> dict[str, Any]:
    item = meta.to_pai()
    item["FileDir"] = meta.file_dir
    if score is not None:
        item["Score"] = score
    item["DownloadUrl"] = urls.download(meta)
    item["ThumbnailUrl"] = urls.thumbnail(meta)
    return item


def list_response(page: SearchPage, dataset_id: str, version: str,
                  urls: FileUrls) -> dict[str, Any]:
    body: dict[str, Any] = {
        "TotalCount": page.total_count,
        "MaxResults": page.max_results,
        "DatasetFileMetas": [list_item(m, s, urls) for m, s in page.items],
        "DatasetId": dataset_id,
        "DatasetVersion": version,
    }
    if page.next_token:  # absent on the last page, as in PAI
        body["NextToken"] = page.next_token
    if page.total_is_estimate:  # beside PAI's TotalCount, which clients read as a number
        body["TotalCountIsEstimate"] = True
    return body
