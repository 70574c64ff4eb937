"""The vector-store compilers' pieces: literal quoting, folding, what can be pushed down."""

from __future__ import annotations

import pytest

from mmdm.query import And, Compare, Const, Has, Not, Op, Or, Query, UnsupportedFeatureError, parse
from mmdm.query.compile import es, milvus, vector

ODD = ['plain', 'q"uote', "back\\slash", 'both\\"', "new\nline\r\ttab", "'single'", "ü🚗", ""]


@pytest.mark.parametrize("value", ODD)
def test_quote_is_the_vector_adapters_quoting(value: str) -> None:
    from mmdm.adapters.vectors.milvus import quote_literal

    assert milvus.quote(value) == quote_literal(value)


@pytest.mark.parametrize("value", ODD)
def test_quoted_literal_is_one_milvus_lite_token(value: str) -> None:
    pytest.importorskip("milvus_lite")
    from milvus_lite.search.filter.tokens import tokenize

    tokens = [t for t in tokenize(f"file_meta_id == {milvus.quote(value)}")
              if t.kind.name != "EOF"]
    assert len(tokens) == 3 and tokens[2].value == value


def test_fold_absorbs_constants() -> None:
    eq = Compare("DatasetFileMetaId", Op.EQ, "a")
    assert vector.fold(Or((eq, Has("DatasetFileMetaId")))) == Const(True)
    assert vector.fold(And((eq, Not(Has("DatasetFileMetaId"))))) == Const(False)
    assert vector.fold(Or((eq, Not(Has("DatasetFileMetaId"))))) == eq
    assert vector.fold(Not(Not(eq))) == Not(Not(eq))


def test_pushable_keeps_only_supported_conjuncts() -> None:
    q = parse("DatasetFileMetaId='a' AND FileName:'x' AND (DatasetFileMetaId='b' OR "
              "DataSize > 1) AND NOT DatasetFileMetaId='c'")
    assert vector.pushable(q.filter) == parse(
        "DatasetFileMetaId='a' AND NOT DatasetFileMetaId='c'").filter
    assert vector.pushable(parse("FileName:'x' OR DatasetFileMetaId='a'").filter) == Const(True)


def test_range_rows_compile_when_a_backend_has_them() -> None:
    """No index field is numeric today; the row-driven leaves are ready for one."""
    node = Compare("DatasetFileMetaId", Op.GE, "m")
    assert milvus._expr(node) == 'file_meta_id >= "m"'
    assert es._compare(node, "file_meta_id") == {"range": {"file_meta_id": {"gte": "m"}}}


def test_es_uses_the_stores_field_paths() -> None:
    body = es.compile_es(parse("DatasetFileMetaId='a' OR DatasetFileMetaId='b'"),
                         {"file_meta_id": "file_meta_id.keyword"}).body
    assert body == {"bool": {"filter": [{"terms": {"file_meta_id.keyword": ["a", "b"]}}]}}


@pytest.mark.parametrize("compile_", [milvus.compile_milvus, es.compile_es])
def test_refusals_name_the_offending_condition(compile_) -> None:
    with pytest.raises(UnsupportedFeatureError, match=r"^Tags\.all='x' cannot be compiled"):
        compile_(parse("DatasetFileMetaId='a' OR NOT Tags.all='x'"))
    with pytest.raises(UnsupportedFeatureError, match="ACTIVE files only"):
        compile_(parse("Status='DELETED'"))
    assert compile_(Query(Const(True))) is not None
