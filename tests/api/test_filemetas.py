"""ListDatasetFileMetas, GetDatasetFileMeta and tag edits over a pipeline-built version."""

from __future__ import annotations

import json

import pytest


def _all_pages(client, url, params):
    names, token, totals = [], None, set()
    while True:
        body = client.get(url, params={**params, **({"NextToken": token} if token else {})})
        assert body.status_code == 200, body.text
        data = body.json()
        totals.add(data["TotalCount"])
        names += [m["FileName"] for m in data["DatasetFileMetas"]]
        token = data.get("NextToken")
        if token is None:
            return names, totals


def test_datasets_and_versions(client, built):
    listed = client.get("/api/v1/datasets").json()
    assert [d["DatasetId"] for d in listed["Datasets"]] == [built.dataset_id]
    latest = client.get(f"/api/v1/datasets/{built.dataset_id}").json()["LatestVersion"]
    assert latest["VersionName"] == "v1" and latest["DataCount"] == 15  # PAI's struct
    versions = client.get(f"/api/v1/datasets/{built.dataset_id}/versions").json()
    assert versions["DatasetVersions"][0]["DataCount"] == 15
    assert client.get(f"/api/v1/datasets/{built.dataset_id}/versions/v1").status_code == 200
    assert client.get(f"/api/v1/datasets/{built.dataset_id}/versions/v9").status_code == 404
    missing = client.get("/api/v1/datasets/d-nope")
    assert missing.status_code == 404 and missing.json()["Code"] == "NotFound"


def test_listing_pages_through_everything_with_a_stable_total(client, metas_url):
    first = client.get(metas_url, params={"DatasetVersion": "v1", "MaxResults": 4}).json()
    assert first["TotalCount"] == 15 and len(first["DatasetFileMetas"]) == 4
    assert first["NextToken"] and (first["DatasetId"], first["DatasetVersion"])[1] == "v1"
    item = first["DatasetFileMetas"][0]
    assert {"DownloadUrl", "ThumbnailUrl", "Tags", "Uri", "FileFingerPrint"} <= set(item)
    assert "Score" not in item and json.loads(item["Tags"])["ai"]
    names, totals = _all_pages(client, metas_url, {"MaxResults": 4})
    assert len(names) == len(set(names)) == 15 and totals == {15}


def test_dsl_and_request_params_agree(client, metas_url):
    dsl = client.get(metas_url, params={
        "QueryExpression": "Tags.all='blue' AND FileDir:'blue' AND MaxResults=100"}).json()
    params = client.get(metas_url, params={
        "QueryTagsIncludeAll": "blue", "QueryFileDir": "blue", "MaxResults": 100}).json()
    got = sorted(m["FileName"] for m in dsl["DatasetFileMetas"])
    assert got and got == sorted(m["FileName"] for m in params["DatasetFileMetas"])
    assert all(m["FileName"].startswith("blue_car") for m in dsl["DatasetFileMetas"])
    # Repeated names are a list, as are comma-joined values.
    both = client.get(metas_url, params=[("QueryTagsIncludeAny", "blue"),
                                         ("QueryTagsIncludeAny", "green"),
                                         ("MaxResults", "100")]).json()
    joined = client.get(metas_url, params={"QueryTagsIncludeAny": "blue,green",
                                           "MaxResults": 100}).json()
    assert both["TotalCount"] == joined["TotalCount"] > dsl["TotalCount"]


def test_a_dsl_error_is_a_400_with_its_position(client, metas_url):
    r = client.get(metas_url, params={"QueryExpression": "DataSize >= ) AND HAS Uri"})
    assert r.status_code == 400
    body = r.json()
    assert body["Code"] == "InvalidParameter.Query" and body["ErrorCode"] == "unexpected-token"
    assert body["Position"] == {"Line": 1, "Column": 13, "Start": 12, "End": 13}
    assert body["Caret"].splitlines()[1:] == ["DataSize >= ) AND HAS Uri", " " * 12 + "^"]


@pytest.mark.parametrize("params, code", [
    ({"QueryFileNam": "x"}, "unknown-param"),
    ({"QueryExpression": "FileName:'a'", "QueryFileDir": "b"}, "conflicting-params"),
    ({"MaxResults": "many"}, "type-mismatch"),
])
def test_bad_parameters_are_400s(client, metas_url, params, code):
    r = client.get(metas_url, params=params)
    assert r.status_code == 400 and r.json()["ErrorCode"] == code, r.text


def test_bad_thumbnail_mode_in_a_listing_is_a_400(client, metas_url):
    r = client.get(metas_url, params={"ThumbnailMode": "w_0"})
    assert r.status_code == 400 and r.json()["Code"] == "InvalidParameter.ThumbnailMode"


def _some_meta(client, metas_url, dsl="FileDir:'red'"):
    return client.get(metas_url, params={"QueryExpression": dsl}).json()["DatasetFileMetas"][0]


def test_image_search_by_a_files_uri_ranks_that_file_first(client, metas_url):
    probe = _some_meta(client, metas_url)
    r = client.get(metas_url, params={"QueryImage": probe["Uri"], "TopK": 5,
                                      "QueryType": "VECTOR", "MaxResults": 5})
    assert r.status_code == 200, r.text
    hits = r.json()["DatasetFileMetas"]
    assert hits[0]["DatasetFileMetaId"] == probe["DatasetFileMetaId"]
    scores = [h["Score"] for h in hits]
    assert len(hits) == 5 and scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(1.0, abs=1e-3)
    above = client.get(metas_url, params={"QueryImage": probe["Uri"], "TopK": 5,
                                          "ScoreThreshold": scores[2]}).json()
    assert [h["Score"] for h in above["DatasetFileMetas"]] == scores[:2]


def test_image_search_by_upload(client, metas_url, built):
    probe = _some_meta(client, metas_url, "FileDir:'green'")
    data = client.get(probe["DownloadUrl"]).content
    r = client.post(f"{metas_url}/search", data={"TopK": "3", "MaxResults": "3"},
                    files={"Image": ("q.png", data, "application/octet-stream")})
    assert r.status_code == 200, r.text
    assert r.json()["DatasetFileMetas"][0]["DatasetFileMetaId"] == probe["DatasetFileMetaId"]


def test_get_one_and_unknown_ids(client, metas_url, built):
    probe = _some_meta(client, metas_url)
    one = client.get(f"{metas_url}/{probe['DatasetFileMetaId']}").json()
    assert one["DatasetFileMeta"]["Uri"] == probe["Uri"]
    assert one["DatasetFileMeta"]["FileDir"] == probe["FileDir"] != ""
    assert client.get(f"{metas_url}/nope").status_code == 404
    assert client.get("/api/v1/datasets/d-nope/datasetfilemetas").status_code == 404


def test_user_tags_add_remove_and_search(client, metas_url):
    probe = _some_meta(client, metas_url, "FileDir:'night'")
    meta_id = probe["DatasetFileMetaId"]
    ai_tag = json.loads(probe["Tags"])["ai"][0]
    body = {"DatasetFileMetas": [
        {"DatasetFileMetaId": meta_id, "Tags": {"user": {"add": ["keeper", "tmp"]},
                                               "user-delete-ai-tags": {"add": [ai_tag]}}},
        {"DatasetFileMetaId": "nope", "Tags": {"user": {"add": ["x"]}}},
        {"DatasetFileMetaId": meta_id, "Tags": {"ai": {"add": ["forged"]}}},
    ]}
    r = client.put(metas_url, json=body).json()
    assert r["Status"] is False
    assert [f["DatasetFileMetaId"] for f in r["FailedDetails"]] == ["nope", meta_id]
    assert r["FailedDetails"][0]["Result"] == "Not Found"
    # PAI's wire form: Tags as a JSON string.
    remove = {"user": {"remove": ["tmp"]}}
    r = client.put(metas_url, json={"DatasetFileMetas": [
        {"DatasetFileMetaId": meta_id, "Tags": json.dumps(remove)}]}).json()
    assert r["Status"] is True and r["FailedDetails"] == []
    tags = json.loads(client.get(f"{metas_url}/{meta_id}").json()["DatasetFileMeta"]["Tags"])
    assert tags["user"] == ["keeper"] and tags["user-delete-ai-tags"] == [ai_tag]
    found = client.get(metas_url, params={"QueryExpression": "Tags.user='keeper'"}).json()
    assert [m["DatasetFileMetaId"] for m in found["DatasetFileMetas"]] == [meta_id]
    hidden = client.get(metas_url, params={
        "QueryExpression": f"Tags.all='{ai_tag}' AND DatasetFileMetaId='{meta_id}'"}).json()
    assert hidden["TotalCount"] == 0  # a removed ai tag leaves the effective set


def test_index_sets_are_listed_and_chosen_by_id(client, metas_url, built):
    url = f"/api/v1/datasets/{built.dataset_id}/versions/v1/indexsets"
    listed = client.get(url).json()
    assert listed["TotalCount"] == 1
    index = listed["IndexSets"][0]
    assert index["IsDefault"] and index["SupportsText"] is False  # the offline model
    assert (index["TableName"], index["Dimension"]) == ("mmdm_file_vectors", 256)
    probe = _some_meta(client, metas_url)
    chosen = client.get(metas_url, params={"QueryImage": probe["Uri"], "TopK": 2,
                                           "IndexSetId": index["IndexSetId"]})
    assert chosen.json()["DatasetFileMetas"][0]["DatasetFileMetaId"] == probe["DatasetFileMetaId"]
    unknown = client.get(metas_url, params={"QueryImage": probe["Uri"], "IndexSetId": "nope"})
    assert unknown.status_code == 404 and index["IndexSetId"] in unknown.json()["Message"]
    text = client.get(metas_url, params={"QueryText": "a blue car", "QueryType": "VECTOR"})
    assert text.status_code == 400 and "images only" in text.json()["Message"]
    assert client.get(f"/api/v1/datasets/{built.dataset_id}/versions/v9/indexsets"
                      ).status_code == 404
