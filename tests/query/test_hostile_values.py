"""Values that used to reach the database unchecked: an accepted query returns the right answer
on every engine; anything else is a DSL error with a position, never a driver error."""

from __future__ import annotations

import pytest

from mmdm.adapters.metadata import FileMeta
from mmdm.adapters.search import SearchService
from mmdm.query import QueryError, evaluate, parse, parse_params
from mmdm.query.schema import MAX_VALUE_LENGTH

BIG = 2**53  # above it a float holds only some integers


@pytest.fixture
def rows(store):
    ds = store.create_dataset("hostile", "file:///h/")
    store.create_version(ds.dataset_id)
    times = ["2025-02-28T15:59:59.999Z", "2025-02-28T16:00:00.000Z", "2025-03-01T00:00:00.000Z"]
    metas = [FileMeta(f"m{i}", ds.dataset_id, "v1", f"file:///h/{i}.png", f"{i}.png", "dir",
                      data_size=size, file_update_time=_ms(times[i % 3]))
             for i, size in enumerate([BIG - 1, BIG, BIG + 1, BIG + 2, 10, 11])]
    store.upsert_file_metas(metas)
    return store, ds.dataset_id, {m.file_meta_id: m for m in store.iter_file_metas(
        ds.dataset_id, "v1")}


def _ms(iso: str) -> int:
    from mmdm.query.schema import parse_date

    return parse_date(iso)  # type: ignore[return-value]


def _ids(store, dataset_id: str, text: str) -> list[str]:
    page = SearchService(store).search(dataset_id, "v1", parse(text))  # 6 rows: one page
    return sorted(m.file_meta_id for m, _ in page.items)


def _oracle(metas: dict, text: str) -> list[str]:
    query = parse(text)
    return sorted(i for i, m in metas.items() if evaluate(query.filter, m.to_record()))


def _refused(text: str, code: str, at: str) -> None:
    with pytest.raises(QueryError) as info:
        parse(text)
    assert info.value.code == code
    start = text.index(at)
    assert (info.value.span.start, info.value.span.end) == (start, start + len(at))


def test_a_nul_or_a_lone_surrogate_in_a_value_is_a_dsl_error_with_its_position():
    _refused("FileDir:'ok' AND FileName='a\\u0000b'", "bad-value", "'a\\u0000b'")
    _refused("FileName:'\\udcff'", "bad-value", "'\\udcff'")
    _refused("Tags.all='x\x00'", "bad-value", "'x\x00'")
    for params in ({"QueryFileName": "a\x00"}, {"QueryTagsIncludeAny": "ok,\udcff"}):
        with pytest.raises(QueryError, match="NUL|surrogate"):
            parse_params(params)


def test_a_value_longer_than_the_limit_is_a_dsl_error_not_a_database_error(rows):
    store, dataset_id, _ = rows
    long = "x" * (MAX_VALUE_LENGTH + 1)
    _refused(f"FileName:'{long}'", "value-too-long", f"'{long}'")
    with pytest.raises(QueryError, match="at most 4096 characters"):
        parse_params({"QueryFileName": "y" * 1_000_000})
    fits = "z" * MAX_VALUE_LENGTH  # the longest accepted value runs on the engine
    assert _ids(store, dataset_id, f"FileName:'{fits}' OR FileDir:'{fits}'") == []


def test_an_over_long_number_literal_is_a_dsl_error():
    digits = "9" * 5000  # int() refuses more than 4300 digits: it was a ValueError, a 500
    _refused(f"DataSize > {digits}", "bad-number", digits)
    _refused("DataSize > 99999999999999999999", "bad-value", "99999999999999999999")


def test_integers_above_two_to_the_53_compare_exactly_on_every_engine(rows):
    store, dataset_id, metas = rows
    for text, want in [("DataSize = 9007199254740993.0", ["m2"]),  # 2^53 + 1, spelt as a float
                       ("DataSize > 9.007199254740992e15", ["m2", "m3"]),
                       ("DataSize >= 9007199254740993", ["m2", "m3"]),
                       ("DataSize < 9007199254740993.0 AND DataSize > 100", ["m0", "m1"]),
                       ("DataSize > 10.5", ["m0", "m1", "m2", "m3", "m5"])]:
        assert _ids(store, dataset_id, text) == _oracle(metas, text) == want, text
    # A fraction a float cannot hold at that size would compare as another number: refused.
    _refused("DataSize > 9007199254740992.5", "bad-number", "9007199254740992.5")


def test_a_date_with_an_offset_and_no_time_is_that_days_midnight_there(rows):
    store, dataset_id, metas = rows
    text = "FileUpdateTime >= '2025-03-01+08:00'"  # 2025-02-28T16:00:00Z
    assert parse(text).filter.value == "2025-02-28T16:00:00.000Z"
    assert _ids(store, dataset_id, text) == _oracle(metas, text) == ["m1", "m2", "m4", "m5"]


def _alternating(levels: int, negate: bool) -> str:
    text = "FileName='0.png'"
    for i in range(levels):
        inner = f"NOT ({text})" if negate else text
        text = f"(FileName='{i % 6}.png' {'OR' if i % 2 else 'AND'} {inner})"
    return text


@pytest.mark.parametrize("text", [
    "NOT (" * 63 + "FileName='1.png'" + ")" * 63,
    _alternating(31, negate=True),   # 63 levels: groups and NOTs in turn
    _alternating(63, negate=False),  # 64 levels of AND and OR in turn, opening on the right
], ids=["63-nots", "groups-and-nots", "and-or-groups"])
def test_nesting_up_to_the_documented_limit_runs_on_every_engine(rows, text):
    """SQLite's parser overflowed on about ten levels of NOT; the documented limit is 64."""
    store, dataset_id, metas = rows
    assert _ids(store, dataset_id, text) == _oracle(metas, text)


def test_a_database_error_on_an_accepted_query_is_a_clear_error(rows):
    """Whatever goes wrong in the database (here a table gone from under the store) reaches
    the caller as an error naming the database and the cause, never a raw driver exception."""
    from mmdm.adapters.errors import AdapterError

    store, dataset_id, _ = rows
    store.execute("DROP TABLE file_dirs" if store.dialect == "postgres" else
                  "DROP TABLE file_tags")
    text = "FileDir:'dir'" if store.dialect == "postgres" else "Tags.all='x'"
    with pytest.raises(AdapterError, match="the metadata database could not run this query"):
        _ids(store, dataset_id, text)
    with pytest.raises(AdapterError, match="could not run this query"):
        list(SearchService(store).iter_matches(dataset_id, "v1", parse(text)))
