"""FileMetaExport as a dataset job: a query's matches, streamed into an export folder."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..metadata import MetadataStore
from ..storage import OssConfig
from .exporter import ExportResult, export_file_metas

if TYPE_CHECKING:
    from query import Query

    from ..search import SearchService


def as_query(query: Query | str | Mapping[str, Any] | None) -> Query:
    """A DSL string, ListDatasetFileMetas-style parameters, a Query, or None (everything)."""
    from query import Query, parse, parse_params

    if query is None or query == "":
        return parse_params({})
    if isinstance(query, Query):
        return query
    if isinstance(query, str):
        return parse(query)
    return parse_params(dict(query))


def run_export_job(
    store: MetadataStore,
    dataset_id: str,
    version: str,
    *,
    export_dir_uri: str,
    query: Query | str | Mapping[str, Any] | None = None,
    filtered_attributes: str | list[str] | None = None,
    search: SearchService | None = None,
    oss_config: OssConfig | None = None,
    description: str | None = None,
) -> ExportResult:
    """Export every match of ``query`` (no top-k cap unless the query sets TopK).

    Vector queries need ``search`` to carry an embedder and a vector store.
    """
    from query import to_dsl, to_json

    from ..search import SearchService

    q = as_query(query)
    ds = store.get_dataset(dataset_id)
    search = search or SearchService(store)
    query_record = {"dsl": to_dsl(q), "ast": to_json(q)}
    if isinstance(query, Mapping):
        query_record["params"] = dict(query)
    spec = {"query": query_record, "filteredAttributes": filtered_attributes,
            "exportDirUri": export_dir_uri}
    job = store.create_job(ds.dataset_id, version, "FileMetaExport", job_spec=spec,
                           description=description)
    store.start_job(job.job_id)
    store.append_job_log(job.job_id, f"Job started: exporting {query_record['dsl'] or 'all files'}")
    try:
        metas = (meta for meta, _score in search.iter_matches(ds.dataset_id, version, q))
        result = export_file_metas(
            store, ds.dataset_id, version, metas, export_dir_uri=export_dir_uri,
            filtered_attributes=filtered_attributes, query=query_record,
            index_set_id=search.index_set_for(ds.dataset_id, version) if q.semantic else None,
            embedding_model=getattr(search.embedder, "model", None) if q.semantic else None,
            job_id=job.job_id, oss_config=oss_config)
    except BaseException as exc:
        store.append_job_log(job.job_id, f"Job failed: {exc}", level="ERROR")
        store.finish_job(job.job_id, "Failed", {"error": str(exc)})
        raise
    store.update_job_counts(job.job_id, total=result.row_count, completed=result.row_count,
                            failed=0)
    store.append_job_log(job.job_id, f"Exported {result.row_count} file metas to "
                                     f"{result.manifest_uri}")
    store.finish_job(job.job_id, "Succeeded", result.to_dict())
    return result
