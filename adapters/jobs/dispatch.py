"""One PAI job request (``JobAction``, ``JobMode``, ``JobSpec``) run by the job functions.

CreateDatasetJob checks a request with :func:`check_job_request` (a bad one is refused before
any job exists), records it as a ``Pending`` job, and a worker runs it with :func:`run_job`.
Where models, vector stores and credentials come from is the caller's (:class:`JobResources`):
the standalone server has only the embedded defaults, Airflow has its connections.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import AdapterError, InvalidParameterError
from ..export.exporter import as_query, index_set_of, iter_export_rows
from ..export.importer import import_file_metas
from ..export.job import run_export_job
from ..metadata import Job, MetadataStore
from ..models.base import Embedder, Tagger
from ..models.zero_shot import FirstPassTagger, ZeroShotTagger
from ..progress import ProgressCallback
from ..scan import build_file_metas
from ..search import SearchService
from ..storage import OssConfig
from ..storage.roots import within_any
from ..vectors.base import VectorStore
from .indexing import index_content, run_index_job
from .tagging import run_revert_job, run_tagging_job

# PAI's actions and the modes each allows (pai-compat: only tagging and indexing increment).
JOB_MODES = {
    "FileMetaBuild": ("Full",),
    "IntelligentTag": ("Full", "Increment"),
    "IntelligentTagRevert": ("Full",),
    "SemanticIndex": ("Full", "Increment"),
    "FileMetaExport": ("Full",),
    "FileMetaImport": ("Full",),
}
DEFAULT_VECTOR_TABLE = "mmdm_file_vectors"  # the table the pipeline DAG indexes into
DEFAULT_ZERO_SHOT_THRESHOLD = 0.25  # cosine similarity; CLIP-like models score matches 0.2-0.35
# Request options that page or draw a result list: meaningless for an export of all matches.
_PAGING_PARAMS = ("MaxResults", "PageSize", "NextToken", "ThumbnailMode", "WorkspaceId",
                  "DatasetVersion")


@dataclass
class JobResources:
    """What jobs run with; the callables take a JobSpec's connection id and model name
    (``None`` when the spec names none)."""

    tagger: Callable[[str | None, str | None], Tagger]
    embedder: Callable[[str | None, str | None], Embedder]
    vector_store: Callable[[str | None, str, int, MetadataStore], VectorStore]
    search: Callable[[MetadataStore], SearchService]
    oss_config: OssConfig | None
    export_roots: Sequence[str]
    default_export_dir: str


def _bad(parameter: str, message: str) -> InvalidParameterError:
    return InvalidParameterError(parameter, message)


def parse_job_spec(spec: dict[str, Any] | str | None) -> dict[str, Any]:
    """PAI sends JobSpec as a JSON string; a dict is taken as it is."""
    if isinstance(spec, str):
        try:
            spec = json.loads(spec or "{}")
        except json.JSONDecodeError as err:
            raise _bad("JobSpec", f"JobSpec is not JSON: {err}") from None
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise _bad("JobSpec", "JobSpec must be a JSON object")
    return spec


def _export_query(query: Any) -> Any:
    if isinstance(query, dict):
        return {k: v for k, v in query.items() if k not in _PAGING_PARAMS and v not in ("", None)}
    return query  # a DSL string, or None for everything


def check_job_request(store: MetadataStore, dataset_id: str, version: str, action: str,
                      mode: str, spec: dict[str, Any], resources: JobResources) -> dict[str, Any]:
    """The spec to record, or an input error naming what is wrong with the request."""
    if action not in JOB_MODES:
        raise _bad("JobAction", f"JobAction must be one of {', '.join(JOB_MODES)}, not {action!r}")
    if mode not in JOB_MODES[action]:
        raise _bad("JobMode", f"{action} supports JobMode {' or '.join(JOB_MODES[action])}, "
                           f"not {mode!r}")
    if action == "IntelligentTag":
        if not spec.get("promptId"):
            raise _bad("JobSpec.promptId",
                       "an IntelligentTag JobSpec needs promptId (a tag definition)")
        store.get_prompt(spec["promptId"])
    elif action == "IntelligentTagRevert":
        tag_job = store.get_job(str(spec.get("intelligentTagJobId") or "-"))
        if tag_job.job_action != "IntelligentTag":
            raise _bad("JobSpec.intelligentTagJobId",
                       f"{tag_job.job_id} is a {tag_job.job_action} job, not IntelligentTag")
        if (tag_job.dataset_id, tag_job.dataset_version) != (dataset_id, version):
            raise _bad("DatasetVersion", f"{tag_job.job_id} tagged {tag_job.dataset_id}/"
                       f"{tag_job.dataset_version}, not {dataset_id}/{version}")
    elif action == "SemanticIndex":
        try:
            index_content(spec)
        except AdapterError as exc:
            raise _bad("JobSpec.contentList", str(exc)) from None
    elif action == "FileMetaExport":
        spec = {**spec, "exportDirUri": spec.get("exportDirUri") or resources.default_export_dir}
        if not within_any(spec["exportDirUri"], resources.export_roots):
            raise _bad("JobSpec.exportDirUri",
                       f"JobSpec.exportDirUri {spec['exportDirUri']!r} is not under an export "
                       f"root ({', '.join(resources.export_roots)})")
        as_query(_export_query(spec.get("query")))  # a DSL error is the request's
    elif action == "FileMetaImport":
        manifest = spec.get("manifestUri")
        if manifest and not within_any(manifest, resources.export_roots):
            raise _bad("JobSpec.manifestUri",
                       f"JobSpec.manifestUri {manifest!r} is not under an export root "
                       f"({', '.join(resources.export_roots)})")
        if not manifest and not spec.get("srcDatasetId"):
            raise _bad("JobSpec.manifestUri",
                       "a FileMetaImport JobSpec needs manifestUri or srcDatasetId")
        if store.get_version(dataset_id, version).source_type != "LOGICAL":
            raise _bad("DatasetVersion", f"{dataset_id}/{version} is not a logical version: "
                       "imports go into a version created for them")
        as_query(_export_query(spec.get("query")))
    return spec


def tagger_from_spec(spec: dict[str, Any], resources: JobResources) -> Tagger:
    """The VLM the spec names; with ``zeroShot*`` keys, a zero-shot pass of an embedding
    model in front of it (``zeroShotOnly``: instead of it)."""
    if not ("zeroShotConnectionId" in spec or spec.get("zeroShotOnly")):
        return resources.tagger(spec.get("intelligentTagConnectionId"), spec.get("modelId"))
    first = ZeroShotTagger(resources.embedder(spec.get("zeroShotConnectionId"),
                                              spec.get("zeroShotModel")),
                           float(spec.get("zeroShotThreshold") or DEFAULT_ZERO_SHOT_THRESHOLD))
    if spec.get("zeroShotOnly"):
        return first
    return FirstPassTagger(first, resources.tagger(spec.get("intelligentTagConnectionId"),
                                                   spec.get("modelId")))


def run_job(store: MetadataStore, job: Job, resources: JobResources,
            progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Run a ``Pending`` job to its end; returns its summary (the job record has it too)."""
    spec, ds, version = job.job_spec, job.dataset_id, job.dataset_version
    action = job.job_action
    if action == "FileMetaBuild":
        return build_file_metas(store, ds, version, oss_config=resources.oss_config,
                                progress=progress, job_id=job.job_id).to_dict()
    if action == "IntelligentTag":
        conn = spec.get("intelligentTagConnectionId")
        return run_tagging_job(
            store, ds, version, tagger=tagger_from_spec(spec, resources),
            prompt=spec["promptId"], mode=job.job_mode,
            max_concurrency=int(spec.get("maxConcurrency") or 5),
            describe=bool(spec.get("describe")), oss_config=resources.oss_config,
            progress=progress, resume_job_id=job.job_id, connection_id=conn).to_dict()
    if action == "IntelligentTagRevert":
        return run_revert_job(store, ds, version, tag_job_id=spec["intelligentTagJobId"],
                              job_id=job.job_id).to_dict()
    if action == "SemanticIndex":
        conn, db = spec.get("embeddingConnectionId"), spec.get("databaseConnectionId")
        embedder = resources.embedder(conn, spec.get("embeddingModel") or spec.get("modelId"))
        table = spec.get("databaseTableName") or DEFAULT_VECTOR_TABLE
        vectors = resources.vector_store(db, table, embedder.dimension, store)
        return run_index_job(
            store, ds, version, embedder=embedder, vector_store=vectors, mode=job.job_mode,
            max_concurrency=int(spec.get("concurrency") or 5),
            oss_config=resources.oss_config, progress=progress, resume_job_id=job.job_id,
            connection_ids={"embeddingConnectionId": conn, "databaseConnectionId": db},
            content=index_content(spec)).to_dict()
    if action == "FileMetaExport":
        return run_export_job(
            store, ds, version, export_dir_uri=spec["exportDirUri"],
            query=_export_query(spec.get("query")),
            filtered_attributes=spec.get("filteredAttributes"),
            search=resources.search(store), oss_config=resources.oss_config,
            job_id=job.job_id).to_dict()
    if action == "FileMetaImport":
        source = None
        if not spec.get("manifestUri"):
            src = store.get_dataset(spec["srcDatasetId"])
            query = _export_query(spec.get("query"))
            source = iter_export_rows(resources.search(store), src.dataset_id,
                                      spec.get("srcDatasetVersion") or "v1", as_query(query),
                                      index_set_id=index_set_of(query))
        return import_file_metas(
            store, ds, version, manifest_uri=spec.get("manifestUri") or None,
            source_rows=source, import_mode=spec.get("importMode") or "append",
            filtered_attributes=spec.get("filteredAttributes"),
            oss_config=resources.oss_config, job_id=job.job_id)
    raise _bad("JobAction", f"unknown JobAction {action!r}")
