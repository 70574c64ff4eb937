"""The SQL compiler's shape: parameters only, NULL-safe NOT, scope, keyset paging."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mmdm.query import Compare, Not, Op, Query, compile_sql, compile_where, or_, parse, schema
from mmdm.query.compile.sql import like_escape, with_cursor

from .conftest import Loaded, oracle
from .dataset import RECORDS

EVIL = "x'; DROP TABLE file_metas; --"


@pytest.mark.parametrize(("dialect", "style"), [("sqlite", r":p0\b"), ("postgres", r"%\(p0\)s")])
def test_named_placeholders(dialect: str, style: str) -> None:
    compiled = compile_sql(parse("FileName='a'"), dialect, "d", "v1")
    assert re.search(style, compiled.sql)
    assert compiled.params == {"dataset_id": "d", "dataset_version": "v1", "status": "ACTIVE",
                               "p0": "a"}
    assert compiled.dialect == dialect


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_user_values_never_reach_the_sql_text(dialect: str) -> None:
    text = (f"FileName={EVIL!r} OR Tags.all={EVIL!r} OR FileDir:{EVIL!r} OR "
            f"MetaAttributes.k={EVIL!r} OR Description={EVIL!r}")
    compiled = compile_sql(parse(text), dialect, EVIL, EVIL)
    assert "DROP" not in compiled.sql and "x'" not in compiled.sql
    assert "?" not in compiled.sql  # the PostgreSQL store rewrites "?" placeholders


def test_not_is_null_safe() -> None:
    compiled = compile_sql(Not(Compare("FileType", Op.EQ, "image")), "sqlite", "d", "v1")
    assert "NOT COALESCE(f.file_type = :p0, FALSE)" in compiled.sql


def test_like_pattern_is_escaped_and_folded() -> None:
    compiled = compile_sql(parse("FileName:'A%_\\\\ß'"), "postgres", "d", "v1")
    assert "f.file_name_folded LIKE %(p0)s ESCAPE '\\'" in compiled.sql
    assert compiled.params["p0"] == "%a\\%\\_\\\\ss%"
    assert like_escape("50%_") == "50\\%\\_"


def test_status_all_drops_the_status_filter() -> None:
    compiled = compile_sql(parse("Status='ALL'"), "sqlite", "d", "v1")
    assert "status" not in compiled.sql and "status" not in compiled.params
    override = compile_sql(parse("Status='ALL'"), "sqlite", "d", "v1", status="DELETED")
    assert override.params["status"] == "DELETED"


def test_compile_where_returns_an_expression() -> None:
    where, params = compile_where(parse("DataSize>1"), "postgres", "d", "v1")
    assert where.sql(dialect="postgres").endswith("f.data_size > %(p0)s")
    assert params["p0"] == 1


def test_tags_use_the_index_friendly_forms() -> None:
    pg = compile_sql(parse("Tags.user='x'"), "postgres", "d", "v1")
    assert "f.tags_user @> %(p0)s" in pg.sql and pg.params["p0"] == ["x"]
    lite = compile_sql(parse("Tags.user='x'"), "sqlite", "d", "v1")
    assert "f.pk IN (SELECT t.file_pk FROM file_tags AS t WHERE t.grp = 'user'" in lite.sql


def _expected_order(sort_key: str | None, desc: bool) -> list[str]:
    active = [(i, r) for i, r in enumerate(RECORDS) if r["Status"] == "ACTIVE"]
    if sort_key is None:
        return [r["DatasetFileMetaId"] for _, r in active]
    key = [(r[sort_key] if r[sort_key] is not None else -(2**63), i) for i, r in active]
    ordered = sorted(zip(key, active, strict=True), reverse=desc)
    return [r["DatasetFileMetaId"] for _, (_, r) in ordered]


@pytest.mark.parametrize("sort_matches", [False, True])
@pytest.mark.parametrize(("options", "sort_key", "desc"), [
    ("", None, False),
    (" AND SortBy='FileUpdateTime'", "FileUpdateTime", True),
    (" AND SortBy='FileUpdateTime' AND Order='ASC'", "FileUpdateTime", False),
    (" AND SortBy='FileCreateTime' AND Order='DESC'", "FileCreateTime", True),
])
def test_keyset_paging_visits_every_row_once_in_order(
        sql_loaded: Loaded, options: str, sort_key: str | None, desc: bool,
        sort_matches: bool) -> None:
    store, dataset_id, version = sql_loaded
    query = parse("HAS FileName" + options)
    seen: list[str] = []
    after, later = None, None
    for _ in range(20):
        page = compile_sql(query, store.dialect, dataset_id, version, limit=4, after=after,
                           sort_matches=sort_matches)
        if after is not None:  # one statement serves every later page, rebinding the cursor
            later = later or page
            assert with_cursor(later, after) == page
        rows = store.fetchall(page.sql, page.params)
        seen += [r[1] for r in rows]
        if len(rows) < 4:
            break
        after = rows[-1][0] if sort_key is None else (rows[-1][2], rows[-1][0])
    assert seen == _expected_order(sort_key, desc)


def test_with_cursor_refuses_a_statement_without_that_cursor() -> None:
    first_page = compile_sql(parse("HAS FileName"), "sqlite", "d", "v1", limit=4)
    with pytest.raises(ValueError, match="keyset cursor"):
        with_cursor(first_page, 7)
    by_pk = compile_sql(parse("HAS FileName"), "sqlite", "d", "v1", limit=4, after=3)
    with pytest.raises(ValueError, match="keyset cursor"):
        with_cursor(by_pk, (1, 2))


def test_filter_only_query_is_wrapped() -> None:
    tree = Compare("DataSize", Op.GT, 1)
    assert compile_sql(tree, "sqlite", "d", "v1") == compile_sql(Query(tree), "sqlite", "d", "v1")


def test_unbound_trees_are_refused() -> None:
    with pytest.raises(ValueError, match="unbound"):
        compile_sql(Compare("filename", Op.EQ, "a"), "sqlite", "d", "v1")


def test_semantics_doc_embeds_the_schema_table() -> None:
    text = Path(schema.__file__).with_name("SEMANTICS.md").read_text(encoding="utf-8")
    table = text.split("<!-- schema-table:start -->\n")[1].split("\n<!-- schema-table:end -->")[0]
    assert table == schema.describe()


def test_or_of_equalities_is_one_list_parameter() -> None:
    q = parse("Tags.all='a' OR FileName='x' OR Tags.all='b' OR FileName='x' OR DataSize=1")
    pg = compile_sql(q, "postgres", "d", "v1")
    assert "f.tags_all && %(p0)s OR f.file_name = ANY(%(p1)s) OR f.data_size = %(p2)s" in pg.sql
    assert (pg.params["p0"], pg.params["p1"]) == (["a", "b"], ["x"])
    lite = compile_sql(q, "sqlite", "d", "v1")
    assert "t.tag IN (SELECT value FROM JSON_EACH(:p0))" in lite.sql
    assert lite.params["p0"] == '["a", "b"]'


@pytest.mark.parametrize("mergeable", [True, False])
def test_very_long_or_runs(sql_loaded: Loaded, mergeable: bool) -> None:
    """1,200 alternatives: SQLite refuses expression trees deeper than 1,000."""
    store, dataset_id, version = sql_loaded
    ids = [f"f{n:02d}" for n in (1, 2, 9)] + [f"x{n}" for n in range(1200)]
    items = [Compare("DatasetFileMetaId", Op.EQ, i) if mergeable
             else Compare("DataSize", Op.EQ, -n - 1) for n, i in enumerate(ids)]
    query = Query(or_(*items, Compare("DataSize", Op.EQ, 2048)))
    compiled = compile_sql(query, store.dialect, dataset_id, version)
    assert {r[1] for r in store.fetchall(compiled.sql, compiled.params)} == oracle(query)


@pytest.mark.parametrize("sort", ["FileUpdateTime", "FileCreateTime"])
def test_sort_by_pages_walk_the_order_index(sort: str, pg_dsn: str) -> None:
    """The ORDER BY key is the expression PostgreSQL's *_order indexes hold: with sorting
    priced out, the plan walks the index (a key that differed would still need a Sort)."""
    from mmdm.adapters.metadata import open_store

    store = open_store(pg_dsn)
    page = compile_sql(parse(f"FileName:'a' AND SortBy='{sort}'"), "postgres", "d", "v1",
                       limit=10, after=(5, 7))
    store.execute("SET enable_sort = off")
    plan = " | ".join(r[0] for r in store.fetchall("EXPLAIN " + page.sql, page.params))
    assert "_order" in plan and "Sort" not in plan.replace("Sort Key", ""), plan
    store.close()


@pytest.mark.parametrize("sort", ["", " AND SortBy='FileUpdateTime'"])
def test_sort_matches_pages_sort_instead_of_walking_an_index(sort: str, pg_dsn: str) -> None:
    """With sorting priced out the planner would walk an index in key order if it could;
    sort_matches leaves it a key no index holds, so the plan must sort."""
    from mmdm.adapters.metadata import open_store

    store = open_store(pg_dsn)
    page = compile_sql(parse(f"Tags.all='rare'{sort}"), "postgres", "d", "v1", limit=10,
                       sort_matches=True)
    store.execute("SET enable_sort = off")
    plan = " | ".join(r[0] for r in store.fetchall("EXPLAIN " + page.sql, page.params))
    assert "Sort Key: ((" in plan and "+ 0)" in plan, plan
    store.close()
