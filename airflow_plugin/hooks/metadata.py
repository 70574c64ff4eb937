"""The mmdm metadata store from an Airflow connection."""

from __future__ import annotations

import os
from pathlib import Path

from airflow.sdk import BaseHook

from mmdm.adapters.errors import ConfigError
from mmdm.adapters.metadata import MetadataStore, open_store
from mmdm.adapters.metadata.embedded import workspace_store_url

from . import optional_connection

DEFAULT_WORKSPACE = "mmdm-workspace"


def workspace_dir() -> Path:
    """The embedded defaults' folder (the embedded PostgreSQL, exports, thumbnails)."""
    return Path(os.environ.get("MMDM_WORKSPACE", DEFAULT_WORKSPACE)).resolve()


class MetadataStoreHook(BaseHook):
    """Opens the metadata store.

    The connection is either a ``postgres`` connection (the postgres provider's type: host,
    port, login, password, schema = database) or an ``mmdm_metadata`` connection whose host
    is an SQLite file path. Without a connection: ``MMDM_METADATA_URL``, else the embedded
    PostgreSQL in the workspace, which every process of the workspace shares.

    :param metadata_conn_id: connection id; ``None``/``"local"`` for the embedded default,
        which is also used when the default connection is not defined.
    """

    conn_name_attr = "metadata_conn_id"
    default_conn_name = "mmdm_metadata_default"
    conn_type = "mmdm_metadata"
    hook_name = "mmdm metadata store"

    def __init__(self, metadata_conn_id: str | None = default_conn_name):
        super().__init__()
        self.metadata_conn_id = metadata_conn_id
        self._store: MetadataStore | None = None

    def store_url(self) -> str:
        conn = optional_connection(self.metadata_conn_id, self.default_conn_name)
        if conn is None:
            return workspace_store_url(workspace_dir())
        if conn.conn_type == "postgres":
            from airflow.providers.postgres.hooks.postgres import PostgresHook

            uri = PostgresHook(postgres_conn_id=self.metadata_conn_id).get_uri()
            return uri.replace("postgresql+psycopg://", "postgresql://", 1)
        if conn.conn_type == "mmdm_metadata":
            path = conn.host or conn.extra_dejson.get("path")
            if not path:
                raise ConfigError(f"connection {self.metadata_conn_id!r} needs the SQLite path "
                                  "in its host field")
            return str(path)
        raise ConfigError(f"connection {self.metadata_conn_id!r} has type {conn.conn_type!r}; "
                          "use postgres or mmdm_metadata")

    def get_store(self) -> MetadataStore:
        if self._store is None:
            self._store = open_store(self.store_url())
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
