"""FileMetaExport: stream file metas into JSONL part files plus a manifest.

Rows are written part by part (``rows_per_file`` at a time), so an export of any size holds
one part in memory. The folder is ``{datasetId}-{version}-{yyyy-MM-dd-HH-mm-ss}`` under the
export directory, as PAI names it; the manifest is written last, so a folder with a manifest
is complete.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from ..metadata import FileMeta, MetadataStore
from ..storage import OssConfig, open_storage
from ..timeutil import to_iso
from .manifest import MANIFEST_NAME, Manifest, PartFile
from .rows import export_row, parse_attributes


@dataclass(frozen=True)
class ExportResult:
    folder_uri: str
    manifest_uri: str
    row_count: int
    job_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"ExportUri": self.folder_uri, "ManifestUri": self.manifest_uri,
                "RowCount": self.row_count, "DatasetJobId": self.job_id}


class _Lineage:
    """The jobs behind the exported rows (bounded: a version has few jobs)."""

    def __init__(self) -> None:
        self.jobs: dict[str, None] = {}

    def see(self, meta: FileMeta) -> None:
        for job_id in (meta.tag_job_id, meta.semantic_index_job_id):
            if job_id and job_id not in self.jobs and len(self.jobs) < 1000:
                self.jobs[job_id] = None

    def tag_definitions(self, store: MetadataStore) -> list[dict[str, Any]]:
        out = []
        for job_id in self.jobs:
            spec = store.get_job(job_id).job_spec
            if "promptId" in spec:
                out.append({"promptId": spec["promptId"], "revision": spec.get("promptRevision"),
                            "tagJobId": job_id, "modelId": spec.get("modelId")})
        return out


def export_file_metas(
    store: MetadataStore,
    dataset_id: str,
    version: str,
    metas: Iterable[FileMeta],
    *,
    export_dir_uri: str,
    filtered_attributes: str | list[str] | None = None,
    query: dict[str, Any] | None = None,
    index_set_id: str | None = None,
    embedding_model: str | None = None,
    job_id: str | None = None,
    oss_config: OssConfig | None = None,
    rows_per_file: int = 20_000,
    now: datetime | None = None,
) -> ExportResult:
    """Write ``metas`` (any iterable, consumed once) as an export folder and return where."""
    attributes = parse_attributes(filtered_attributes)
    now = now or datetime.now(timezone.utc)
    folder = f"{dataset_id}-{version}-{now.strftime('%Y-%m-%d-%H-%M-%S')}"
    storage = open_storage(export_dir_uri.rstrip("/") + "/" + folder, oss_config)
    manifest = Manifest(dataset_id, version, to_iso(int(now.timestamp() * 1000)) or "",
                        list(attributes), export_job_id=job_id, query=query or {},
                        index_set_id=index_set_id, embedding_model=embedding_model)
    lineage = _Lineage()
    buffer: list[bytes] = []

    def flush() -> None:
        data = b"".join(buffer)
        name = f"filemetas-{len(manifest.files):05d}.jsonl"
        storage.write(name, data, "application/x-ndjson")
        manifest.files.append(PartFile(name, len(buffer), hashlib.sha256(data).hexdigest()))
        buffer.clear()

    for meta in metas:
        lineage.see(meta)
        buffer.append(orjson.dumps(export_row(meta, attributes)) + b"\n")
        manifest.row_count += 1
        if len(buffer) >= rows_per_file:
            flush()
    if buffer or not manifest.files:
        flush()
    manifest.source_jobs = list(lineage.jobs)
    manifest.tag_definitions = lineage.tag_definitions(store)
    manifest_uri = storage.write(MANIFEST_NAME, manifest.to_yaml().encode(), "text/yaml")
    return ExportResult(storage.root_uri, manifest_uri, manifest.row_count, job_id)
