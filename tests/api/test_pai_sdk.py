"""PAI's own Python SDK (alibabacloud-aiworkspace20210204) drives the standalone server end to
end, signed with the server's AccessKey: datasets, versions, tag definitions, every kind of job
followed to its end, a stopped job, DSL paging, file-meta writes, and deletes. Every field the
checks read went through the SDK's own response models, so a shape PAI's SDK cannot map fails
here."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from pathlib import Path

import pytest
from alibabacloud_aiworkspace20210204 import models as pai
from alibabacloud_aiworkspace20210204.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils_models import Config

from mmdm.adapters.models import LOCAL_TAG_DEFINITION, open_tagger
from mmdm.adapters.samples import generate_samples
from mmdm.airflow_plugin.api import create_api_app, embedded_context
from mmdm.adapters.defaults import embedded_resources

from .conftest import FINAL_STATUSES
from .live_server import serve

TOKEN = "pai-sdk-token-" + "y" * 24
GATE = threading.Event()  # a "gated" tagging model waits on it: a job that runs until told


class GatedTagger:
    """The offline tagger, holding each call until ``GATE`` opens."""

    def __init__(self):
        self.inner = open_tagger("local")
        self.model = "gated"

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def tag(self, *args, **kwargs):
        GATE.wait(60)
        return self.inner.tag(*args, **kwargs)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("sdk-workspace")
    generate_samples(ws / "images", per_scene=2)  # 10 images and a corrupt .jpg
    return ws


@pytest.fixture(scope="module")
def client(workspace):
    def resources(ctx):
        base = embedded_resources(ctx.workspace(), export_roots=ctx.export_roots(),
                                  default_export_dir=ctx.default_export_dir())
        local_tagger = base.tagger
        base.tagger = lambda conn, model: GatedTagger() if model == "gated" else local_tagger(
            conn, model)
        return base

    ctx = embedded_context(workspace)
    ctx._job_resources = resources
    with serve(create_api_app(ctx, token=TOKEN)) as url:
        yield Client(Config(access_key_id="mmdm", access_key_secret=TOKEN,
                            endpoint=url.removeprefix("http://"), protocol="http"))
    GATE.set()


def run(client: Client, dataset_id: str, action: str, spec: dict, version: str = "v1",
        mode: str = "Full", timeout_s: float = 120) -> pai.GetDatasetJobResponseBody:
    """CreateDatasetJob, then GetDatasetJob until it has ended."""
    created = client.create_dataset_job(dataset_id, pai.CreateDatasetJobRequest(
        job_action=action, job_mode=mode, job_spec=json.dumps(spec), dataset_version=version,
        description=f"sdk {action}")).body
    assert created.dataset_job_id.startswith("dsjob-") and created.request_id
    return follow(client, dataset_id, created.dataset_job_id, version, timeout_s)


def follow(client, dataset_id, job_id, version="v1", timeout_s: float = 120):
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get_dataset_job(dataset_id, job_id,
                                     pai.GetDatasetJobRequest(dataset_version=version)).body
        if job.status in FINAL_STATUSES or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_the_whole_workflow_through_pais_sdk(client, workspace):
    images = (workspace / "images").as_uri()
    created = client.create_dataset(pai.CreateDatasetRequest(
        name="sdk-samples", uri=images, property="DIRECTORY", data_source_type="OSS",
        data_type="PIC", edition="ADVANCED", workspace_id="1")).body
    ds = created.dataset_id
    listed = client.list_datasets(pai.ListDatasetsRequest(name="sdk", page_size=10)).body
    assert listed.total_count == 1 and listed.datasets[0].dataset_id == ds
    got = client.get_dataset(ds, pai.GetDatasetRequest()).body
    assert got.name == "sdk-samples" and got.uri == images
    assert got.latest_version.version_name == "v1" and got.request_id

    # FileMetaBuild: 10 images registered, the corrupt one recorded as failed.
    build = run(client, ds, "FileMetaBuild", {})
    assert build.status == "PartialFailed", build.logs
    assert (build.total_file_count, build.completed_file_count, build.failed_file_count) == (
        11, 10, 1)
    versions = client.list_dataset_versions(ds, pai.ListDatasetVersionsRequest()).body
    assert [v.version_name for v in versions.dataset_versions] == ["v1"]
    assert versions.dataset_versions[0].data_count == 10

    # A tag definition in PAI's prompt shape, then IntelligentTag and SemanticIndex.
    prompt_id = client.create_prompt(pai.CreatePromptRequest(
        prompt_name="sdk-colours", workspace_id="1", framework_type="IntelligentTag",
        framework_content=json.dumps({"GuidePrompt": LOCAL_TAG_DEFINITION.guide_prompt,
                                      "TagDefinition": LOCAL_TAG_DEFINITION.tags}))).body.prompt_id
    prompt = client.get_prompt(prompt_id, pai.GetPromptRequest()).body
    assert prompt.prompt_name == "sdk-colours"
    assert json.loads(prompt.framework_content)["TagDefinition"] == LOCAL_TAG_DEFINITION.tags
    tag = run(client, ds, "IntelligentTag", {"promptId": prompt_id, "modelId": "local"},
              mode="Increment")
    assert tag.status == "Succeeded" and tag.completed_file_count == 10, tag.logs
    index = run(client, ds, "SemanticIndex", {"contentList": ["file"]}, mode="Increment")
    assert index.status == "Succeeded" and index.completed_file_count == 10, index.logs

    # Page a DSL query with MaxResults and NextToken, as every SDK user does.
    stats = client.get_dataset_file_metas_statistics(ds, pai.GetDatasetFileMetasStatisticsRequest(
        dataset_version="v1", aggregate_by="tags.ai", max_results=1)).body
    top_tag = stats.dataset_file_metas_stats[0].key
    seen, token = [], None
    while True:
        page = client.list_dataset_file_metas(ds, pai.ListDatasetFileMetasRequest(
            dataset_version="v1", query_expression=f"Tags.ai='{top_tag}'", max_results=3,
            next_token=token)).body
        seen += [m.dataset_file_meta_id for m in page.dataset_file_metas]
        token = page.next_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == page.total_count == stats.dataset_file_metas_stats[
        0].count
    meta = client.get_dataset_file_meta(ds, seen[0], pai.GetDatasetFileMetaRequest(
        dataset_version="v1")).body.dataset_file_meta
    assert top_tag in json.loads(meta.tags)["ai"]

    # User tags as the SDK sends them: Tags as a JSON string.
    updated = client.update_dataset_file_metas(ds, pai.UpdateDatasetFileMetasRequest(
        dataset_version="v1", dataset_file_metas=[pai.DatasetFileMetaConentUpdate(
            dataset_file_meta_id=seen[0], tags=json.dumps({"user": ["sdk-checked"]}),
            comment="checked by the SDK")])).body
    assert updated.status is True and not updated.failed_details
    after = client.get_dataset_file_meta(ds, seen[0], pai.GetDatasetFileMetaRequest()).body
    assert json.loads(after.dataset_file_meta.tags)["user"] == ["sdk-checked"]
    assert after.dataset_file_meta.comment == "checked by the SDK"
    scan_owned = client.update_dataset_file_metas(ds, pai.UpdateDatasetFileMetasRequest(
        dataset_file_metas=[pai.DatasetFileMetaConentUpdate(dataset_file_meta_id=seen[0],
                                                             data_size=1)])).body
    assert scan_owned.status is False and "DataSize" in scan_owned.failed_details[0].result

    # Export what the DSL finds, and import the export into a logical dataset.
    export = run(client, ds, "FileMetaExport", {"query": f"Tags.ai='{top_tag}'"})
    assert export.status == "Succeeded" and export.total_file_count == len(seen)
    logical = client.create_dataset(pai.CreateDatasetRequest(
        name="sdk-subset", uri=(workspace / "exports").as_uri(), property="DIRECTORY",
        data_source_type="OSS", edition="LOGICAL")).body.dataset_id
    manifest_uri = re.search(r"to (\S+/pai_dataset_filemeta_manifest\.yaml)",
                             "\n".join(export.logs)).group(1)  # an SDK user reads the logs
    imported = run(client, logical, "FileMetaImport", {"manifestUri": manifest_uri})
    assert imported.status == "Succeeded" and imported.total_file_count == len(seen)
    subset = client.list_dataset_file_metas(logical, pai.ListDatasetFileMetasRequest(
        dataset_version="v1", max_results=100)).body
    assert sorted(m.uri for m in subset.dataset_file_metas) == sorted(
        client.get_dataset_file_meta(ds, i, pai.GetDatasetFileMetaRequest()).body
        .dataset_file_meta.uri for i in seen)

    # Revert the tagging job: its tags are gone, the user's stay.
    revert = run(client, ds, "IntelligentTagRevert",
                 {"intelligentTagJobId": _job_id(client, ds, "IntelligentTag")})
    assert revert.status == "Succeeded" and revert.completed_file_count == 10
    reverted = client.get_dataset_file_meta(ds, seen[0], pai.GetDatasetFileMetaRequest()).body
    assert json.loads(reverted.dataset_file_meta.tags) == {
        "ai": [], "user": ["sdk-checked"], "user-delete-ai-tags": []}

    # Jobs: list with a filter, rename, stop a running and a pending one, delete.
    jobs = client.list_dataset_jobs(ds, pai.ListDatasetJobsRequest(
        dataset_version="v1", job_action="IntelligentTag")).body
    assert jobs.total_count == 1 and jobs.dataset_jobs[0].job_action == "IntelligentTag"
    _stops(client, ds, prompt_id)
    done = client.list_dataset_jobs(ds, pai.ListDatasetJobsRequest(status="ManuallyStop")).body
    assert done.total_count == 2
    client.update_dataset_job(ds, done.dataset_jobs[0].dataset_job_id,
                              pai.UpdateDatasetJobRequest(description="renamed"))
    assert client.get_dataset_job(ds, done.dataset_jobs[0].dataset_job_id,
                                  pai.GetDatasetJobRequest()).body.description == "renamed"
    client.delete_dataset_job(ds, done.dataset_jobs[0].dataset_job_id,
                              pai.DeleteDatasetJobRequest())
    assert client.list_dataset_jobs(
        ds, pai.ListDatasetJobsRequest(status="ManuallyStop")).body.total_count == 1

    # File metas by hand: create one for a new file, then delete it (logically).
    red = workspace / "images" / "red_bus"
    shutil.copy(sorted(red.iterdir())[0], red / "added.png")
    made = client.create_dataset_file_metas(ds, pai.CreateDatasetFileMetasRequest(
        dataset_version="v1", workspace_id="1", dataset_file_metas=[
            pai.DatasetFileMetaContentCreate(
                uri=f"{images}/red_bus/added.png", file_update_time="2026-12-01T00:00:00Z",
                file_finger_print="md5:0", file_type="image", content_type="image/png",
                tags=json.dumps({"user": ["by-hand"]})),
            pai.DatasetFileMetaContentCreate(
                uri="file:///etc/passwd", file_update_time="2026-12-01T00:00:00Z",
                file_finger_print="x", file_type="image", content_type="image/png")])).body
    assert made.status is False and len(made.succeed_details) == 1
    assert made.failed_details[0].uri == "file:///etc/passwd"
    new_id = made.succeed_details[0].dataset_file_meta_id
    by_hand = client.list_dataset_file_metas(ds, pai.ListDatasetFileMetasRequest(
        query_expression="Tags.user='by-hand'")).body
    assert [m.dataset_file_meta_id for m in by_hand.dataset_file_metas] == [new_id]
    deleted = client.delete_dataset_file_metas(ds, pai.DeleteDatasetFileMetasRequest(
        dataset_version="v1", dataset_file_meta_ids=f"{new_id},nope")).body
    assert deleted.status is False and [f.dataset_file_meta_id for f in
                                        deleted.failed_details] == ["nope"]
    gone = client.list_dataset_file_metas(ds, pai.ListDatasetFileMetasRequest(
        query_expression="Tags.user='by-hand'", status="DELETED")).body
    assert [m.dataset_file_meta_id for m in gone.dataset_file_metas] == [new_id]

    # Job configs: per-dataset defaults of index jobs, in PAI's shape.
    config_id = client.create_dataset_job_config(ds, pai.CreateDatasetJobConfigRequest(
        config_type="MultimodalSemanticIndex", workspace_id="1",
        config=json.dumps({"defaultModelId": "local-pixels"}))).body.dataset_job_config_id
    configs = client.list_dataset_job_configs(ds, pai.ListDatasetJobConfigsRequest()).body
    assert [c.dataset_job_config_id for c in configs.dataset_job_configs] == [config_id]
    config = client.get_dataset_job_config(ds, config_id, pai.GetDatasetJobConfigRequest()).body
    assert json.loads(config.config) == {"defaultModelId": "local-pixels"}
    client.delete_dataset_job_config(ds, config_id, pai.DeleteDatasetJobConfigRequest())
    assert client.list_dataset_job_configs(
        ds, pai.ListDatasetJobConfigsRequest()).body.total_count == 0

    # Versions and datasets: create, describe, delete.
    v2 = client.create_dataset_version(ds, pai.CreateDatasetVersionRequest(
        description="second", property="DIRECTORY", data_source_type="OSS")).body.version_name
    assert v2 == "v2"
    client.update_dataset_version(ds, v2, pai.UpdateDatasetVersionRequest(description="2nd"))
    assert client.get_dataset_version(ds, v2, pai.GetDatasetVersionRequest()).body.description \
        == "2nd"
    client.delete_dataset_version(ds, v2, pai.DeleteDatasetVersionRequest())
    client.update_dataset(ds, pai.UpdateDatasetRequest(description="checked by the SDK"))
    assert client.get_dataset(ds, pai.GetDatasetRequest()).body.description == \
        "checked by the SDK"
    client.delete_dataset(logical, pai.DeleteDatasetRequest())
    with pytest.raises(ClientException) as missing:
        client.get_dataset(logical, pai.GetDatasetRequest())
    assert missing.value.status_code == 404 and missing.value.code == "NotFound"
    assert [d.dataset_id for d in client.list_datasets(
        pai.ListDatasetsRequest()).body.datasets] == [ds]


def _job_id(client, ds, action):
    jobs = client.list_dataset_jobs(ds, pai.ListDatasetJobsRequest(job_action=action)).body
    return jobs.dataset_jobs[0].dataset_job_id  # the newest first


def _stops(client, ds, prompt_id):
    """A tagging job held by the gated model is running; a build queued behind it is pending.
    Both stop: the pending one never runs, the running one ends at its next status check."""
    GATE.clear()
    def create(action, spec):
        return client.create_dataset_job(ds, pai.CreateDatasetJobRequest(
            job_action=action, job_mode="Full", job_spec=json.dumps(spec))).body.dataset_job_id

    running = create("IntelligentTag", {"promptId": prompt_id, "modelId": "gated"})
    pending = create("FileMetaBuild", {})
    deadline = time.monotonic() + 30
    while client.get_dataset_job(ds, running, pai.GetDatasetJobRequest()).body.status != \
            "Running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    client.stop_dataset_job(ds, pending, pai.StopDatasetJobRequest())
    client.stop_dataset_job(ds, running, pai.StopDatasetJobRequest())
    GATE.set()
    assert follow(client, ds, running).status == "ManuallyStop"
    stopped = follow(client, ds, pending)
    assert stopped.status == "ManuallyStop" and stopped.total_file_count == 0
    with pytest.raises(ClientException) as again:
        client.stop_dataset_job(ds, pending, pai.StopDatasetJobRequest())
    assert again.value.status_code == 400 and again.value.code == "InvalidStatus"
