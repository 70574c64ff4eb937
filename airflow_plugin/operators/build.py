"""FileMetaBuild as an Airflow task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context

from mmdm.adapters.scan import build_file_metas

from ..failures import fail_fast
from ..hooks.oss import OssHook
from .base import DatasetVersionOperator


class FileMetaBuildOperator(DatasetVersionOperator):
    """Scan a dataset version's storage into file metas (incremental; see ``mmdm.adapters.scan``).

    :param oss_conn_id: OSS connection for ``oss://`` datasets.
    :param batch_size: files per metadata commit.
    :param allow_empty: let a scan that lists no files mark the whole version DELETED; by
        default that fails the task (a missing or unmounted folder looks the same).
    """

    template_fields: Sequence[str] = (*DatasetVersionOperator.template_fields,)

    def __init__(self, *, oss_conn_id: str | None = OssHook.default_conn_name,
                 batch_size: int = 2000, allow_empty: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.oss_conn_id = oss_conn_id
        self.batch_size = batch_size
        self.allow_empty = allow_empty

    def execute(self, context: Context) -> dict[str, Any]:
        hook = self.metadata_hook()
        store = hook.get_store()
        with fail_fast():
            result = build_file_metas(
                store, self.dataset, self.version,
                oss_config=OssHook(self.oss_conn_id).get_config(),
                progress=self.log_progress, batch_size=self.batch_size,
                allow_empty=self.allow_empty)
        self.log.info("FileMetaBuild %s: %s", result.job_id, result.to_dict())
        self.check_job(store, result.job_id)  # logs each failed file's reason
        hook.close()
        return {"DatasetJobId": result.job_id, **result.to_dict()}
