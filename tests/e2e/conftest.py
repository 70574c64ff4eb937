"""One real Airflow deployment per executor configuration, shared by the e2e tests.

The session fixture is parametrised, so pytest runs every e2e test on LocalExecutor, tears that
deployment down, then runs them again on CeleryExecutor with two workers and Redis as broker.
Each deployment has its own Airflow database (PostgreSQL) and its own mmdm workspace holding
two datasets: one the pipeline DAG builds itself, one built here for the sharded DAG.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mmdm.adapters.metadata import MetadataStore, open_store
from mmdm.adapters.metadata.embedded import workspace_store_url
from mmdm.adapters.models import LOCAL_TAG_DEFINITION
from mmdm.adapters.samples import generate_samples
from mmdm.adapters.scan import build_file_metas
from tests.conftest import throwaway_database

from .deployment import Deployment

REDIS_URL = os.environ.get("MMDM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PIPELINE, SHARDED = "e2e-pipeline", "e2e-sharded"
PER_SCENE = 3  # 5 scenes x 3 images (one of each format, TIFF included) per dataset


@dataclass
class Workspace:
    path: Path
    store: MetadataStore
    images: int  # per dataset


def _require(service: str, problem: str) -> None:
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{service} is required (REQUIRE_SERVICES=1): {problem}")
    pytest.skip(f"{service} unavailable: {problem}")


def _redis_reachable() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        _require("Redis", f"{REDIS_URL}: {exc}")


def prepare_workspace(path: Path) -> Workspace:
    store = open_store(workspace_store_url(path))
    store.create_prompt("pixel-statistics", LOCAL_TAG_DEFINITION.tags,
                        guide_prompt=LOCAL_TAG_DEFINITION.guide_prompt)
    counts = {}
    for name in (PIPELINE, SHARDED):
        made = generate_samples(path / name, per_scene=PER_SCENE)
        counts[name] = made["images"]
        ds = store.create_dataset(name, (path / name).as_uri())
        store.create_version(ds.dataset_id)
    build_file_metas(store, SHARDED, "v1")  # the sharded DAG tags and indexes a built version
    assert counts[PIPELINE] == counts[SHARDED]
    return Workspace(path, store, counts[PIPELINE])


@pytest.fixture(scope="session", params=["LocalExecutor", "CeleryExecutor"])
def deployment(request: pytest.FixtureRequest, pg_admin_dsn: str,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    celery = request.param == "CeleryExecutor"
    if celery:
        _redis_reachable()
    root = tmp_path_factory.mktemp(request.param.lower())
    with throwaway_database(pg_admin_dsn, "airflow_e2e") as dsn:
        dep = Deployment(request.param, root / "airflow", root / "workspace",
                         dsn.replace("postgresql://", "postgresql+psycopg://", 1),
                         redis_url=REDIS_URL if celery else None)
        try:
            dep.start()
            yield dep
        finally:
            dep.stop()


@pytest.fixture(scope="session")
def workspace(deployment: Deployment) -> Workspace:
    return prepare_workspace(deployment.workspace)


@pytest.fixture(scope="session")
def runs(deployment: Deployment, workspace: Workspace) -> dict[str, str]:
    """The pipeline and the sharded DAG, triggered through the REST API at the same time;
    the training DAG waits for the pipeline's export Asset."""
    deployment.unpause("mmdm_training")
    return {
        "mmdm_dataset_pipeline": deployment.trigger("mmdm_dataset_pipeline", {
            "dataset": PIPELINE, "version": "v1", "mode": "Full"}),
        "mmdm_sharded_tagging": deployment.trigger("mmdm_sharded_tagging", {
            "dataset": SHARDED, "version": "v1", "shards": 4}),
    }
