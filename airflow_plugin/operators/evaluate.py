"""Embedding-model evaluation (Precision@k on a labelled set) as an Airflow task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from mmdm.adapters.evaluation import DEFAULT_EXEMPLARS_PER_TAG, Calls, evaluate_embedding
from mmdm.adapters.models import open_embedder
from mmdm.adapters.models.base import Embedder
from mmdm.adapters.progress import Progress

from ..failures import fail_fast
from ..hooks import optional_connection
from ..hooks.models import DEFAULT_EMBEDDING_CONN, embedder_for


def evaluation_embedder(conn_id: str | None, model: str | None,
                        dimension: int | None) -> Embedder:
    """The connection's embedder, as ``embedder_for`` picks it; for the offline model the
    dimension is honoured too (``embedder_for`` builds it at its natural size)."""
    if optional_connection(conn_id, DEFAULT_EMBEDDING_CONN) is None:
        return open_embedder("local", dimension=dimension)
    return embedder_for(conn_id, model, dimension)


class EvaluateEmbeddingOperator(BaseOperator):
    """Precision@k of an embedding connection on a labelled set (``dataset.jsonl`` + ``images/``
    in a folder the worker can read); returns the table as small JSON, never vectors.

    :param data: the labelled set's folder. Templated.
    :param embedding_conn_id: DashScope or EAS connection; the offline local model without one
        (``None``, ``local``, or the default id undefined), judged with image queries since it
        cannot embed text.
    :param embedding_model: model name on that connection. Templated.
    :param dimension: vector size where the model offers several.
    :param prefix: text sent before each tag, e.g. an instruction. Templated.
    :param features: the feature file that caches vectors between runs. Templated.
    :param queries: ``auto``, ``text`` or ``image`` (see ``mmdm.adapters.evaluation.queries``).
    :param exemplars_per_tag: image queries: ground-truth images that make a tag's query.
    :param report: where to write the per-tag report (JSON lines). Templated.
    :param max_concurrency: embedding calls in flight.
    """

    template_fields: Sequence[str] = ("data", "embedding_model", "prefix", "features", "report")

    def __init__(self, *, data: str, embedding_conn_id: str | None = DEFAULT_EMBEDDING_CONN,
                 embedding_model: str | None = None, dimension: int | None = None,
                 prefix: str = "", features: str | None = None, queries: str = "auto",
                 exemplars_per_tag: int = DEFAULT_EXEMPLARS_PER_TAG, report: str | None = None,
                 max_concurrency: int = 4, **kwargs: Any):
        super().__init__(**kwargs)
        self.data = data
        self.embedding_conn_id = embedding_conn_id
        self.embedding_model = embedding_model
        self.dimension = dimension
        self.prefix = prefix
        self.features = features
        self.queries = queries
        self.exemplars_per_tag = exemplars_per_tag
        self.report = report
        self.max_concurrency = max_concurrency

    def execute(self, context: Context) -> dict[str, Any]:
        with fail_fast():
            embedder = evaluation_embedder(self.embedding_conn_id, self.embedding_model,
                                           self.dimension)
            result = evaluate_embedding(
                self.data, embedder, prefix=self.prefix, features=self.features or None,
                queries=self.queries, exemplars_per_tag=self.exemplars_per_tag,
                calls=Calls(max_concurrency=self.max_concurrency), progress=self._progress)
        for problem in result.problems:
            self.log.warning("left out: %s", problem)
        if self.report:
            result.write_report(self.report)
        self.log.info("Embedding evaluation\n%s", result.table())
        return result.to_dict()

    def _progress(self, p: Progress) -> None:
        self.log.info("%s: embedding images: %s", self.task_id, p)
