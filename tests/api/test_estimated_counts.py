"""TotalCount that does not scan: on PostgreSQL a TAG listing counts exactly up to a bound and
past it answers the planner's estimate, flagged beside PAI's TotalCount; an exact count on
request; NextToken pages keep the first page's figure and flag. The bounds are lowered here so
the 15-file version crosses them (bench/dsl.py measures the real ones at scale)."""

from __future__ import annotations

import pytest

from mmdm.adapters import search as search_module
from mmdm.adapters.search import SearchService
from mmdm.query import parse


@pytest.fixture
def low_bound(monkeypatch):
    monkeypatch.setattr(search_module, "QUICK_COUNT_UP_TO", 2)
    monkeypatch.setattr(search_module, "EXACT_COUNT_UP_TO", 5)


def test_past_the_bound_the_count_is_an_estimate_and_says_so(client, metas_url, low_bound):
    first = client.get(metas_url, params={"MaxResults": 4}).json()
    assert first["TotalCountIsEstimate"] is True and first["TotalCount"] >= 5
    second = client.get(metas_url, params={"MaxResults": 4,
                                           "NextToken": first["NextToken"]}).json()
    assert second["TotalCountIsEstimate"] is True  # the token carries figure and flag
    assert second["TotalCount"] == first["TotalCount"]
    exact = client.get(metas_url, params={"ExactTotalCount": "true"}).json()
    assert exact["TotalCount"] == 15 and "TotalCountIsEstimate" not in exact
    narrow = client.get(metas_url, params={"QueryFileDir": "red"}).json()
    assert narrow["TotalCount"] == 3 and "TotalCountIsEstimate" not in narrow  # under the bound
    bad = client.get(metas_url, params={"ExactTotalCount": "maybe"})
    assert bad.status_code == 400 and bad.json()["Code"] == "InvalidParameter.ExactTotalCount"


def test_the_plan_says_the_total_is_an_estimate(built, low_bound):
    search = SearchService(built.store)
    page = search.search(built.dataset_id, "v1", parse("MaxResults=3"))
    assert page.total_is_estimate and "planner's estimate" in page.plan
    assert not search.search(built.dataset_id, "v1", parse("MaxResults=3"),
                             exact_count=True).total_is_estimate


def test_the_planners_estimate_decides_whether_counting_goes_on(built, monkeypatch):
    """Past QUICK_COUNT_UP_TO matches, a filter the planner expects fewer than
    EXACT_COUNT_UP_TO for is counted on (its estimate may be far off); else the estimate is
    the answer at once."""
    from mmdm.query import compile_sql

    query = parse("MaxResults=3")  # the 15 files
    built.store.execute("ANALYZE file_metas")  # an estimate near 15, not the default 1
    plain = compile_sql(query, "postgres", built.dataset_id, "v1")
    [[plan]] = built.store.fetchall("EXPLAIN (FORMAT JSON) " + plain.sql, plain.params)
    estimate = int(plan[0]["Plan"]["Plan Rows"])
    assert estimate > 3
    monkeypatch.setattr(search_module, "QUICK_COUNT_UP_TO", 2)

    monkeypatch.setattr(search_module, "EXACT_COUNT_UP_TO", max(estimate + 1, 15))
    page = SearchService(built.store).search(built.dataset_id, "v1", query)
    assert (page.total_count, page.total_is_estimate) == (15, False)  # counted on

    monkeypatch.setattr(search_module, "EXACT_COUNT_UP_TO", estimate)
    page = SearchService(built.store).search(built.dataset_id, "v1", query)
    assert (page.total_count, page.total_is_estimate) == (max(estimate, 3), True)


def test_sqlite_counts_exactly(tmp_path, low_bound):
    """SQLite's planner has no row estimates: it always counts."""
    from mmdm.adapters.metadata import FileMeta, open_store

    store = open_store(f"sqlite:///{tmp_path}/m.db")
    ds = store.create_dataset("counts", "file:///data")
    store.create_version(ds.dataset_id)
    store.upsert_file_metas([FileMeta(file_meta_id=f"m{i}", dataset_id=ds.dataset_id,
                                      dataset_version="v1", uri=f"file:///data/f{i}.png",
                                      file_name=f"f{i}.png", file_dir="") for i in range(9)])
    page = SearchService(store).search(ds.dataset_id, "v1", parse("MaxResults=2"))
    assert (page.total_count, page.total_is_estimate) == (9, False)


def test_an_estimate_prices_sorting_at_every_match_not_at_those_counted(
        built, low_bound, monkeypatch):
    """The count behind an estimate stopped early; sorting would collect every match, so the
    time counted is scaled up to them before it is set against walking the key order."""
    built.store.execute("ANALYZE file_metas")  # an estimate near 15, whatever ran before
    svc = SearchService(built.store)
    counted: list[int] = []
    count = svc._timed_count

    def one_ms_a_count(*args, **kw):  # every count takes 1 ms, however many it found
        n, _ = count(*args, **kw)
        counted.append(n)
        return n, 1.0

    monkeypatch.setattr(svc, "_timed_count", one_ms_a_count)
    query = parse("MaxResults=3")
    total, estimated, ms = svc._total(built.dataset_id, "v1", query, False)
    assert estimated and total > counted[-1]
    assert ms == pytest.approx(len(counted) * total / counted[-1])
    # Walking costs more than the 1 ms counted, less than sorting every match would.
    walk_rows = min(built.store.key_span(built.dataset_id, "v1"), 4 * built.store.key_span(
        built.dataset_id, "v1") / total)
    monkeypatch.setattr(search_module, "WALK_MS_PER_ROW", (1.0 + ms) / 2 / walk_rows)
    page = svc.search(built.dataset_id, "v1", query)
    assert page.total_is_estimate and "walking the key order" in page.plan
