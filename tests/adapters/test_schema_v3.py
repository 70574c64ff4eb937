"""Migration v3: empty descriptions written before get their folded '', and (PostgreSQL) the
SortBy order indexes."""

from __future__ import annotations

from adapters.metadata import FileMeta, open_store
from query import compile_sql, parse


def test_v3_backfills_folded_empty_descriptions(store) -> None:
    ds = store.create_dataset("v3", "oss://b/")
    store.create_version(ds.dataset_id)
    store.upsert_file_metas([FileMeta(f"m{i}", ds.dataset_id, "v1", f"oss://b/{i}.jpg",
                                      f"{i}.jpg", "", description=d)
                             for i, d in enumerate(["", "x", None])])
    # As a v2 store left it: '' was folded to NULL, and the v3 indexes did not exist.
    store.execute("UPDATE file_metas SET description_folded = NULL WHERE description = ''")
    for name in ("file_metas_update_order", "file_metas_create_order"):
        store.execute(f"DROP INDEX IF EXISTS {name}")
    store.execute("UPDATE schema_version SET version = 2")
    reopened = open_store(getattr(store, "dsn", None) or f"sqlite:///{store.path}")
    assert reopened.schema_version == 3
    query = compile_sql(parse("Description:''"), reopened.dialect, ds.dataset_id, "v1")
    assert {r[1] for r in reopened.fetchall(query.sql, query.params)} == {"m0", "m1"}
    indexes = reopened.fetchall(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'file_metas'"
        if reopened.dialect == "postgres" else
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'file_metas'")
    expected = {"file_metas_update_order", "file_metas_create_order"}
    names = {n for (n,) in indexes}
    assert expected <= names if reopened.dialect == "postgres" else not expected & names
    reopened.close()
