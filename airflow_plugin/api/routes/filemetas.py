"""ListDatasetFileMetas, an image-upload search, GetDatasetFileMeta, user-tag edits, and
Create/DeleteDatasetFileMetas.

The list route reads the raw query string (repeated names become lists, PAI also accepts
comma-joined ones) and hands it to ``query.parse_params`` unchanged, so an unknown parameter
is a 400 naming the nearest known one rather than being silently ignored. The parameters are
still declared in the OpenAPI document, from ``LIST_PARAMS``.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from mmdm.adapters.errors import NotFoundError
from mmdm.adapters.ids import file_meta_id
from mmdm.adapters.metadata import FileMeta, MetadataStore
from mmdm.adapters.metadata.model import TAG_GROUPS
from mmdm.adapters.storage.roots import within_any
from mmdm.adapters.timeutil import from_iso, now_ms
from mmdm.query import parse_params

from .. import deps
from ..context import ApiContext
from ..errors import ApiError, bad_parameter
from ..responses import PaiJSONResponse
from ..shapes import FileUrls, list_response
from ..thumbnails import parse_mode

router = APIRouter(prefix="/api/v1/datasets/{DatasetId}/datasetfilemetas", tags=["file metas"])

# (name, OpenAPI type, description): PAI's ListDatasetFileMetas request (pai-compat §2.2).
LIST_PARAMS: tuple[tuple[str, str, str], ...] = (
    ("DatasetVersion", "string", "version name, e.g. v1 (default: the newest version)"),
    ("WorkspaceId", "string", "accepted and ignored (one workspace)"),
    ("QueryExpression", "string", "the QueryExpression DSL; excludes the other query params"),
    ("QueryType", "string", "MIX, TAG or VECTOR"),
    ("QueryText", "string", "text to search (with QueryType=TAG: a required tag)"),
    ("QueryImage", "string", "Uri of a dataset file to search by image"),
    ("QueryAudio", "string", "Uri of a dataset's audio file (ONE-PEACE indexes only)"),
    ("TopK", "integer", "max vector hits, 1-5000 (default 10)"),
    ("ScoreThreshold", "number", "only scores strictly greater than this"),
    ("QueryTagsIncludeAll", "string", "comma-separated: must carry all"),
    ("QueryTagsIncludeAny", "string", "comma-separated: must carry at least one"),
    ("QueryTagsExclude", "string", "comma-separated: must carry none"),
    ("QueryFileName", "string", "fuzzy file-name match"),
    ("QueryFileDir", "string", "fuzzy directory match"),
    ("QueryFileTypeIncludeAny", "string", "comma-separated, e.g. image"),
    ("QueryContentTypeIncludeAny", "string", "comma-separated, e.g. image/jpeg"),
    ("StartFileUpdateTime", "string", "ISO-8601 UTC, inclusive"),
    ("EndFileUpdateTime", "string", "ISO-8601 UTC, inclusive"),
    ("StartTagUpdateTime", "string", "ISO-8601 UTC, inclusive"),
    ("EndTagUpdateTime", "string", "ISO-8601 UTC, inclusive"),
    ("DatasetFileMetaIds", "string", "comma-separated meta ids"),
    ("Status", "string", "ACTIVE (default), ALL or DELETED"),
    ("SortBy", "string", "FileCreateTime or FileUpdateTime (default: relevance / key)"),
    ("Order", "string", "ASC or DESC"),
    ("MaxResults", "integer", "page size 1-100 (default 10)"),
    ("PageSize", "integer", "deprecated; MaxResults wins"),
    ("NextToken", "string", "from the previous page"),
    ("ThumbnailMode", "string", "ThumbnailUrl's mode, e.g. w_200 or m_fill,w_100,h_100"),
    ("IndexSetId", "string", "the index set a vector query searches (default: the version's "
                             "newest of IndexContent; see .../versions/{VersionName}/indexsets)"),
    ("TextFactor", "number", "weight of QueryText beside an image, 0.01-100 (default 1)"),
    ("ImageFactor", "number", "weight of the image beside QueryText, 0.01-100 (default 1)"),
    ("AudioFactor", "number", "weight of QueryAudio in a fused query, 0.01-100 (default 1)"),
    ("IndexContent", "string", "file (default: rank the images' vectors) or description (rank "
                               "the descriptions': text-to-text, image-to-text)"),
    ("ExactTotalCount", "boolean", "count every match (default: past 1,000 matches that "
                                   "the planner puts at 10,000 or more, TotalCount is its "
                                   "estimate, TotalCountIsEstimate true)"),
)
_OPENAPI = {"parameters": [
    {"name": n, "in": "query", "required": False, "schema": {"type": t}, "description": d}
    for n, t, d in LIST_PARAMS]}


def _params(items: list[tuple[str, str]]) -> dict[str, Any]:
    """Repeated names become lists; single ones stay strings (parse_params splits commas)."""
    out: dict[str, Any] = {}
    for name, value in items:
        if name in out:
            prev = out[name]
            out[name] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[name] = value
    return out


def _search(ctx: ApiContext, request: Request, dataset_id: str, params: dict[str, Any],
            upload: bytes | None = None) -> dict[str, Any]:
    store = ctx.store()
    ds = store.get_dataset(dataset_id)
    version = deps.version_name(store, ds.dataset_id, params.get("DatasetVersion"))
    index_set = params.pop("IndexSetId", None)  # mmdm's, not a filter: parse_params refuses it
    if index_set is not None and not isinstance(index_set, str):
        raise bad_parameter("IndexSetId", "give one IndexSetId")
    exact = str(params.pop("ExactTotalCount", "false")).lower()  # mmdm's too
    if exact not in ("true", "false"):
        raise bad_parameter("ExactTotalCount", "ExactTotalCount is true or false")
    query = parse_params(params)
    mode = query.option("ThumbnailMode")
    parse_mode(None if mode is None else str(mode))  # a bad mode is a 400 now, not per image
    page = ctx.search().search(ds.dataset_id, version, query, query_image=upload,
                               index_set_id=index_set or None, exact_count=exact == "true")
    urls = FileUrls(deps.base_url(request), ds.dataset_id, None if mode is None else str(mode))
    return list_response(page, ds.dataset_id, version, urls)


@router.get("", openapi_extra=_OPENAPI)
def list_file_metas(DatasetId: str, request: Request,
                    ctx: ApiContext = Depends(deps.context)) -> PaiJSONResponse:
    """ListDatasetFileMetas: one page of a query's matches, with Score on vector hits."""
    # The page as it is: FastAPI's validation of a returned dict walked every field again.
    return PaiJSONResponse(_search(ctx, request, DatasetId,
                                   _params(request.query_params.multi_items())))


@router.post("/search", openapi_extra={
    "requestBody": {"content": {"multipart/form-data": {"schema": {
        "type": "object", "properties": {
            "Image": {"type": "string", "format": "binary"},
            **{n: {"type": t, "description": d} for n, t, d in LIST_PARAMS}}}}}}})
async def search_by_upload(DatasetId: str, request: Request,
                           ctx: ApiContext = Depends(deps.context)) -> PaiJSONResponse:
    """ListDatasetFileMetas with an uploaded query image (multipart field ``Image``); the other
    parameters may come as form fields or in the query string. Page 2 re-sends the image."""
    form = await request.form()
    upload: bytes | None = None
    fields: list[tuple[str, str]] = list(request.query_params.multi_items())
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name != "Image":
                raise bad_parameter(name, f"unexpected file field {name!r}: send it as 'Image'")
            upload = await value.read() or None
        else:
            fields.append((name, value))
    return PaiJSONResponse(await run_in_threadpool(_search, ctx, request, DatasetId,
                                                   _params(fields), upload))


@router.get("/{DatasetFileMetaId}")
def get_file_meta(DatasetId: str, DatasetFileMetaId: str, request: Request,
                  ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    """GetDatasetFileMeta (plus DownloadUrl/ThumbnailUrl, which the gallery needs)."""
    store = ctx.store()
    ds = store.get_dataset(DatasetId)
    meta = deps.file_meta(store, ds.dataset_id, DatasetFileMetaId)
    urls = FileUrls(deps.base_url(request), ds.dataset_id, None)
    return {"DatasetFileMeta": {**meta.to_pai(), "FileDir": meta.file_dir,
                                "DownloadUrl": urls.download(meta),
                                "ThumbnailUrl": urls.thumbnail(meta)},
            "DatasetId": ds.dataset_id, "DatasetVersion": meta.dataset_version}


# -- UpdateDatasetFileMetas (manual tag edits) --------------------------------------------------
class TagEdit(BaseModel):
    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)


class FileMetaUpdate(BaseModel):
    # Extra fields are kept so they can be refused per item instead of silently dropped.
    model_config = ConfigDict(extra="allow")
    DatasetFileMetaId: str
    Tags: dict[str, TagEdit | list[str]] | str | None = None
    Comment: str | None = Field(None, max_length=4096)


class UpdateFileMetasRequest(BaseModel):
    DatasetFileMetas: list[FileMetaUpdate]
    DatasetVersion: str | None = None
    WorkspaceId: str | None = None
    TagJobId: str | None = None


EDITABLE_GROUPS = {"user": "user", "user-delete-ai-tags": "deleted"}


def _tag_edits(item: FileMetaUpdate) -> dict[str, list[str]]:
    """The edit of ``apply_tag_edits`` one item asks for; ValueError names what is refused.

    Per group, ``{"add": [...], "remove": [...]}`` edits the list and a plain list replaces it
    (as PAI's write-back replaces ``ai``). ``Tags`` may come as a JSON string, as PAI's SDK
    sends it."""
    if item.model_extra:
        raise ValueError(f"only Tags and Comment can be edited here (the rest is the scan's), "
                         f"not {sorted(item.model_extra)}")
    tags = item.Tags
    if isinstance(tags, str):
        parsed = json.loads(tags or "{}")  # a JSONDecodeError is a ValueError too
        if not isinstance(parsed, dict):
            raise ValueError("Tags must be a JSON object of tag groups, e.g. "
                             '{"user": {"add": ["a"], "remove": []}}')
        tags = FileMetaUpdate(DatasetFileMetaId=item.DatasetFileMetaId, Tags=parsed).Tags
    edit: dict[str, list[str]] = {}
    for group, change in (tags or {}).items():  # type: ignore[union-attr]
        if group not in EDITABLE_GROUPS:
            raise ValueError(f"tag group {group!r} cannot be edited by hand: only "
                             "user and user-delete-ai-tags (ai tags come from tagging jobs)")
        prefix = EDITABLE_GROUPS[group]
        if isinstance(change, list):
            edit[f"{prefix}_set"] = [t.strip() for t in change if t.strip()]
        else:
            edit[f"{prefix}_add"] = [t.strip() for t in change.add if t.strip()]
            edit[f"{prefix}_remove"] = [t.strip() for t in change.remove if t.strip()]
    return edit


def _checked_edits(store: MetadataStore, dataset_id: str, version: str | None,
                   item: FileMetaUpdate, known: dict[str, str]) -> dict[str, list[str]] | str:
    """The item's edit, or why it fails. ``known``: file ids already found (id -> meta id)."""
    try:
        if item.DatasetFileMetaId not in known:
            meta = deps.file_meta(store, dataset_id, item.DatasetFileMetaId)
            if version and meta.dataset_version != version:
                raise NotFoundError("not in this version")
            known[item.DatasetFileMetaId] = meta.file_meta_id
        return _tag_edits(item)
    except NotFoundError:
        return "Not Found"
    except ValueError as err:
        return str(err)


@router.put("")
def update_file_metas(DatasetId: str, body: UpdateFileMetasRequest,
                      ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    """UpdateDatasetFileMetas' manual edit: ``add``/``remove`` on ``user`` and
    ``user-delete-ai-tags``, and the ``Comment``. Items succeed or fail one by one, as in PAI;
    a file's items are applied in order and written once."""
    if body.TagJobId:
        raise ApiError(400, "InvalidParameter.TagJobId",
                       "algorithm write-back (TagJobId) is done by IntelligentTag jobs")
    store = ctx.store()
    ds = store.get_dataset(DatasetId)
    failed, known = [], {}
    edits: dict[str, list[dict[str, list[str]]]] = {}
    comments: dict[str, str] = {}
    for item in body.DatasetFileMetas:
        edit = _checked_edits(store, ds.dataset_id, body.DatasetVersion, item, known)
        if isinstance(edit, str):
            failed.append({"DatasetFileMetaId": item.DatasetFileMetaId, "Result": edit})
            continue
        edits.setdefault(known[item.DatasetFileMetaId], []).append(edit)
        if item.Comment is not None:
            comments[known[item.DatasetFileMetaId]] = item.Comment
    for file_id, comment in comments.items():
        store.set_comment(file_id, comment)
    updated = [store.apply_tag_edits(file_id, file_edits).to_pai()
               for file_id, file_edits in edits.items()]
    return {"Status": not failed, "FailedDetails": failed, "DatasetFileMetas": updated}


# -- CreateDatasetFileMetas / DeleteDatasetFileMetas ---------------------------------------------
class FileMetaCreate(BaseModel):
    Uri: str
    FileUpdateTime: str
    FileFingerPrint: str
    FileType: str
    ContentType: str
    FileName: str | None = None
    Comment: str | None = None
    FileCreateTime: str | None = None
    DataSize: int | None = None
    MetaAttributes: str | dict[str, Any] | None = None
    Tags: str | dict[str, list[str]] | None = None


class CreateFileMetasRequest(BaseModel):
    DatasetFileMetas: list[FileMetaCreate] = Field(max_length=1000)
    DatasetVersion: str | None = None
    WorkspaceId: str | None = None


def _json_object(value: str | dict[str, Any] | None, name: str) -> dict[str, Any]:
    parsed = json.loads(value) if isinstance(value, str) and value else value or {}
    if not isinstance(parsed, dict):
        raise ValueError(f"{name} must be a JSON object")
    return parsed


def _new_meta(store: MetadataStore, dataset_id: str, version: str, root: str | None,
              item: FileMetaCreate) -> FileMeta:
    """The meta an item asks for; ValueError names what is wrong with it. The Uri must lie
    under one of the server's datasets (the file server reads what metas name)."""
    if not within_any(item.Uri, store.dataset_roots()):
        raise ValueError("the Uri is not under a registered dataset folder")
    tags = _json_object(item.Tags, "Tags")
    if set(tags) - set(TAG_GROUPS):
        raise ValueError(f"Tags has groups other than {', '.join(TAG_GROUPS)}")
    key = item.Uri[len(root):].lstrip("/") if root and item.Uri.startswith(root) else ""
    return FileMeta.from_record({
        "DatasetFileMetaId": file_meta_id(dataset_id, version, item.Uri), "Uri": item.Uri,
        "FileName": item.FileName or posixpath.basename(item.Uri.rstrip("/")),
        "FileDir": posixpath.dirname(key), "DataSize": item.DataSize,
        "FileFingerPrint": item.FileFingerPrint, "FileType": item.FileType,
        "ContentType": item.ContentType, "Comment": item.Comment,
        "FileCreateTime": from_iso(item.FileCreateTime) if item.FileCreateTime else None,
        "FileUpdateTime": from_iso(item.FileUpdateTime),
        "MetaAttributes": _json_object(item.MetaAttributes, "MetaAttributes"),
        "Tags": {g: [str(t) for t in tags.get(g) or []] for g in TAG_GROUPS},
        "SyncTime": now_ms()}, dataset_id=dataset_id, dataset_version=version)


@router.post("")
def create_file_metas(DatasetId: str, body: CreateFileMetasRequest,
                      ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    """CreateDatasetFileMetas: register files by hand (an existing Uri is overwritten). Items
    succeed or fail one by one; ``Status`` is true only when all succeeded."""
    store = ctx.store()
    ds = store.get_dataset(DatasetId)
    version = store.get_version(ds.dataset_id,
                                deps.version_name(store, ds.dataset_id, body.DatasetVersion))
    root = (version.uri or ds.uri).rstrip("/")
    metas, failed = [], []
    for item in body.DatasetFileMetas:
        try:
            metas.append(_new_meta(store, ds.dataset_id, version.version_name, root, item))
        except (ValueError, TypeError) as err:
            failed.append({"Uri": item.Uri, "Result": str(err)})
    store.upsert_file_metas(metas)
    succeeded = [{"DatasetFileMetaId": m.file_meta_id, "Uri": m.uri, "Result": "Succeeded"}
                 for m in metas]
    return {"Status": not failed, "FailedDetails": failed, "SucceedDetails": succeeded}


@router.delete("")
def delete_file_metas(DatasetId: str, DatasetFileMetaIds: str, DatasetVersion: str | None = None,
                      WorkspaceId: str | None = None,
                      ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    """DeleteDatasetFileMetas: logical, as in PAI (listed again with Status=DELETED or ALL)."""
    store = ctx.store()
    ds = store.get_dataset(DatasetId)
    version = deps.version_name(store, ds.dataset_id, DatasetVersion)
    wanted = [i.strip() for i in DatasetFileMetaIds.split(",") if i.strip()]
    if len(wanted) > 1000:
        raise bad_parameter("DatasetFileMetaIds", "at most 1000 ids per request")
    found = set(store.delete_file_metas(ds.dataset_id, version, wanted))
    failed = [{"DatasetFileMetaId": i, "Result": "Not Found"} for i in wanted if i not in found]
    return {"Status": not failed, "FailedDetails": failed}
