"""Shared fixtures: the real PostgreSQL server, metadata stores on both engines, the fake
cloud servers (OSS, DashScope, EAS)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Airflow reads its configuration when first imported: point it at a throw-away home, the
# repository's dags/ folder and an SQLite database before any test imports it.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="mmdm-airflow-")
os.environ.update({
    "AIRFLOW_HOME": _AIRFLOW_HOME,
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": str(Path(__file__).resolve().parents[1] / "dags"),
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME}/airflow.db",
    "MMDM_WORKSPACE": os.path.join(_AIRFLOW_HOME, "mmdm-workspace"),
})

import uuid  # noqa: E402
from urllib.parse import urlsplit, urlunsplit  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import psycopg  # noqa: E402
import pytest  # noqa: E402

from mmdm.adapters.metadata import MetadataStore, open_store  # noqa: E402
from tests.fakes.fake_dashscope import FakeDashScope  # noqa: E402
from tests.fakes.fake_eas import FakeEas  # noqa: E402
from tests.fakes.fake_openai import FakeOpenAI  # noqa: E402
from tests.fakes.fake_oss import FakeOss  # noqa: E402

def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite golden files from the current output instead of comparing")


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


@contextmanager
def throwaway_database(admin_dsn: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the test server; dropped afterwards, connections and all."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(admin_dsn)._replace(path="/" + name))
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """A throw-away database, dropped after the test."""
    with throwaway_database(pg_admin_dsn, "mmdm_test") as dsn:
        yield dsn


@pytest.fixture(scope="session")
def pgvector_admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The embedded PostgreSQL (pgvector, pg_trgm) that mmdm ships as its default database;
    the machine's server has no pgvector. Started once, stopped when the session ends."""
    from mmdm.adapters.metadata.embedded import embedded_postgres_url

    return embedded_postgres_url(tmp_path_factory.mktemp("embedded-pg") / "pg")


@pytest.fixture
def pgvector_dsn(pgvector_admin_dsn: str) -> Iterator[str]:
    """A throw-away database on the embedded server."""
    with throwaway_database(pgvector_admin_dsn, "mmdm_vec") as dsn:
        yield dsn


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
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> int:
    """Every timestamp mmdm takes falls in one millisecond, as on a fast machine now and
    then: the job that starts is created in the millisecond the last one ended."""
    from types import SimpleNamespace

    from mmdm.adapters import timeutil
    ms = timeutil.now_ms()
    monkeypatch.setattr(timeutil, "time", SimpleNamespace(time_ns=lambda: ms * 1_000_000))
    return ms


@pytest.fixture
def fake_oss() -> Iterator[FakeOss]:
    server = FakeOss().start()
    yield server
    server.stop()


@pytest.fixture
def fake_dashscope() -> Iterator[FakeDashScope]:
    server = FakeDashScope().start()
    yield server
    server.stop()


@pytest.fixture
def fake_eas() -> Iterator[FakeEas]:
    server = FakeEas().start()
    yield server
    server.stop()


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """Airflow's own metadata database, created once per test session."""
    from airflow.utils import db

    db.resetdb()
    return _AIRFLOW_HOME


@pytest.fixture(scope="session", autouse=True)
def _stop_embedded_postgres() -> Iterator[None]:
    """Stop the embedded PostgreSQL servers the session started while logging still works."""
    yield
    from embedded_postgres.postgres_server import PostgresServer

    for server in list(PostgresServer._instances.values()):
        server.cleanup()


@pytest.fixture(scope="session", autouse=True)
def _stop_milvus_lite() -> Iterator[None]:
    """Stop Milvus Lite servers while logging still works (its exit hook logs to a closed
    stream otherwise)."""
    yield
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:
        return
    server_manager_instance.release_all()
