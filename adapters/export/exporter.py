"""FileMetaExport: stream file metas into JSONL part files plus a manifest.

Rows are written part by part (``rows_per_file`` at a time), so an export of any size holds
one part in memory. The folder is ``{datasetId}-{version}-{yyyy-MM-dd-HH-mm-ss}`` under the
export directory, as PAI names it; the manifest is written last, so a folder with a manifest
is complete.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from mmdm.query import Query, parse, parse_params, to_dsl, to_json

from ..errors import AdapterError, AlreadyExistsError, NotFoundError
from ..metadata import MetadataStore
from ..search import SearchService
from ..storage import OssConfig, Storage, open_storage
from ..timeutil import to_iso
from .manifest import MANIFEST_NAME, Manifest, PartFile
from .rows import EXPORT_ATTRIBUTES, export_columns, parse_attributes


@dataclass(frozen=True)
class ExportResult:
    folder_uri: str
    manifest_uri: str
    row_count: int
    job_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"ExportUri": self.folder_uri, "ManifestUri": self.manifest_uri,
                "RowCount": self.row_count, "DatasetJobId": self.job_id}


def as_query(query: Query | str | Mapping[str, Any] | None) -> Query:
    """A DSL string, ListDatasetFileMetas-style parameters, a Query, or None (everything)."""
    if query is None or query == "":
        return parse_params({})
    if isinstance(query, Query):
        return query
    if isinstance(query, str):
        return parse(query)
    index_set_of(query)  # checked with the rest
    return parse_params({k: v for k, v in query.items() if k != "IndexSetId"})


def index_set_of(query: Query | str | Mapping[str, Any] | None) -> str | None:
    """``IndexSetId`` among ListDatasetFileMetas-style parameters, as the gallery sends them
    with a search: mmdm's, not a filter. A vector query searches that index set."""
    value = query.get("IndexSetId") if isinstance(query, Mapping) else None
    if value is not None and not isinstance(value, str):
        raise AdapterError("give one IndexSetId", is_input_error=True)
    return value or None


def query_record(query: Query | str | Mapping[str, Any] | None) -> dict[str, Any]:
    """How the manifest and the job spec record a query: DSL text, AST JSON, parameters."""
    q = as_query(query)
    record: dict[str, Any] = {"dsl": to_dsl(q), "ast": to_json(q)}
    if isinstance(query, Mapping):
        record["params"] = dict(query)
    return record


def export_file_metas(
    store: MetadataStore,
    dataset_id: str,
    version: str,
    *,
    export_dir_uri: str,
    query: Query | str | Mapping[str, Any] | None = None,
    filtered_attributes: str | list[str] | None = None,
    search: SearchService | None = None,
    job_id: str | None = None,
    oss_config: OssConfig | None = None,
    rows_per_file: int = 20_000,
    now: datetime | None = None,
) -> ExportResult:
    """Write every match of ``query`` (no top-k cap unless it sets TopK) as an export folder
    and return where. Vector queries need ``search`` to carry an embedder and a vector store.
    """
    q, index_set = as_query(query), index_set_of(query)
    dataset_id = store.get_dataset(dataset_id).dataset_id
    search = search or SearchService(store)
    attributes = parse_attributes(filtered_attributes)
    now = now or datetime.now(timezone.utc)
    storage = _new_folder(export_dir_uri, f"{dataset_id}-{version}-"
                          f"{now.strftime('%Y-%m-%d-%H-%M-%S')}", oss_config)
    manifest = Manifest(
        dataset_id, version, to_iso(round(now.timestamp() * 1000)) or "", list(attributes),
        export_job_id=job_id, query=query_record(query),
        index_set_id=(index_set or search.index_set_for(dataset_id, version)) if q.semantic
        else None,
        embedding_model=getattr(search.embedder, "model", None) if q.semantic else None)
    jobs: dict[str, None] = {}  # the jobs behind the rows (bounded: a version has few)
    buffer: list[bytes] = []

    def flush() -> None:
        data = b"".join(buffer)
        name = _part_name(len(manifest.files))
        storage.write(name, data, "application/x-ndjson")
        manifest.files.append(PartFile(name, len(buffer), hashlib.sha256(data).hexdigest()))
        buffer.clear()

    columns = export_columns(attributes, store.dialect)
    for (_pk, line, tag_job, index_job, *_), _score in search.iter_match_rows(
            dataset_id, version, q, columns=columns, index_set_id=index_set):
        buffer.append(line.encode() + b"\n")
        manifest.row_count += 1
        for job in (tag_job, index_job):
            if job and job not in jobs and len(jobs) < 1000:
                jobs[job] = None
        if len(buffer) >= rows_per_file:
            flush()
    if buffer or not manifest.files:
        flush()
    manifest.source_jobs = list(jobs)
    manifest.tag_definitions = _tag_definitions(store, jobs)
    manifest_uri = storage.write(MANIFEST_NAME, manifest.to_yaml().encode(), "text/yaml")
    return ExportResult(storage.root_uri, manifest_uri, manifest.row_count, job_id)


def _new_folder(export_dir_uri: str, name: str, oss_config: OssConfig | None) -> Storage:
    """PAI's folder ``name`` under the export directory, or ``name-2``, ``name-3``, ... when
    another export of the version took it in the same second. The folder is claimed by
    creating its first part exclusively (empty until written), so two exports never share
    one, on a local disk or on OSS."""
    base = export_dir_uri.rstrip("/") + "/"
    for n in range(1, 1000):
        storage = open_storage(base + (name if n == 1 else f"{name}-{n}"), oss_config)
        try:
            storage.write(_part_name(0), b"", "application/x-ndjson", exclusive=True)
            return storage
        except AlreadyExistsError:
            continue
    raise AdapterError(f"no free export folder {name}[-n] under {export_dir_uri}")


def _part_name(index: int) -> str:
    return f"filemetas-{index:05d}.jsonl"


def iter_export_rows(search: SearchService, dataset_id: str, version: str, query: Query,
                     attributes: tuple[str, ...] = EXPORT_ATTRIBUTES,
                     index_set_id: str | None = None) -> Iterator[dict[str, Any]]:
    """The rows an export of ``query`` would write, as objects (an import from a query)."""
    columns = export_columns(attributes, search.store.dialect)
    for row, _score in search.iter_match_rows(dataset_id, version, query, columns=columns,
                                              index_set_id=index_set_id):
        yield orjson.loads(row[1])


def _tag_definitions(store: MetadataStore, jobs: Iterable[str]) -> list[dict[str, Any]]:
    """The tag definitions of the tagging jobs among ``jobs``. A job deleted since
    (DeleteDatasetJob keeps what it wrote) is only named in the source jobs."""
    out = []
    for job_id in jobs:
        try:
            spec = store.get_job(job_id).job_spec
        except NotFoundError:
            continue
        if "promptId" in spec:
            out.append({"promptId": spec["promptId"], "revision": spec.get("promptRevision"),
                        "tagJobId": job_id, "modelId": spec.get("modelId")})
    return out
