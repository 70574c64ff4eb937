"""SQLite: the embedded default, one file in a workspace folder."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from .store import MetadataStore, dumps_json


class SqliteMetadataStore(MetadataStore):
    dialect = "sqlite"

    def __init__(self, path: str):
        # Autocommit mode; transactions are explicit (``transaction()``).
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA temp_store = MEMORY")  # the scan's seen-URI table
        # A scan's inserts touch a dozen indexes; in SQLite's default 2 MB their pages keep
        # going back to the OS and being read again. 64 MB bounds the cost in memory.
        conn.execute("PRAGMA cache_size = -65536")
        self.path = path
        super().__init__(conn)

    def _encode_tags(self, tags: Sequence[str]) -> str:
        return json.dumps(list(tags), ensure_ascii=False) if tags else "[]"

    def _decode_tags(self, value: Any) -> list[str]:
        return orjson.loads(value) if value else []  # hot in exports: orjson is ~5x json

    def _encode_json(self, value: dict[str, Any]) -> str:
        return dumps_json(value).decode()

    def _decode_json(self, value: Any) -> dict[str, Any]:
        return orjson.loads(value) if value else {}

    def _in_list(self, column: str) -> str:
        return f"{column} IN (SELECT value FROM json_each(?))"

    def _list_param(self, values: Sequence[Any]) -> str:
        return json.dumps(list(values), ensure_ascii=False)

    def _begin(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def _schema_version(self) -> int:
        row = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)
