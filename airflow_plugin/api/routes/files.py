"""File bytes and thumbnails, read through the storage adapters (local folders and OSS)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from .. import deps
from ..context import ApiContext
from ..thumbnails import ThumbnailCache, parse_mode, render

router = APIRouter(prefix="/api/v1/datasets/{DatasetId}", tags=["files"])

# Private: the bytes are behind the Airflow login. The ETag covers the content, so a day of
# browser caching is safe and revalidation is a cheap 304.
CACHE_CONTROL = "private, max-age=86400"


def _cached_response(request: Request, body_etag: str, make_body, media_type: str) -> Response:
    etag = f'"{body_etag}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(make_body(), media_type=media_type, headers=headers)


@router.get("/files/{DatasetFileMetaId}", response_class=Response)
def get_file(DatasetId: str, DatasetFileMetaId: str, request: Request,
             ctx: ApiContext = Depends(deps.context)) -> Response:
    """The file itself (DownloadUrl)."""
    store = ctx.store()
    ds = store.get_dataset(DatasetId)
    meta = deps.file_meta(store, ds.dataset_id, DatasetFileMetaId)
    etag = ThumbnailCache.key(meta.file_meta_id, meta.file_fingerprint, "original")
    return _cached_response(request, etag, lambda: ctx.reader().read(meta.uri),
                            meta.content_type or "application/octet-stream")


@router.get("/thumbnails/{DatasetFileMetaId}", response_class=Response)
def get_thumbnail(DatasetId: str, DatasetFileMetaId: str, request: Request,
                  ThumbnailMode: str | None = None,
                  ctx: ApiContext = Depends(deps.context)) -> Response:
    """A JPEG thumbnail in PAI's ThumbnailMode grammar (default ``w_200``), cached on disk."""
    spec = parse_mode(ThumbnailMode)  # validate before touching the store
    store = ctx.store()
    ds = store.get_dataset(DatasetId)
    meta = deps.file_meta(store, ds.dataset_id, DatasetFileMetaId)
    cache = ctx.thumbnails()
    key = cache.key(meta.file_meta_id, meta.file_fingerprint, repr(spec))
    return _cached_response(
        request, key,
        lambda: cache.get_or_make(key, lambda: render(ctx.reader().read(meta.uri), spec)),
        "image/jpeg")
