"""Hooks: each turns an Airflow connection into an mmdm adapter. Secrets stay inside them.

Every operator names a default connection id (``mmdm_metadata_default``, ``mmdm_vectors_default``,
…). When that default is not defined, the embedded default runs instead (the workspace's
PostgreSQL with pgvector, the offline local model), so moving to production is adding
connections, not editing DAGs.
"""

from __future__ import annotations

from airflow.sdk import BaseHook, Connection
from airflow.sdk.exceptions import AirflowNotFoundException

from mmdm.adapters.errors import ConfigError

EMBEDDED = "local"  # name this instead of a connection id to force the embedded default


def optional_connection(conn_id: str | None, default_conn_id: str) -> Connection | None:
    """The connection, or None for the embedded default (``None``/``"local"``, or the default
    id when it is not defined). A named, non-default connection that is missing is an error."""
    if conn_id in (None, "", EMBEDDED):
        return None
    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        if conn_id == default_conn_id:
            return None
        raise ConfigError(f"connection {conn_id!r} is not defined") from None
