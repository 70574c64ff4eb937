"""SemanticIndex as an Airflow task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context

from mmdm.adapters.jobs import RetryPolicy, run_index_job

from ..failures import fail_fast
from ..hooks.models import DEFAULT_EMBEDDING_CONN, embedder_for
from ..hooks.oss import OssHook
from ..hooks.vectors import DEFAULT_VECTOR_CONN, vector_store_for
from .base import DatasetVersionOperator


class SemanticIndexOperator(DatasetVersionOperator):
    """SemanticIndex: embed a version's images, or their descriptions, into a vector table
    (PAI's index schema).

    :param embedding_conn_id: DashScope or EAS connection; the offline local model without one.
    :param embedding_model: model name on that connection. Templated.
    :param dimension: vector size where the model offers several.
    :param vector_conn_id: Milvus or Elasticsearch connection; without one, pgvector beside
        the metadata (Milvus Lite in the workspace beside SQLite metadata).
    :param table: collection / index name. Templated.
    :param mode: ``Increment`` or ``Full``. Templated.
    :param max_concurrency: embedding calls in flight.
    :param resume_job_id: continue a killed job instead of starting a new one. Templated.
        Without it, a retry of this task resumes the job an earlier try left unfinished.
    :param shard: ``(index, count)``: only this shard of the files, for dynamic task mapping;
        shards never overlap.
    :param content: ``file`` (the images) or ``description`` (the text a describing
        tagging task stored: a second index set, searched with ``IndexContent='description'``;
        the model must embed text). Templated.
    """

    template_fields: Sequence[str] = (*DatasetVersionOperator.template_fields,
                                      "embedding_model", "table", "mode", "resume_job_id",
                                      "content")

    def __init__(self, *, embedding_conn_id: str | None = DEFAULT_EMBEDDING_CONN,
                 embedding_model: str | None = None, dimension: int | None = None,
                 vector_conn_id: str | None = DEFAULT_VECTOR_CONN,
                 table: str = "mmdm_file_vectors",
                 mode: str = "Increment", max_concurrency: int = 5,
                 oss_conn_id: str | None = OssHook.default_conn_name,
                 resume_job_id: str | None = None,
                 shard: list[int] | tuple[int, int] | None = None, content: str = "file",
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.embedding_conn_id = embedding_conn_id
        self.embedding_model = embedding_model
        self.dimension = dimension
        self.vector_conn_id = vector_conn_id
        self.table = table
        self.mode = mode
        self.max_concurrency = max_concurrency
        self.oss_conn_id = oss_conn_id
        self.resume_job_id = resume_job_id
        self.shard = tuple(shard) if shard is not None else None  # (index, count) from XCom
        self.content = content

    def execute(self, context: Context) -> dict[str, Any]:
        hook = self.metadata_hook()
        with fail_fast():
            embedder = embedder_for(self.embedding_conn_id, self.embedding_model, self.dimension)
            store = hook.get_store()
            vectors = vector_store_for(self.vector_conn_id, self.table, embedder.dimension,
                                       store)
            summary = run_index_job(
                store, self.dataset, self.version, embedder=embedder,
                vector_store=vectors, mode=self.mode, max_concurrency=self.max_concurrency,
                retry=RetryPolicy(), progress=self.log_progress,
                oss_config=OssHook(self.oss_conn_id).get_config(),
                resume_job_id=self.resume_job_id or None, shard=self.shard,
                connection_ids={"embeddingConnectionId": self.embedding_conn_id,
                                "databaseConnectionId": self.vector_conn_id},
                owner=self.job_owner(context), content=self.content)
        self.log.info("SemanticIndex %s", summary.to_dict())
        self.check_job(store, summary.job_id)
        hook.close()
        return summary.to_dict()
