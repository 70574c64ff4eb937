"""The compose stack is production-shaped and points mmdm's default connections at it."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[1] / "docker" / "docker-compose.yml"


def test_compose_stack_has_every_service_and_preset_connections():
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert {"postgres", "redis", "airflow-api-server", "airflow-scheduler",
            "airflow-dag-processor", "airflow-triggerer", "airflow-worker", "milvus",
            "elasticsearch"} <= set(services)
    assert services["elasticsearch"]["image"].endswith(":8.17.0")
    worker = services["airflow-worker"]
    assert worker["build"]["dockerfile"] == "docker/Dockerfile"
    env = worker["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW_CONN_MMDM_METADATA_DEFAULT"].startswith("postgresql://")
    vectors = json.loads(env["AIRFLOW_CONN_MMDM_VECTORS_DEFAULT"])
    assert vectors == {"conn_type": "mmdm_milvus", "host": "http://milvus:19530"}
    dockerfile = (COMPOSE.parent / "Dockerfile").read_text()
    assert "FROM apache/airflow:3.3.2" in dockerfile and "pip install" in dockerfile
