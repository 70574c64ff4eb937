"""FileMetaImport: fill a logical dataset version from an export manifest or another version."""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import AdapterError
from ..ids import file_meta_id
from ..metadata import FileMeta, MetadataStore
from ..storage import OssConfig, UriReader
from ..timeutil import now_ms
from .manifest import Manifest
from .rows import meta_from_row, parse_attributes

# PAI always imports these; the rest follow ``filteredAttributes``.
ALWAYS_IMPORTED = ("Uri", "FileName", "FileFingerPrint", "DataSize", "FileType", "ContentType")


def read_manifest(manifest_uri: str, reader: UriReader) -> Manifest:
    return Manifest.from_yaml(reader.read(manifest_uri).decode())


def iter_manifest_rows(manifest_uri: str, reader: UriReader) -> Iterator[dict[str, Any]]:
    """Every row of an export, part by part, each part's checksum verified first."""
    manifest = read_manifest(manifest_uri, reader)
    folder = posixpath.dirname(manifest_uri)
    for part in manifest.files:
        data = reader.read(f"{folder}/{part.path}")
        if hashlib.sha256(data).hexdigest() != part.sha256:
            raise AdapterError(f"{part.path} does not match its checksum in the manifest",
                               is_input_error=True)
        for line in data.splitlines():
            if line.strip():
                yield json.loads(line)


def import_file_metas(
    store: MetadataStore,
    dataset_id: str,
    version: str,
    *,
    manifest_uri: str | None = None,
    source_rows: Iterable[dict[str, Any]] | None = None,
    import_mode: str = "append",
    filtered_attributes: str | list[str] | None = None,
    oss_config: OssConfig | None = None,
    batch_size: int = 2000,
    job_id: str | None = None,
) -> dict[str, Any]:
    """Import metas into a LOGICAL version, as a FileMetaImport job.

    Exactly one of ``manifest_uri`` (an export's manifest) and ``source_rows`` (the export
    rows of a query over another version: :func:`iter_export_rows`) is given. ``append``
    overwrites rows with the same Uri; ``replace`` first logically deletes the version's
    existing rows. ``job_id``: a ``Pending`` job to run (CreateDatasetJob made it).
    """
    if (manifest_uri is None) == (source_rows is None):
        raise AdapterError("give either manifest_uri or source_rows", is_input_error=True)
    if import_mode not in ("append", "replace"):
        raise AdapterError(f"importMode must be append or replace, not {import_mode!r}",
                           is_input_error=True)
    ds = store.get_dataset(dataset_id)
    target = store.get_version(ds.dataset_id, version)
    if target.source_type != "LOGICAL":
        raise AdapterError(f"{ds.dataset_id}/{version} is not a logical version: a scan of its "
                           "storage would delete imported rows", is_input_error=True)
    attributes = tuple(dict.fromkeys([*ALWAYS_IMPORTED, *parse_attributes(filtered_attributes)]))
    spec = {"manifestUri": manifest_uri, "importMode": import_mode,
            "filteredAttributes": list(attributes)}
    job = (store.adopt_pending_job(job_id, ds.dataset_id, version, "FileMetaImport", spec)
           if job_id else store.create_job(ds.dataset_id, version, "FileMetaImport",
                                           job_spec=spec))
    store.start_job(job.job_id)
    rows = (iter_manifest_rows(manifest_uri, UriReader(oss_config)) if manifest_uri is not None
            else source_rows or ())
    count = 0
    try:
        if import_mode == "replace":
            store.execute("UPDATE file_metas SET status = 'DELETED', sync_time = ? "
                          "WHERE dataset_id = ? AND dataset_version = ?",
                          (now_ms(), ds.dataset_id, version))
        batch: list[FileMeta] = []
        for row in rows:
            batch.append(meta_from_row(
                row, dataset_id=ds.dataset_id, dataset_version=version,
                file_meta_id=file_meta_id(ds.dataset_id, version, row["Uri"]),
                attributes=attributes))
            if len(batch) >= batch_size:
                count += _flush(store, batch)
        count += _flush(store, batch)
        store.refresh_statistics_after(count)
    except BaseException as exc:
        store.append_job_log(job.job_id, f"Job failed: {exc}", level="ERROR")
        store.finish_job(job.job_id, "Failed", {"error": str(exc), "RowCount": count})
        raise
    result = {"DatasetJobId": job.job_id, "RowCount": count, "DatasetVersion": version}
    store.update_job_counts(job.job_id, total=count, completed=count, failed=0)
    store.append_job_log(job.job_id, f"Imported {count} file metas ({import_mode})")
    store.finish_job(job.job_id, "Succeeded", result)
    return result


def _flush(store: MetadataStore, batch: list[FileMeta]) -> int:
    n = len(batch)
    if batch:
        now = now_ms()
        store.upsert_file_metas([FileMeta(**{**m.__dict__, "status": "ACTIVE", "sync_time": now})
                                 for m in batch])
        batch.clear()
    return n
