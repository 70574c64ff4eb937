"""Export, Import and Search as Airflow tasks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context

from mmdm.adapters.export import import_file_metas
from mmdm.adapters.export.exporter import as_query, index_set_of, iter_export_rows
from mmdm.adapters.export.job import run_export_job

from ..failures import fail_fast
from ..hooks.metadata import workspace_dir
from ..hooks.models import DEFAULT_EMBEDDING_CONN, embedder_for
from ..hooks.oss import OssHook
from ..hooks.vectors import DEFAULT_VECTOR_CONN, vector_store_for
from .base import DatasetVersionOperator


class _SearchingOperator(DatasetVersionOperator):
    """Shared: a query (DSL text or ListDatasetFileMetas parameters) and the search backends.

    :param query: QueryExpression DSL text, or a dict of ListDatasetFileMetas parameters
        (``QueryTagsIncludeAll``, ``QueryFileName``, …). Templated.
    :param embedding_conn_id: for text/image queries: the connection that indexed the version
        (without one, the offline local model, which embeds images only).
    :param vector_conn_id: the vector database (without one, pgvector beside the metadata,
        or Milvus Lite in the workspace beside SQLite metadata).
    :param table: the vector table the version was indexed into.
    """

    template_fields: Sequence[str] = (*DatasetVersionOperator.template_fields, "query")
    template_fields_renderers = {"query": "json"}

    def __init__(self, *, query: str | dict[str, Any] | None = None,
                 embedding_conn_id: str | None = DEFAULT_EMBEDDING_CONN,
                 embedding_model: str | None = None,
                 vector_conn_id: str | None = DEFAULT_VECTOR_CONN,
                 table: str = "mmdm_file_vectors",
                 oss_conn_id: str | None = OssHook.default_conn_name, **kwargs: Any):
        super().__init__(**kwargs)
        self.query = query
        self.embedding_conn_id = embedding_conn_id
        self.embedding_model = embedding_model
        self.vector_conn_id = vector_conn_id
        self.table = table
        self.oss_conn_id = oss_conn_id

    def search_service(self, store):  # type: ignore[no-untyped-def]
        from mmdm.adapters.search import SearchService

        q = as_query(self.query)  # parsed here, at run time: errors fail the task for good
        if not q.semantic:
            return SearchService(store)
        embedder = embedder_for(self.embedding_conn_id, self.embedding_model)
        vectors = vector_store_for(self.vector_conn_id, self.table, embedder.dimension, store)
        return SearchService(store, vector_store=vectors, embedder=embedder)

    def oss_config(self):  # type: ignore[no-untyped-def]
        return OssHook(self.oss_conn_id).get_config()


class ExportOperator(_SearchingOperator):
    """FileMetaExport: write the query's matches as JSONL + manifest under ``export_dir``,
    and emit the outlet Asset's event with the manifest URI and the row count.

    :param export_dir: local folder or ``oss://bucket/prefix/``; empty: ``exports/`` in the
        mmdm workspace. Templated.
    :param filtered_attributes: PAI's ``filteredAttributes`` (``"FileName,Tags.all"``).
    """

    template_fields: Sequence[str] = (*_SearchingOperator.template_fields, "export_dir")

    def __init__(self, *, export_dir: str | None = None, filtered_attributes: str | None = None,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.export_dir = export_dir
        self.filtered_attributes = filtered_attributes

    def execute(self, context: Context) -> dict[str, Any]:
        hook = self.metadata_hook()
        store = hook.get_store()
        with fail_fast():
            result = run_export_job(
                store, self.dataset, self.version,
                export_dir_uri=self.export_dir or str(workspace_dir() / "exports"),
                query=self.query, filtered_attributes=self.filtered_attributes,
                search=self.search_service(store), oss_config=self.oss_config())
        out = {**result.to_dict(), "DatasetId": store.get_dataset(self.dataset).dataset_id,
               "DatasetVersion": self.version}
        for asset in self.outlets:
            context["outlet_events"][asset].extra = out
        self.log.info("FileMetaExport: %s", out)
        hook.close()
        return out


class ImportOperator(DatasetVersionOperator):
    """FileMetaImport into a logical version, from an export manifest or from a query over
    another version.

    :param manifest_uri: an export's manifest. Templated.
    :param source_dataset / source_version / query: or import the matches of ``query`` there.
    :param import_mode: ``append`` or ``replace``.
    """

    template_fields: Sequence[str] = (*DatasetVersionOperator.template_fields, "manifest_uri",
                                      "source_dataset", "source_version", "query")

    def __init__(self, *, manifest_uri: str | None = None, source_dataset: str | None = None,
                 source_version: str | None = None, query: str | dict[str, Any] | None = None,
                 import_mode: str = "append", filtered_attributes: str | None = None,
                 oss_conn_id: str | None = OssHook.default_conn_name, **kwargs: Any):
        super().__init__(**kwargs)
        self.manifest_uri = manifest_uri
        self.source_dataset = source_dataset
        self.source_version = source_version
        self.query = query
        self.import_mode = import_mode
        self.filtered_attributes = filtered_attributes
        self.oss_conn_id = oss_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from mmdm.adapters.search import SearchService

        hook = self.metadata_hook()
        store = hook.get_store()
        oss = OssHook(self.oss_conn_id).get_config()
        with fail_fast():
            source = None
            if not self.manifest_uri:
                src = store.get_dataset(self.source_dataset or self.dataset)
                source = iter_export_rows(SearchService(store), src.dataset_id,
                                          self.source_version or "v1", as_query(self.query),
                                          index_set_id=index_set_of(self.query))
            result = import_file_metas(
                store, self.dataset, self.version, manifest_uri=self.manifest_uri or None,
                source_rows=source, import_mode=self.import_mode,
                filtered_attributes=self.filtered_attributes, oss_config=oss)
        hook.close()
        return result


class SearchOperator(_SearchingOperator):
    """Run a search and return a small summary: the total and the first hits' ids and scores.

    :param max_results: how many hits to list in the summary (at most 100).
    """

    def __init__(self, *, max_results: int = 10, **kwargs: Any):
        super().__init__(**kwargs)
        self.max_results = max_results

    def execute(self, context: Context) -> dict[str, Any]:
        hook = self.metadata_hook()
        store = hook.get_store()
        with fail_fast():
            q = as_query(self.query)
            page = self.search_service(store).search(self.dataset, self.version, q,
                                                     index_set_id=index_set_of(self.query))
        out = {
            "TotalCount": page.total_count,
            "Plan": page.plan,
            "DatasetFileMetas": [
                {"DatasetFileMetaId": m.file_meta_id, "Uri": m.uri, "Score": score}
                for m, score in page.items[: min(self.max_results, 100)]],
        }
        hook.close()
        return out
