"""The SQL metadata store (SQLite embedded default, PostgreSQL in production)."""

from __future__ import annotations

import os

from ..errors import ConfigError
from .model import Dataset, DatasetVersion, FileMeta, Job, Prompt, effective_tags
from .store import SCAN_COLUMNS, MetadataStore


def open_store(url: str) -> MetadataStore:
    """Open (and migrate) a store.

    ``sqlite:////abs/path.db``, ``sqlite:///relative.db``, ``sqlite:///:memory:`` or a bare
    file path -> SQLite;
    ``postgresql://user@host:port/db`` (or ``postgres://``) -> PostgreSQL.
    """
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresMetadataStore

        return PostgresMetadataStore(url)
    if url.startswith("sqlite:///"):
        # SQLAlchemy's convention: sqlite:///relative.db, sqlite:////abs/path.db, sqlite:///:memory:
        path = url[len("sqlite:///"):]
    elif "://" in url:
        raise ConfigError(f"unsupported metadata store URL {url!r}: use sqlite:/// or postgresql://")
    else:
        path = url
    from .sqlite import SqliteMetadataStore

    if path != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return SqliteMetadataStore(path)


__all__ = [
    "Dataset", "DatasetVersion", "FileMeta", "Job", "MetadataStore", "Prompt", "SCAN_COLUMNS",
    "effective_tags", "open_store",
]
