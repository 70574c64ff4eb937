"""The provider and plugin register with Airflow; connections map to adapters; secrets stay in."""

from __future__ import annotations

import importlib
import json

import pytest

from mmdm.airflow_plugin.provider_info import get_provider_info


def test_provider_info_declares_every_connection_form():
    info = get_provider_info()
    assert info["package-name"] == "mmdm" and info["versions"]
    types = {c["connection-type"]: c for c in info["connection-types"]}
    assert set(types) == {"mmdm_dashscope", "mmdm_eas", "mmdm_openai", "mmdm_clip",
                          "mmdm_milvus", "mmdm_oss", "mmdm_metadata"}
    for conn in types.values():
        module, _, name = conn["hook-class-name"].rpartition(".")
        hook = getattr(importlib.import_module(module), name)
        assert hook.conn_type == conn["connection-type"]
        behaviour = conn["ui-field-behaviour"]
        assert set(behaviour) == {"hidden-fields", "relabeling", "placeholders"}
        for field in conn["conn-fields"].values():
            assert field["label"] and "type" in field["schema"]
    assert types["mmdm_oss"]["conn-fields"]["security_token"]["schema"]["format"] == "password"


def test_provider_info_lists_hooks_and_operators_like_official_providers():
    from airflow.sdk import BaseHook, BaseOperator

    info = get_provider_info()
    integration = info["integrations"][0]["integration-name"]
    listed = {kind: [m for entry in info[kind] if entry["integration-name"] == integration
                     for m in entry["python-modules"]] for kind in ("hooks", "operators")}
    classes = {kind: {name for module in modules
                      for name, obj in vars(importlib.import_module(module)).items()
                      if isinstance(obj, type) and issubclass(obj, base)
                      and obj.__module__ == module}
               for (kind, modules), base in zip(listed.items(), (BaseHook, BaseOperator))}
    assert {c["hook-class-name"].rpartition(".")[2] for c in info["connection-types"]} <= (
        classes["hooks"])
    assert {"FileMetaBuildOperator", "SmartTagOperator", "TagRevertOperator",
            "SemanticIndexOperator", "ExportOperator", "ImportOperator", "SearchOperator",
            "EvaluateEmbeddingOperator"} <= classes["operators"]


def test_airflow_lists_the_provider_and_the_plugin(airflow_db):
    from airflow import plugins_manager
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "mmdm" in manager.providers
    assert {"mmdm_dashscope", "mmdm_eas", "mmdm_openai", "mmdm_clip", "mmdm_milvus",
            "mmdm_oss", "mmdm_metadata"} <= set(manager.hooks)
    plugins = plugins_manager.get_plugin_info()
    assert any(p["name"] == "mmdm" for p in plugins)


def _conn(monkeypatch, conn_id, **fields):
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


def test_connections_become_adapters(monkeypatch, tmp_path, fake_oss):
    from mmdm.adapters.models import DashScopeEmbedder, DashScopeTagger, EasGmeEmbedder
    from mmdm.adapters.models import LocalImageEmbedder, LocalPixelTagger
    from mmdm.adapters.vectors.milvus import MilvusVectorStore
    from mmdm.adapters.vectors.pgvector import PgVectorStore
    from mmdm.airflow_plugin.hooks.metadata import MetadataStoreHook
    from mmdm.airflow_plugin.hooks.models import embedder_for, tagger_for
    from mmdm.airflow_plugin.hooks.oss import OssHook
    from mmdm.airflow_plugin.hooks.vectors import vector_store_for

    assert isinstance(tagger_for(), LocalPixelTagger)  # no default connection: embedded
    assert isinstance(embedder_for(), LocalImageEmbedder)
    _conn(monkeypatch, "mmdm_dashscope_default", conn_type="mmdm_dashscope",
          password="sk-secret-value", host="http://127.0.0.1:1/api/v1")
    assert isinstance(tagger_for(), DashScopeTagger)
    _conn(monkeypatch, "gme", conn_type="mmdm_eas", host="http://127.0.0.1:1/api/predict/gme",
          password="eas-token", extra={"dimension": "1536"})
    gme = embedder_for("gme")
    assert isinstance(gme, EasGmeEmbedder) and gme.dimension == 1536
    _conn(monkeypatch, "mmdm_embedding_default", conn_type="mmdm_dashscope", password="sk-x")
    assert isinstance(embedder_for(), DashScopeEmbedder)
    with pytest.raises(Exception, match="not defined"):
        embedder_for("missing_conn")

    _conn(monkeypatch, "meta", conn_type="mmdm_metadata", host=str(tmp_path / "meta.db"))
    sqlite = MetadataStoreHook("meta").get_store()
    assert sqlite.dialect == "sqlite"
    _conn(monkeypatch, "lite", conn_type="mmdm_milvus", host=str(tmp_path / "m.db"))
    assert isinstance(vector_store_for("lite", "t", 8, sqlite), MilvusVectorStore)
    # No vector connection: Milvus Lite beside SQLite metadata, pgvector beside the embedded
    # PostgreSQL (the workspace default, shared by every process).
    assert isinstance(vector_store_for(None, "t", 8, sqlite), MilvusVectorStore)
    embedded = MetadataStoreHook(None).get_store()
    assert embedded.dialect == "postgres"
    assert isinstance(vector_store_for(None, "t", 8, embedded), PgVectorStore)
    _conn(monkeypatch, "pg", conn_type="postgres", host="db.example", login="u",
          password="p@ss", schema="mmdm", port=5432)
    assert MetadataStoreHook("pg").store_url().startswith("postgresql://u:p%40ss@db.example")
    _conn(monkeypatch, "oss", conn_type="mmdm_oss", host=fake_oss.endpoint, login="ak",
          password="sk", extra={"region": "cn-hangzhou"})
    config = OssHook("oss").get_config()
    assert (config.endpoint, config.access_key_id, config.region) == (
        fake_oss.endpoint, "ak", "cn-hangzhou")


def test_secrets_never_reach_xcom_jobs_or_exports(airflow_db, monkeypatch, tmp_path):
    """A real DashScope-backed tagging task (fake server): the key stays out of everything
    the task writes."""
    from airflow.sdk import DAG

    from mmdm.adapters.models import LOCAL_TAG_DEFINITION
    from mmdm.adapters.samples import generate_samples
    from mmdm.airflow_plugin.hooks.metadata import MetadataStoreHook
    from mmdm.airflow_plugin.operators.export import ExportOperator
    from mmdm.airflow_plugin.operators.tagging import SmartTagOperator
    from tests.fakes.fake_dashscope import FakeDashScope

    secret = "sk-very-secret-dashscope-key-123"
    fake = FakeDashScope(api_key=secret).start()
    try:
        _conn(monkeypatch, "ds_secret", conn_type="mmdm_dashscope", password=secret,
              host=fake.base_url)
        store = MetadataStoreHook().get_store()
        generate_samples(tmp_path / "imgs", per_scene=1)
        ds = store.create_dataset("secret-test", (tmp_path / "imgs").as_uri())
        store.create_version(ds.dataset_id)
        store.create_prompt("secret-tags", LOCAL_TAG_DEFINITION.tags)
        from mmdm.adapters.scan import build_file_metas

        build_file_metas(store, ds.dataset_id, "v1")
        tag = SmartTagOperator(task_id="tag", dataset="secret-test", prompt="secret-tags",
                               dashscope_conn_id="ds_secret", model="qwen-vl-plus",
                               dag=DAG("secret_dag", schedule=None))
        out = tag.execute(context={})
        export = ExportOperator(task_id="export", dataset="secret-test",
                                export_dir=str(tmp_path / "out"),
                                dag=DAG("secret_dag2", schedule=None))
        manifest = export.execute(context={"outlet_events": {}})
    finally:
        fake.stop()
    assert out["CompletedFileCount"] == 5
    assert fake.requests and all(r.headers.get("authorization") == f"Bearer {secret}"
                                 for r in fake.requests if r.method == "POST")
    written = [json.dumps(out), json.dumps(manifest)]
    for job in store.list_jobs(ds.dataset_id, "v1"):
        written += [json.dumps(job.to_pai(store.job_logs(job.job_id))), json.dumps(job.result)]
    written += [p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert all(secret not in text for text in written)
    assert any("ds_secret" in text for text in written)  # the connection id is recorded


def test_an_openai_compatible_connection_tags_and_embeds(airflow_db, monkeypatch, fake_openai,
                                                         tmp_path):
    """One ``mmdm_openai`` connection (a vLLM-style server) gives the VLM and the embedder its
    extras name; a SmartTagOperator on it tags through the real client."""
    from mmdm.adapters.models import LOCAL_TAG_DEFINITION, OpenAIEmbedder, OpenAITagger
    from mmdm.adapters.samples import generate_samples
    from mmdm.airflow_plugin.hooks.metadata import MetadataStoreHook
    from mmdm.airflow_plugin.hooks.models import embedder_for, tagger_for
    from mmdm.airflow_plugin.operators.tagging import SmartTagOperator

    _conn(monkeypatch, "vllm", conn_type="mmdm_openai", host=fake_openai.base_url,
          password=fake_openai.api_key,
          extra={"model": "qwen2.5-vl-7b", "embedding_model": "gme-2b", "dimension": "64",
                 "image_input": "objects", "supports_text": "false"})
    vlm = tagger_for("vllm")
    assert isinstance(vlm, OpenAITagger) and vlm.model == "qwen2.5-vl-7b"
    assert tagger_for("vllm", "other-vlm").model == "other-vlm"  # the operator's model wins
    emb = embedder_for("vllm")
    assert isinstance(emb, OpenAIEmbedder)
    assert (emb.model, emb.dimension, emb.image_input, emb.supports_text) == (
        "gme-2b", 64, "objects", False)

    generate_samples(tmp_path / "images", per_scene=1)
    store = MetadataStoreHook(None).get_store()
    ds = store.create_dataset("openai-conn", (tmp_path / "images").as_uri())
    store.create_version(ds.dataset_id)
    from mmdm.adapters.scan import build_file_metas

    build_file_metas(store, ds.dataset_id, "v1")
    if not any(p.name == "pixel-statistics" for p in store.list_prompts()):
        store.create_prompt("pixel-statistics", LOCAL_TAG_DEFINITION.tags,
                            guide_prompt=LOCAL_TAG_DEFINITION.guide_prompt)
    out = SmartTagOperator(task_id="tag", dataset=ds.dataset_id, prompt="pixel-statistics",
                           dashscope_conn_id="vllm", mode="Full").execute({})
    assert out["CompletedFileCount"] == 5
    chats = fake_openai.requests_to("/v1/chat/completions")
    assert len(chats) == 5 and {r.body["model"] for r in chats} == {"qwen2.5-vl-7b"}
    job = store.get_job(out["DatasetJobId"])
    assert job.job_spec["modelId"] == "qwen2.5-vl-7b"
    assert fake_openai.api_key not in json.dumps(job.job_spec) + json.dumps(out)
