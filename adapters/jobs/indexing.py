"""SemanticIndex jobs: embed a version's images, or their descriptions, into a vector store.

``content="file"`` (PAI's ``contentList: ["file"]``) embeds each image; ``"description"``
embeds the text a describing tagging job wrote, as a second vector per file in an index set of
its own, for the text-to-text and image-to-text searches of the Milvus + Qwen-VL guide.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..errors import AdapterError
from ..index_sets import index_content
from ..metadata import FileMeta, MetadataStore
from ..models.base import Embedder
from ..models.usage import usage_of, usage_since
from ..progress import ProgressCallback
from ..storage import OssConfig
from ..vectors.base import VectorRecord, VectorStore, unit_vectors
from .common import ImageLoader, open_job
from .runner import FileJobRunner, JobSummary, Outcome, RetryPolicy, call_with_retries, fail_job


def default_index_set_id(dataset_id: str, version: str, model: str, dimension: int,
                         content: str = "file") -> str:
    """One index set per version, embedding space and content: vectors of different models,
    or of images and of descriptions, never mix."""
    suffix = "" if content == "file" else f":{content}"
    return re.sub(r"[^A-Za-z0-9_.:-]", "_", f"{dataset_id}:{version}:{model}:{dimension}{suffix}")


def run_index_job(
    store: MetadataStore,
    dataset_id: str,
    version: str,
    *,
    embedder: Embedder,
    vector_store: VectorStore,
    index_set_id: str | None = None,
    mode: str = "Increment",
    max_concurrency: int = 5,
    retry: RetryPolicy | None = None,
    oss_config: OssConfig | None = None,
    signed_urls: bool = False,
    progress: ProgressCallback | None = None,
    resume_job_id: str | None = None,
    shard: tuple[int, int] | None = None,
    connection_ids: dict[str, str] | None = None,
    owner: str | None = None,
    content: str = "file",
) -> JobSummary:
    """Embed every file that needs it and upsert its vector; drop vectors of deleted files
    (and, for ``content="description"``, of files whose description is gone).

    Upserts are keyed by (index set, file), so a redone unit never duplicates a vector.
    ``owner`` (an Airflow task instance): its interrupted job is resumed, not started over.
    ``shard=(index, count)`` limits the job to one shard of the files (see tagging). On
    PostgreSQL index jobs running at once on a version split its files; a ``Full`` job skips
    files another indexed after it was created.
    """
    ds = store.get_dataset(dataset_id)
    content = index_content({"contentList": [content]})
    describing = content == "description"
    if describing and not getattr(embedder, "supports_text", True):
        raise AdapterError(f"the embedding model {embedder.model!r} embeds images only; "
                           "description vectors need a model that embeds text",
                           is_input_error=True)
    if embedder.dimension != vector_store.dimension:
        raise AdapterError(f"the embedding model gives {embedder.dimension}-d vectors but the "
                           f"table {vector_store.table!r} holds {vector_store.dimension}-d",
                           is_input_error=True)
    index_set = index_set_id or default_index_set_id(ds.dataset_id, version, embedder.model,
                                                     embedder.dimension, content)
    spec = {"embeddingModel": embedder.model, "dimension": embedder.dimension,
            "databaseTableName": vector_store.table, "indexSetId": index_set,
            "concurrency": max_concurrency, "contentList": [content], "shard": shard,
            **(connection_ids or {})}
    if (not describing and mode == "Increment" and resume_job_id is None and shard is None
            and _index_set_changed(store, ds.dataset_id, version, index_set)):
        mode = "Full"  # fingerprints say "indexed", but into another embedding space
    job = open_job(store, ds.dataset_id, version, "SemanticIndex", mode=mode, spec=spec,
                   resume_job_id=resume_job_id, owner=owner)
    policy = retry or RetryPolicy()
    loader = ImageLoader(oss_config, signed_urls=signed_urls)
    # A store in the metadata's own database (pgvector) writes each unit's vectors in the
    # transaction that marks its files indexed: a killed job cannot leave one without the other.
    same_transaction = getattr(vector_store, "store", None) is store

    def inputs(unit: list[FileMeta]) -> tuple[list[FileMeta], Callable[[], list[Any]],
                                                list[Outcome]]:
        """The unit's files that reach the model, the call that embeds them (vectors or
        per-item errors), and the files that failed before it."""
        if describing:  # pending files have a description (see pending_files)
            texts = [m.description or "" for m in unit]
            return unit, lambda: list(embedder.embed_texts(texts)), []
        images, loaded, out = [], [], []
        for meta in unit:
            try:
                images.append(loader.load(meta))
                loaded.append(meta)
            except Exception as exc:
                out.append((meta, exc))
        return loaded, lambda: list(embedder.embed_images(images)), out

    def work(unit: list[FileMeta]) -> list[Outcome]:
        loaded, request, out = inputs(unit)
        if not loaded:
            return out
        try:
            vectors = call_with_retries(request, policy)
        except Exception as exc:
            return out + [(m, exc) for m in loaded]
        if same_transaction:  # checked here, written in commit()
            return out + [(m, _checked(v, vector_store.dimension))
                          for m, v in zip(loaded, vectors)]
        records = [_record(index_set, m, v) for m, v in zip(loaded, vectors)
                   if not isinstance(v, BaseException)]
        try:
            if records:
                call_with_retries(lambda: vector_store.upsert(records), policy)
        except Exception as exc:
            return out + [(m, exc) for m in loaded]
        return out + list(zip(loaded, vectors))

    def commit(results: list[Outcome]) -> None:
        results = sorted(results, key=lambda r: r[0].pk or 0)  # key order, see write_ai_tags
        with store.transaction():
            if same_transaction:
                vector_store.upsert([_record(index_set, m, v) for m, v in results])
            if describing:
                store.mark_described_indexed(job.job_id, index_set, [m for m, _ in results])
            else:
                store.mark_indexed(job.job_id, [m for m, _ in results])

    try:
        vector_store.ensure_table()
        if resume_job_id is not None:
            _redo_lost_vectors(store, vector_store, job.job_id, index_set, describing)
        removed = (_drop_undescribed if describing else _drop_deleted)(
            store, vector_store, ds.dataset_id, version, index_set)
        before = usage_of(embedder)
        runner: FileJobRunner[Any] = FileJobRunner(
            store, job, target="description" if describing else "index",
            index_set=index_set if describing else None, concurrency=max_concurrency,
            unit_size=embedder.max_batch, progress=progress, shard=shard,
            claim=f"index:{index_set}", extra=lambda: {
                "IndexSetId": index_set, "RemovedVectors": removed,
                "Usage": usage_since(embedder, before)})
        summary = runner.run(work, commit)
        built = getattr(vector_store, "build_index", lambda: None)()
        if built:
            store.append_job_log(job.job_id, f"Built the ANN index: {built}")
    except BaseException as exc:
        fail_job(store, job.job_id, exc)
        raise
    return summary


def _record(index_set: str, meta: FileMeta, vector: Any) -> VectorRecord:
    return VectorRecord(index_set, meta.file_meta_id, meta.dataset_id, meta.dataset_version,
                        meta.uri, vector)


def _checked(vector: Any, dimension: int) -> Any:
    """The vector, or the input error its upsert would raise (a per-file failure)."""
    if isinstance(vector, BaseException):
        return vector
    try:
        unit_vectors(vector, dimension)
    except AdapterError as exc:
        return exc
    return vector


def _redo_lost_vectors(store: MetadataStore, vector_store: VectorStore, job_id: str,
                       index_set: str, describing: bool) -> None:
    """A killed job may have reported files done whose vectors the store never made durable
    (Milvus Lite keeps recent writes in memory): check, and redo those."""
    present = set(vector_store.file_meta_ids(index_set))
    lost = [k for k in store.job_done_keys(job_id) if k not in present]
    if lost:
        store.redo_files(job_id, lost, index_set if describing else None)
        store.append_job_log(job_id, f"{len(lost)} files reported indexed had no vector in "
                                     f"{vector_store.table!r}; indexing them again", level="WARN")


def _drop_deleted(store: MetadataStore, vector_store: VectorStore, dataset_id: str,
                  version: str, index_set: str) -> int:
    removed = 0
    while batch := store.deleted_indexed_files(dataset_id, version):
        with store.transaction():  # one transaction when the vectors live in the same database
            vector_store.delete(index_set, [m.file_meta_id for m in batch])
            store.clear_index_state([m.pk for m in batch if m.pk is not None])
        removed += len(batch)
    return removed


def _drop_undescribed(store: MetadataStore, vector_store: VectorStore, dataset_id: str,
                      version: str, index_set: str) -> int:
    removed = 0
    while batch := store.stale_described_files(index_set, dataset_id, version):
        with store.transaction():
            vector_store.delete(index_set, [key for _, key in batch])
            store.forget_described(index_set, [pk for pk, _ in batch])
        removed += len(batch)
    return removed


def _index_set_changed(store: MetadataStore, dataset_id: str, version: str,
                       index_set: str) -> bool:
    for job in store.list_jobs(dataset_id, version, "SemanticIndex"):
        if index_content(job.job_spec) != "file":
            continue
        if job.status in ("Succeeded", "PartialFailed", "ManuallyStop", "Running"):
            return job.job_spec.get("indexSetId") != index_set
    return False
