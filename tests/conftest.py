"""Shared fixtures: the real PostgreSQL server, metadata stores on both engines, fake OSS."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from adapters.metadata import MetadataStore, open_store
from tests.fakes.fake_oss import FakeOss

# The PostgreSQL server the suite uses; CI starts the machine's server (see .ci/run).
PG_ADMIN_DSN = os.environ.get("MMDM_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def pg_admin_dsn() -> str:
    try:
        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"PostgreSQL is required (REQUIRE_SERVICES=1) but unreachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {exc}")
    return PG_ADMIN_DSN


@pytest.fixture
def pg_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """A throw-away database, dropped after the test."""
    name = f"mmdm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_admin_dsn.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[MetadataStore]:
    """The same contract on both engines."""
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'metadata.db'}")
    else:
        s = open_store(request.getfixturevalue("pg_dsn"))
    yield s
    s.close()


@pytest.fixture
def fake_oss() -> Iterator[FakeOss]:
    server = FakeOss().start()
    yield server
    server.stop()
