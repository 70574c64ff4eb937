"""Property-based tests: token soup never escapes as anything but a DSL error; generated trees
round-trip through text and JSON; random valid queries agree between the oracle and SQL."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmdm.query import (Compare, Has, Not, Op, Query, QueryError, Semantic, and_, from_json, or_,
                        parse, to_dsl, to_json)
from mmdm.query import schema
from mmdm.query.ast import depth
from mmdm.query.schema import Role, Type

from .conftest import oracle
from .dataset import RECORDS

FAST = settings(max_examples=300, deadline=None)
DB = settings(max_examples=120, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])

# -- token soup ----------------------------------------------------------------------------------

WORDS = ["AND", "and", "Or", "oR", "NOT", "not", "HAS", "hAs", "(", ")", "((", "))", ":", "=",
         ">", ">=", "<", "<=", "!=", "==", "=>", "&", "|", "\\", "'", '"', ".", "-", "\u3000",
         "Tags", "Tags.", "FileNme", "文件名", "MetaAttributes", "MetaAttributes.", "Content",
         "TopK", "Status", "SortBy", "Tags.user-delete-ai-tags"]
WORDS += [a.name for a in schema.ATTRIBUTES if a.type is not Type.META]


def _quoted(q: str) -> st.SearchStrategy[str]:
    return st.text(max_size=6).map(lambda s: q + s + (q if len(s) % 3 else ""))


TOKEN = st.one_of(
    st.sampled_from(WORDS), _quoted("'"), _quoted('"'), st.integers().map(str),
    st.floats().map(repr), st.text(max_size=3),
    st.sampled_from(["'2025-01-01T00:00:00Z'", "'2025-13-01'", "1e999", "-0", "'\\q'",
                     "'\\u12'", "MetaAttributes.ImageWidth", "MetaAttributes.a-b"]),
)
SOUP = st.lists(st.tuples(TOKEN, st.sampled_from(["", " ", "\n", "\t"])), max_size=25).map(
    lambda parts: "".join(t + sep for t, sep in parts))


NAME_WORDS = ["Tags", "FileNme", "文件名", "MetaAttributes", "Tags.user-delete-ai-tags",
              "filename", "TAGS.ALL", "Comment"] + [a.name for a in schema.ATTRIBUTES]
NAMES = st.one_of(st.sampled_from(NAME_WORDS), st.text(min_size=1, max_size=6),
                  st.just("MetaAttributes.").map(lambda p: p + "ImageWidth"))
VALUES = st.one_of(_quoted("'"), _quoted('"'), st.integers().map(str), st.floats().map(repr),
                   st.sampled_from(["'2025-01-01T00:00:00Z'", "'2025-02-30'", "'ACTIVE'",
                                    "'all'", "'asc'", "'w_100'", "0", "5001", "-1", "1e999"]))
CLAUSE = st.one_of(
    st.tuples(NAMES, st.sampled_from([":", "=", ">", ">=", "<", "<="]), VALUES).map("".join),
    NAMES.map("HAS ".__add__),
)


@st.composite
def sentence(draw: st.DrawFn) -> str:
    """Grammatical-looking text (so the semantic layer is reached), sometimes cut or padded."""
    parts = []
    for i in range(draw(st.integers(1, 5))):
        if i:
            parts.append(draw(st.sampled_from(["AND", "and", "OR", "or"])))
        parts.extend(["NOT"] * draw(st.integers(0, 2)))
        clause = draw(CLAUSE)
        parts.append(f"({clause})" if draw(st.booleans()) else clause)
    if draw(st.integers(0, 3)) == 0 and len(parts) > 1:
        del parts[draw(st.integers(0, len(parts) - 1))]
    return " ".join(parts)


def _parses_or_raises_dsl_error(text: str) -> None:
    try:
        query = parse(text)
    except QueryError as err:
        assert err.code and err.source == text
        if err.span is not None:
            assert 0 <= err.span.start <= err.span.end <= len(text)
        err.render()
        err.to_dict()
        return
    assert parse(to_dsl(query)) == query


@FAST
@given(SOUP)
def test_token_soup_gives_a_query_or_a_dsl_error(text: str) -> None:
    _parses_or_raises_dsl_error(text)


@FAST
@given(sentence())
def test_sentences_give_a_query_or_a_dsl_error(text: str) -> None:
    _parses_or_raises_dsl_error(text)


@FAST
@given(st.text(max_size=40))
def test_any_text_gives_a_query_or_a_dsl_error(text: str) -> None:
    _parses_or_raises_dsl_error(text)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 150), st.integers(0, 150), st.sampled_from(["NOT ", "(", "NOT ("]))
def test_deep_nesting_never_crashes(opens: int, closes: int, unit: str) -> None:
    _parses_or_raises_dsl_error(unit * opens + "FileName='a'" + ")" * closes)


# -- generated trees -----------------------------------------------------------------------------

KEY = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}", fullmatch=True)
INT = st.integers(*schema.INT64)
# Floats as the lexer leaves them: one in [2^53, 2^63) spells an integer and parses as int.
NUMBER = st.one_of(INT, st.floats(allow_nan=False, allow_infinity=False).filter(
    lambda f: not 2**53 <= abs(f) < 2**63))
DATE = st.integers(schema.parse_date("0001-01-01") or 0, schema.parse_date("9999-12-31") or 0).map(
    schema.format_date)
SHORT_TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
                     max_size=8)  # NUL and lone surrogates: refused
FILTER_ROWS = [a for a in schema.ATTRIBUTES if a.role is Role.FILTER]


def _attr_name(row: schema.Attribute) -> st.SearchStrategy[str]:
    if row.type is Type.META:
        return st.lists(KEY, min_size=1, max_size=3).map(
            lambda keys: ".".join(["MetaAttributes", *keys]))
    return st.just(row.name)


@st.composite
def leaf(draw: st.DrawFn, text: st.SearchStrategy[str] = SHORT_TEXT,
         number: st.SearchStrategy[Any] = NUMBER, date: st.SearchStrategy[str] = DATE) -> Any:
    row = draw(st.sampled_from(FILTER_ROWS))
    name = draw(_attr_name(row))
    if draw(st.integers(0, 4)) == 0:
        return Has(name)
    op = draw(st.sampled_from(sorted(row.ops, key=lambda o: o.value)))
    if row.type is Type.DATE:
        value = draw(date)
    elif row.type is Type.NUMBER or (row.type is Type.META and op is not Op.EQ):
        value = draw(number)
    elif row.type is Type.META:
        value = draw(st.one_of(number, text))
    else:
        value = draw(text)
    return Compare(name, op, value)


def trees(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        group = st.lists(children, min_size=2, max_size=4)
        return st.one_of(children.map(Not), group.map(lambda xs: and_(*xs)),
                         group.map(lambda xs: or_(*xs)))

    return st.recursive(leaves, extend, max_leaves=12).filter(lambda t: depth(t) <= 60)


OPTION_VALUES = st.fixed_dictionaries({}, optional={
    "TopK": st.integers(1, 5000), "ScoreThreshold": st.floats(-1e6, 1e6),
    "QueryType": st.sampled_from(["MIX", "TAG", "VECTOR"]),
    "SortBy": st.sampled_from(["FileCreateTime", "FileUpdateTime"]),
    "Order": st.sampled_from(["ASC", "DESC"]), "MaxResults": st.integers(1, 100),
    "NextToken": SHORT_TEXT, "ThumbnailMode": st.sampled_from(["w_100", "p_50"]),
    "SignMode": st.just("PUBLIC"), "Status": st.sampled_from(["ACTIVE", "DELETED", "ALL"]),
    "IndexContent": st.sampled_from(["file", "description"]),
    "TextFactor": st.floats(0.01, 100), "AudioFactor": st.floats(0.01, 100),
})
QUERIES = st.builds(
    Query, trees(leaf()),
    st.one_of(st.none(), st.builds(Semantic, SHORT_TEXT, st.none()),
              st.builds(Semantic, st.none(), SHORT_TEXT),
              st.builds(Semantic, SHORT_TEXT, st.none(), SHORT_TEXT)),
    OPTION_VALUES,
)


@FAST
@given(QUERIES)
def test_generated_queries_round_trip_through_text(query: Query) -> None:
    assert parse(to_dsl(query)) == query


@FAST
@given(QUERIES)
def test_generated_queries_round_trip_through_json(query: Query) -> None:
    assert from_json(to_json(query)) == query


# -- oracle == SQL on the case dataset ---------------------------------------------------------

def _vocab(key: str) -> list[Any]:
    return sorted({r[key] for r in RECORDS if r[key] is not None}, key=repr)


TEXTS = st.one_of(
    st.sampled_from(_vocab("FileName") + _vocab("FileDir") + _vocab("ContentType")
                    + _vocab("FileType") + _vocab("Description") + _vocab("SemanticIndexJobId")
                    + sorted({t for r in RECORDS for g in r["Tags"].values() for t in g})),
    st.sampled_from(["car", "Car", "_", "%", "\\", "ß", "ss", "É", "é", "🚗", "", "800",
                     "n/a", "zzz"]),
)
NUMBERS = st.one_of(st.sampled_from(_vocab("DataSize")), st.sampled_from(
    [-1, 0, 1, 799.5, 800, 1920, -5, -1.5, 12, 2048.5, 2**63 - 1]), st.integers(-10, 5000))
DATES = st.sampled_from(sorted({r[k] for r in RECORDS for k in r if k.endswith("Time")
                                and r[k] is not None})).flatmap(
    lambda ms: st.sampled_from([ms - 1, ms, ms + 1])).map(schema.format_date)
META_KEYS = ["ImageWidth", "ImageHeight", "Image.Width", "Image", "flag", "n", "Score",
             "pages", "missing"]


@st.composite
def dataset_leaf(draw: st.DrawFn) -> Any:
    node = draw(leaf(text=TEXTS, number=NUMBERS, date=DATES))
    if node.attr.startswith("MetaAttributes."):
        name = "MetaAttributes." + draw(st.sampled_from(META_KEYS))
        return Has(name) if isinstance(node, Has) else Compare(name, node.op, node.value)
    return node


DATASET_QUERIES = st.builds(
    Query, trees(dataset_leaf()), st.none(),
    st.fixed_dictionaries({}, optional={"Status": st.sampled_from(["ACTIVE", "DELETED", "ALL"])}))


@DB
@given(DATASET_QUERIES)
def test_sqlite_agrees_with_oracle(sqlite_backend, query: Query) -> None:
    assert sqlite_backend(query) == oracle(query)


@DB
@given(DATASET_QUERIES)
def test_postgres_agrees_with_oracle(postgres_backend, query: Query) -> None:
    assert postgres_backend(query) == oracle(query)
