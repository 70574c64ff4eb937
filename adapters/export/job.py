"""FileMetaExport as a dataset job: a query's matches, streamed into an export folder."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..metadata import MetadataStore
from ..storage import OssConfig
from .exporter import ExportResult, export_file_metas, query_record

if TYPE_CHECKING:
    from mmdm.query import Query

    from ..search import SearchService


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
    rows_per_file: int = 20_000,
    now: datetime | None = None,
    job_id: str | None = None,
) -> ExportResult:
    """:func:`export_file_metas` recorded as a FileMetaExport job (spec, logs, counts);
    ``job_id``: a ``Pending`` job to run (CreateDatasetJob made it) instead of a new one."""
    ds = store.get_dataset(dataset_id)
    record = query_record(query)
    spec = {"query": record, "filteredAttributes": filtered_attributes,
            "exportDirUri": export_dir_uri}
    job = (store.adopt_pending_job(job_id, ds.dataset_id, version, "FileMetaExport", spec)
           if job_id else store.create_job(ds.dataset_id, version, "FileMetaExport",
                                           job_spec=spec, description=description))
    store.start_job(job.job_id)
    store.append_job_log(job.job_id, f"Job started: exporting {record['dsl'] or 'all files'}")
    try:
        result = export_file_metas(
            store, ds.dataset_id, version, export_dir_uri=export_dir_uri, query=query,
            filtered_attributes=filtered_attributes, search=search, job_id=job.job_id,
            oss_config=oss_config, rows_per_file=rows_per_file, now=now)
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
