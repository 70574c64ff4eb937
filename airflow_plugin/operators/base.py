"""What every mmdm operator shares: the dataset/version it works on and the metadata store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from mmdm.adapters.progress import Progress

from ..hooks.metadata import MetadataStoreHook


class DatasetVersionOperator(BaseOperator):
    """Base class: works on one dataset version.

    :param dataset: dataset id (``d-…``) or name. Templated.
    :param version: version name, e.g. ``v1``. Templated.
    :param metadata_conn_id: the metadata store's connection (PostgreSQL or SQLite); when the
        default one is not defined, the embedded PostgreSQL in the mmdm workspace.
    """

    template_fields: Sequence[str] = ("dataset", "version")

    def __init__(self, *, dataset: str, version: str = "v1",
                 metadata_conn_id: str | None = MetadataStoreHook.default_conn_name,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.dataset = dataset
        self.version = version
        self.metadata_conn_id = metadata_conn_id

    def metadata_hook(self) -> MetadataStoreHook:
        return MetadataStoreHook(self.metadata_conn_id)

    def log_progress(self, p: Progress) -> None:
        self.log.info("%s: %s", self.task_id, p)
