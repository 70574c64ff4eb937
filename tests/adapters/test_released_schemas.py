"""Upgrades from every released schema, built from its own DDL (not a current schema with parts
dropped by hand): a store a user created at any earlier version opens, migrates, keeps its data
and ends with exactly the schema of a new store. The released migrations are pinned, because
editing one would leave existing stores on a schema no new store has."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest
from PIL import Image

from mmdm.adapters.jobs import run_tagging_job
from mmdm.adapters.metadata import MetadataStore, open_store
from mmdm.adapters.metadata.schema import MIGRATIONS, SCHEMA_VERSION
from mmdm.adapters.models import LocalPixelTagger
from mmdm.adapters.search import SearchService
from mmdm.query import parse
from tests.conftest import throwaway_database

# sha256 of each migration's statements, per dialect, as released. A new migration appends its
# digests here; a changed digest means a released migration was edited: add a new one instead.
RELEASED = {
    "sqlite": ["2087659deceb", "023cfbf678f6", "6ddf96bd9aa2", "9aaf211b17d4", "67f93e7379e2",
               "670b7835f49e", "564ed39d678a", "ba2284b87eba", "7aeb1222f993", "15d472d08e71"],
    "postgres": ["231c4c5eb185", "903ed7d23549", "be15cd40b33b", "c7a5a857b9c2",
                 "6fb4121e58c9", "a29c3607b0e6", "51a98b19b27a", "ba2284b87eba",
                 "d2f988d3448a", "3b7ea178748d"],
}


def _digest(statements: list[str]) -> str:
    return hashlib.sha256(json.dumps(statements).encode()).hexdigest()[:12]


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_released_migrations_are_never_edited(dialect: str) -> None:
    assert [_digest(m(dialect)) for m in MIGRATIONS] == RELEASED[dialect]


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/store.db"
        return
    admin = request.getfixturevalue("pg_admin_dsn")
    with throwaway_database(admin, "mmdm_released") as dsn:
        yield dsn


@contextmanager
def _raw(url: str) -> Iterator[Callable[[str], None]]:
    """Plain SQL on the database, outside the store (which would migrate it)."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None)
        try:
            yield lambda sql: conn.execute(sql) and None
        finally:
            conn.close()
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            yield lambda sql: conn.execute(sql) and None


def _create_released(url: str, version: int, folder) -> None:
    """The database as the store of schema ``version`` created it, with data written then
    about the three images in ``folder``."""
    dialect = "sqlite" if url.startswith("sqlite") else "postgres"
    root = folder.as_uri()
    tags, empty = ("'[\"red\"]'", "'[]'") if dialect == "sqlite" else ("ARRAY['red']", "'{}'")
    with _raw(url) as sql:
        sql("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for migration in MIGRATIONS[:version]:
            for statement in migration(dialect):
                sql(statement)
        sql(f"INSERT INTO schema_version (version) VALUES ({version})")
        # Only columns every released schema has, written as the code of that time did.
        sql("INSERT INTO datasets (dataset_id, name, uri, create_time, update_time) "
            f"VALUES ('d-old', 'old', '{root}/', 1, 1)")
        sql("INSERT INTO dataset_versions (dataset_id, version_name, version_number, uri, "
            f"create_time, update_time) VALUES ('d-old', 'v1', 1, '{root}/', 1, 1)")
        for i, (path, description) in enumerate([("Cars/Blue_Car", "A red car"),
                                                  ("cars/red", ""), ("", None)]):
            # Before v3 the store folded an empty description to NULL.
            folded = ("NULL" if description is None or (description == "" and version < 3)
                      else f"'{description.casefold()}'")
            described = "NULL" if description is None else f"'{description}'"
            sql("INSERT INTO file_metas (file_meta_id, dataset_id, dataset_version, uri, "
                "file_name, file_dir, file_name_folded, file_dir_folded, data_size, "
                "file_fingerprint, file_update_time, content_type, description, "
                "description_folded, tags_ai, tags_all, status) VALUES "
                f"('m{i}', 'd-old', 'v1', '{root}/{i}.png', '{i}.png', '{path}', "
                f"'{i}.png', '{path.casefold()}', {100 * (i + 1)}, 'fp{i}', {1000 + i}, "
                f"'image/png', {described}, {folded}, {tags if i == 0 else empty}, "
                f"{tags if i == 0 else empty}, 'ACTIVE')")
        sql("INSERT INTO prompts (prompt_id, name, tag_definitions, create_time, modify_time) "
            "VALUES ('pmt-old', 'colours', '{\"red\": \"red things\"}', 1, 1)")
        sql("INSERT INTO jobs (job_id, dataset_id, dataset_version, job_action, status, "
            "create_time, finish_time) VALUES ('dsjob-old', 'd-old', 'v1', 'FileMetaBuild', "
            "'Succeeded', 1, 2)")


def _catalog(store: MetadataStore) -> dict[str, list]:
    """Tables with their columns, indexes and triggers, comparable across two databases."""
    if store.dialect == "sqlite":
        tables = [t for (t,) in store.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {
            "columns": [(t, *c[1:]) for t in tables
                        for c in store.fetchall(f"PRAGMA table_info({t})")],
            "indexes": sorted(store.fetchall(
                "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'")),
            "triggers": sorted(store.fetchall(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")),
        }
    return {
        "columns": store.fetchall(
            "SELECT table_name, column_name, data_type, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = 'public' "
            "ORDER BY table_name, column_name"),
        "indexes": store.fetchall(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "ORDER BY indexname"),
        "triggers": store.fetchall(
            "SELECT trigger_name, event_manipulation, action_statement "
            "FROM information_schema.triggers ORDER BY 1, 2"),
    }


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_a_store_of_every_released_schema_upgrades_and_keeps_its_data(
        empty_url: str, version: int, tmp_path, request: pytest.FixtureRequest) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        Image.new("RGB", (32, 24), (200, 30 * i, 30)).save(images / f"{i}.png")
    _create_released(empty_url, version, images)
    store = open_store(empty_url)
    assert store.schema_version == SCHEMA_VERSION

    assert store.get_dataset("old").dataset_id == "d-old"
    metas = {m.file_meta_id: m for m in store.iter_file_metas("d-old", "v1")}
    assert sorted(metas) == ["m0", "m1", "m2"] and metas["m0"].tags_ai == ["red"]
    search = SearchService(store)

    def ids(dsl: str) -> list[str]:
        return sorted(m.file_meta_id for m, _ in search.search("d-old", "v1", parse(dsl)).items)

    assert ids("FileDir:'blue_car'") == ["m0"]
    assert ids("Description:''") == ["m0", "m1"]  # '' folded the way v3 settled
    assert ids("Tags.all='red'") == ["m0"]
    assert ids("DataSize >= 200 AND MaxResults=1") == ["m1"]
    assert store.get_prompt("colours").revision == 1
    # Today's jobs run on the upgraded rows: every file tagged, Increment then has nothing.
    tagger = LocalPixelTagger()
    full = run_tagging_job(store, "d-old", "v1", tagger=tagger, prompt="colours", mode="Full")
    assert (full.status, full.completed) == ("Succeeded", 3)
    assert run_tagging_job(store, "d-old", "v1", tagger=tagger, prompt="colours").total == 0

    with _fresh_store(store.dialect, tmp_path, request) as fresh:
        assert _catalog(store) == _catalog(fresh)
    store.close()


@contextmanager
def _fresh_store(dialect: str, tmp_path, request: pytest.FixtureRequest
                 ) -> Iterator[MetadataStore]:
    if dialect == "sqlite":
        fresh = open_store(f"sqlite:///{tmp_path}/fresh.db")
        yield fresh
        fresh.close()
        return
    with throwaway_database(request.getfixturevalue("pg_admin_dsn"), "mmdm_fresh") as url:
        fresh = open_store(url)
        yield fresh
        fresh.close()
