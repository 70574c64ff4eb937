"""GetDatasetFileMetasStatistics (both engines) and FileMetaExport jobs through the API."""

from __future__ import annotations

import json

import pytest

from mmdm.adapters.metadata import FileMeta
from mmdm.adapters.storage.local import local_path
from mmdm.airflow_plugin.api.statistics import file_meta_stats

from .conftest import follow_job


def _stats(client, built, **params):
    return client.get(f"/api/v1/statistics/datasets/{built.dataset_id}/datasetfilemetas",
                      params={"DatasetVersion": "v1", **params})


def test_statistics_by_dir_type_and_tags(client, built):
    total = _stats(client, built).json()
    assert total.pop("requestId") and total == {"TotalCount": 15}  # PAI's spelling
    dirs = _stats(client, built, AggregateBy="FileDir").json()
    assert dirs["TotalCount"] == 15 and len(dirs["DatasetFileMetasStats"]) == 5
    assert {s["Count"] for s in dirs["DatasetFileMetasStats"]} == {3}
    types = _stats(client, built, AggregateBy="filetype").json()["DatasetFileMetasStats"]
    assert types == [{"Key": "image", "Count": 15}]
    ai = _stats(client, built, AggregateBy="tags.ai", MaxResults=3).json()
    counts = [s["Count"] for s in ai["DatasetFileMetasStats"]]
    assert len(counts) == 3 and counts == sorted(counts, reverse=True)
    bad = _stats(client, built, AggregateBy="tags.nope")
    assert bad.status_code == 400 and bad.json()["Code"] == "InvalidParameter.AggregateBy"


def _meta(i: int, dataset_id: str, **tags: list[str]) -> FileMeta:
    return FileMeta(file_meta_id=f"m{i}", dataset_id=dataset_id, dataset_version="v1",
                    uri=f"file:///data/d{i % 2}/f{i}.png", file_name=f"f{i}.png",
                    file_dir=f"d{i % 2}", file_type="image", **tags)


def test_tag_statistics_on_both_engines(store):
    ds = store.create_dataset("stats", "file:///data")
    store.create_version(ds.dataset_id)
    store.upsert_file_metas([
        _meta(0, ds.dataset_id, tags_ai=["cat", "dog"], tags_user=["mine"]),
        _meta(1, ds.dataset_id, tags_ai=["cat"], tags_user_delete_ai=["cat"]),
        _meta(2, ds.dataset_id, tags_ai=["cat", "bird"], tags_user=["dog"]),
        _meta(3, ds.dataset_id, tags_ai=["cat"], status="DELETED"),
    ])

    def stats(by):
        return [(s["Key"], s["Count"]) for s in
                file_meta_stats(store, ds.dataset_id, "v1", by)["DatasetFileMetasStats"]]

    assert stats("tags.ai") == [("cat", 3), ("bird", 1), ("dog", 1)]
    assert stats("tags.all") == [("cat", 2), ("dog", 2), ("bird", 1), ("mine", 1)]
    assert stats("tags.user") == [("dog", 1), ("mine", 1)]
    assert stats("tags.user-delete-ai-tags") == [("cat", 1)]
    assert stats("filedir") == [("d0", 2), ("d1", 1)]


def test_export_job_from_a_search(client, built, tmp_path, monkeypatch):
    monkeypatch.setenv("MMDM_EXPORT_ROOTS", tmp_path.as_uri())  # a configured export root
    jobs_url = f"/api/v1/datasets/{built.dataset_id}/datasetjobs"
    spec = {"query": {"QueryTagsIncludeAny": "blue,green", "MaxResults": 10, "NextToken": ""},
            "exportDirUri": tmp_path.as_uri() + "/"}
    r = client.post(jobs_url, json={"JobAction": "FileMetaExport", "DatasetVersion": "v1",
                                    "JobSpec": json.dumps(spec)})
    assert r.status_code == 200, r.text
    created = r.json()
    assert created["DatasetJobId"].startswith("dsjob-") and created["RequestId"]
    job = follow_job(client, jobs_url, created["DatasetJobId"])
    assert job["Status"] == "Succeeded" and job["JobAction"] == "FileMetaExport"
    result = job["Result"]
    assert result["RowCount"] == 6 and result["ManifestUri"].startswith(tmp_path.as_uri())
    assert local_path(result["ManifestUri"]).is_file()
    assert json.loads(job["JobSpec"])["exportDirUri"] == tmp_path.as_uri() + "/"
    listed = client.get(jobs_url, params={"JobAction": "FileMetaExport"}).json()
    assert created["DatasetJobId"] in [j["DatasetJobId"] for j in listed["DatasetJobs"]]
    assert client.get(f"{jobs_url}/dsjob-nope").status_code == 404


def test_export_defaults_to_the_workspace_and_takes_a_dsl(client, built):
    jobs_url = f"/api/v1/datasets/{built.dataset_id}/datasetjobs"
    r = client.post(jobs_url, json={"JobAction": "FileMetaExport",
                                    "JobSpec": {"query": "FileDir:'red'"}})
    assert r.status_code == 200, r.text
    result = follow_job(client, jobs_url, r.json()["DatasetJobId"])["Result"]
    assert result["ExportUri"].startswith((built.workspace / "exports").as_uri())
    assert result["RowCount"] == 3


def test_an_export_searches_the_index_set_the_gallery_chose(client, built):
    """The gallery sends the index set it shows beside its search's parameters: an export of
    that search takes it (it failed as an unknown parameter once the version had an index)."""
    from mmdm.adapters.export.manifest import Manifest

    jobs_url = f"/api/v1/datasets/{built.dataset_id}/datasetjobs"
    sets = client.get(f"/api/v1/datasets/{built.dataset_id}/versions/v1/indexsets").json()
    index_set = sets["IndexSets"][0]["IndexSetId"]
    probe = next(iter(built.store.iter_file_metas(built.dataset_id, "v1")))
    by_image = f"QueryImage='{probe.uri}' AND TopK=4"

    def export(query):
        r = client.post(jobs_url, json={"JobAction": "FileMetaExport",
                                        "JobSpec": {"query": query}})
        assert r.status_code == 200, r.text
        return follow_job(client, jobs_url, r.json()["DatasetJobId"])

    filtered = export({"QueryFileDir": "red", "IndexSetId": index_set})
    assert (filtered["Status"], filtered["Result"]["RowCount"]) == ("Succeeded", 3)
    similar = export({"QueryExpression": by_image, "IndexSetId": index_set})
    assert (similar["Status"], similar["Result"]["RowCount"]) == ("Succeeded", 4)
    manifest = Manifest.from_yaml(local_path(similar["Result"]["ManifestUri"]).read_text())
    assert manifest.index_set_id == index_set
    assert export({"QueryExpression": by_image, "IndexSetId": "no-such-set"})["Status"] == "Failed"
    bad = client.post(jobs_url, json={"JobAction": "FileMetaExport", "JobSpec": {
        "query": {"QueryFileDir": "red", "IndexSetId": ["a", "b"]}}})
    assert bad.status_code == 400 and "IndexSetId" in bad.text


@pytest.mark.parametrize("body, code", [
    ({"JobAction": "Transcode", "JobSpec": "{}"}, "InvalidParameter.JobAction"),
    ({"JobAction": "IntelligentTag", "JobSpec": "{}"}, "InvalidParameter.JobSpec.promptId"),
    ({"JobAction": "FileMetaExport", "JobMode": "Increment"}, "InvalidParameter.JobMode"),
    ({"JobAction": "FileMetaExport", "JobSpec": "{not json"}, "InvalidParameter.JobSpec"),
    ({"JobAction": "FileMetaExport", "JobSpec": {"query": "FileDir:"}},
     "InvalidParameter.Query"),
])
def test_bad_job_requests_are_400s(client, built, body, code):
    r = client.post(f"/api/v1/datasets/{built.dataset_id}/datasetjobs", json=body)
    assert r.status_code == 400 and r.json()["Code"] == code, r.text
