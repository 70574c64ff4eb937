"""PAI's dataset, version, prompt and job actions on their edges: what they refuse, what a
delete removes (vectors included), and the PAI error shape for actions mmdm lacks."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from mmdm.adapters.jobs import default_index_set_id
from mmdm.adapters.models import open_embedder
from mmdm.adapters.vectors.default import default_vector_store
from mmdm.airflow_plugin.api import create_api_app, embedded_context
from mmdm.airflow_plugin.api.context import VECTOR_TABLE

from .conftest import build_dataset, follow_job


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """A workspace of its own: these tests delete what they built."""
    built = build_dataset(tmp_path_factory.mktemp("actions-workspace"), name="actions")
    with TestClient(create_api_app(embedded_context(built.workspace))) as client:
        yield built, client


def test_every_answer_carries_a_request_id_and_missing_actions_say_so(own):
    built, client = own
    ok = client.get(f"/api/v1/datasets/{built.dataset_id}")
    assert ok.json()["RequestId"] == ok.headers["x-acs-request-id"]
    labels = client.put(f"/api/v1/datasets/{built.dataset_id}/labels", json={"Labels": []})
    assert labels.status_code == 404
    body = labels.json()
    assert body["Code"] == "NotImplemented" and "PUT /api/v1/datasets/" in body["Message"]
    assert body["RequestId"]
    publish = client.put(f"/api/v1/datasets/{built.dataset_id}/publish")
    assert publish.status_code in (404, 405) and publish.json()["Code"] == "NotImplemented"


def test_datasets_register_only_folders_under_the_data_roots(own, tmp_path):
    built, client = own
    for uri in ("file:///etc/", (built.workspace / "..").resolve().as_uri(), "oss://any/b/"):
        r = client.post("/api/v1/datasets", json={"Name": "outside", "Uri": uri})
        assert r.status_code == 400 and r.json()["Code"] == "InvalidParameter.Uri", uri
    taken = client.post("/api/v1/datasets", json={"Name": "actions",
                                                  "Uri": (built.workspace / "images").as_uri()})
    assert taken.status_code == 400 and "exists already" in taken.json()["Message"]
    version = client.post(f"/api/v1/datasets/{built.dataset_id}/versions",
                          json={"Uri": "file:///etc/"})
    assert version.status_code == 400


def test_a_deleted_version_takes_its_vectors_and_jobs_along(own):
    built, client = own
    url = f"/api/v1/datasets/{built.dataset_id}"
    assert client.post(f"{url}/versions", json={"Description": "again"}).json()[
        "VersionName"] == "v2"
    for action in ("FileMetaBuild", "SemanticIndex"):
        r = client.post(f"{url}/datasetjobs", json={"JobAction": action,
                                                     "DatasetVersion": "v2"})
        job = follow_job(client, f"{url}/datasetjobs", r.json()["DatasetJobId"])
        assert job["Status"] in ("Succeeded", "PartialFailed"), job
    embedder = open_embedder("local")
    vectors = default_vector_store(built.store, built.workspace, VECTOR_TABLE, embedder.dimension)
    index_set = default_index_set_id(built.dataset_id, "v2", embedder.model, embedder.dimension)
    assert vectors.count(index_set) == 15

    assert client.delete(f"{url}/versions/v2").json()["RequestId"]
    assert vectors.count(index_set) == 0
    assert client.get(f"{url}/versions/v2").status_code == 404
    assert client.get(f"{url}/datasetjobs", params={"DatasetVersion": "v2"}).json()[
        "TotalCount"] == 0
    # The next version takes the name again and starts empty: no vectors, no index.
    assert client.post(f"{url}/versions", json={}).json()["VersionName"] == "v2"
    r = client.get(f"{url}/datasetfilemetas", params={"DatasetVersion": "v2",
                                                      "QueryExpression": "Content:'red'"})
    assert r.status_code in (400, 404) and "SemanticIndex" in r.json()["Message"]
    assert client.get(f"{url}/versions/v1").json()["DataCount"] == 15  # v1 untouched


def test_jobs_refuse_what_they_cannot_do(own):
    built, client = own
    url = f"/api/v1/datasets/{built.dataset_id}/datasetjobs"
    cases = [
        ({"JobAction": "FileMetaImport", "JobSpec": {"manifestUri": "file:///etc/x.yaml"}},
         "InvalidParameter.JobSpec.manifestUri"),
        ({"JobAction": "FileMetaImport", "JobSpec": {"srcDatasetId": built.dataset_id}},
         "InvalidParameter.DatasetVersion"),  # v1 is scanned, not logical
        ({"JobAction": "IntelligentTag", "JobSpec": {"promptId": "pmt-none"}}, "NotFound"),
        ({"JobAction": "IntelligentTag", "JobMode": "Sometimes",
          "JobSpec": {"promptId": "pixel-statistics"}}, "InvalidParameter.JobMode"),
    ]
    for body, code in cases:
        r = client.post(url, json=body)
        assert r.json()["Code"] == code, (body, r.text)
    # A connection the standalone server does not have fails the job with a clear reason.
    r = client.post(url, json={"JobAction": "SemanticIndex",
                               "JobSpec": json.dumps({"embeddingConnectionId": "conn-x"})})
    job = follow_job(client, url, r.json()["DatasetJobId"])
    assert job["Status"] == "Failed" and "no embedding connection 'conn-x'" in job["Result"][
        "error"]
    assert any("conn-x" in line for line in job["Logs"])
    finished = client.put(f"{url}/{job['DatasetJobId']}/action/stop", json={})
    assert finished.status_code == 400 and finished.json()["Code"] == "InvalidStatus"


def test_prompts_are_tag_definitions(own):
    _, client = own
    content = {"GuidePrompt": "You sort photos.", "TagDefinition": {"cat": "a cat is visible"}}
    created = client.post("/api/v1/prompts", json={
        "PromptName": "pets", "FrameworkContent": json.dumps(content)}).json()
    prompt_id = created["PromptId"]
    got = client.get(f"/api/v1/prompts/{prompt_id}").json()
    assert json.loads(got["FrameworkContent"]) == content and got["Revision"] == 1
    content["TagDefinition"]["dog"] = "a dog is visible"
    client.put(f"/api/v1/prompts/{prompt_id}", json={"FrameworkContent": json.dumps(content),
                                                     "Description": "pets, v2"})
    got = client.get(f"/api/v1/prompts/{prompt_id}").json()
    assert got["Revision"] == 2 and got["Description"] == "pets, v2"
    assert json.loads(got["FrameworkContent"])["TagDefinition"]["dog"] == "a dog is visible"
    for bad in ("not json", json.dumps({"TagDefinition": {}}), json.dumps({"x": 1})):
        r = client.post("/api/v1/prompts", json={"PromptName": "bad", "FrameworkContent": bad})
        assert r.status_code == 400 and r.json()["Code"] == "InvalidParameter.FrameworkContent"
    names = [p["PromptName"] for p in client.get("/api/v1/prompts").json()["Prompts"]]
    assert "pets" in names
    assert client.delete(f"/api/v1/prompts/{prompt_id}").status_code == 200
    assert client.get(f"/api/v1/prompts/{prompt_id}").status_code == 404


def test_job_configs_fill_what_a_job_request_leaves_out(own):
    built, client = own
    url = f"/api/v1/datasets/{built.dataset_id}"
    wide = client.post(f"{url}/datasetjobconfigs", json={
        "ConfigType": "MultimodalSemanticIndex",
        "Config": json.dumps({"databaseTableName": "wide_table", "concurrency": 2})}).json()
    client.post(f"{url}/datasetjobconfigs", json={
        "ConfigType": "MultimodalSemanticIndex", "DatasetVersion": "v1",
        "Config": json.dumps({"databaseTableName": "v1_table", "defaultModelId": "m-1"})})
    listed = client.get(f"{url}/datasetjobconfigs/").json()  # PAI's trailing slash
    assert listed["TotalCount"] == 2
    assert client.get(f"{url}/datasetjobconfigs/",
                      params={"DatasetVersion": "v1"}).json()["TotalCount"] == 1
    got = client.get(f"{url}/datasetjobconfigs/{wide['DatasetJobConfigId']}").json()
    assert got["ConfigType"] == "MultimodalSemanticIndex"
    assert json.loads(got["Config"])["databaseTableName"] == "wide_table"

    # The version's config wins over the dataset's; the request wins over both.
    assert built.store.job_defaults(built.dataset_id, "v1", "SemanticIndex") == {
        "databaseTableName": "v1_table", "concurrency": 2, "modelId": "m-1"}
    assert built.store.job_defaults(built.dataset_id, "v9", "SemanticIndex") == {
        "databaseTableName": "wide_table", "concurrency": 2}
    assert built.store.job_defaults(built.dataset_id, "v1", "IntelligentTag") == {}
    r = client.post(f"{url}/datasetjobs", json={
        "JobAction": "SemanticIndex", "DatasetVersion": "v1",
        "JobSpec": json.dumps({"concurrency": 3})})
    job = follow_job(client, f"{url}/datasetjobs", r.json()["DatasetJobId"])
    spec = json.loads(job["JobSpec"])
    assert (spec["databaseTableName"], spec["concurrency"], spec["modelId"]) == (
        "v1_table", 3, "m-1")

    client.put(f"{url}/datasetjobconfigs/{wide['DatasetJobConfigId']}",
               json={"Config": json.dumps({"concurrency": 4})})
    assert built.store.job_defaults(built.dataset_id, "v9", "SemanticIndex") == {
        "concurrency": 4}
    secret = client.post(f"{url}/datasetjobconfigs", json={
        "ConfigType": "MultimodalIntelligentTag", "Config": json.dumps({"apiKey": "sk-1"})})
    assert secret.status_code == 400 and "connections" in secret.json()["Message"]
    assert "sk-1" not in secret.text
    bad_type = client.post(f"{url}/datasetjobconfigs", json={"ConfigType": "Other",
                                                             "Config": "{}"})
    assert bad_type.json()["Code"] == "InvalidParameter.ConfigType"
    for c in client.get(f"{url}/datasetjobconfigs/").json()["DatasetJobConfigs"]:
        client.delete(f"{url}/datasetjobconfigs/{c['DatasetJobConfigId']}")
    assert client.get(f"{url}/datasetjobconfigs/").json()["TotalCount"] == 0
