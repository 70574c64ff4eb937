"""The standalone server in front of untrusted clients: a token, a Host allowlist, query images
and exports confined to their roots, bounded thumbnails and bodies."""

from __future__ import annotations

import io
import json
import os

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from mmdm.airflow_plugin.api import create_api_app, embedded_context
from mmdm.airflow_plugin.api.__main__ import build_app
from mmdm.airflow_plugin.api.thumbnails import ThumbnailCache


@pytest.fixture(scope="module")
def context(built):
    return embedded_context(built.workspace)


def test_the_standalone_server_requires_its_token(context):
    app = create_api_app(context, token="s3cret-token")
    with TestClient(app) as c:
        assert c.get("/api/v1/datasets").status_code == 401
        assert c.get("/gallery").status_code == 401
        wrong = c.get("/api/v1/datasets", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["Code"] == "Unauthorized"
        assert c.get("/api/v1/datasets",
                     headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        page = c.get("/gallery", params={"token": "s3cret-token"})  # the URL printed at start
        assert page.status_code == 200 and "HttpOnly" in page.headers["set-cookie"]
        assert c.get("/api/v1/datasets").status_code == 200  # the cookie carries it on


def test_the_server_answers_only_its_own_host_names(context):
    app = create_api_app(context, allowed_hosts=["127.0.0.1", "localhost"])
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert c.get("/api/v1/datasets").status_code == 200
        assert c.get("/api/v1/datasets", headers={"Host": "evil.example"}).status_code == 400


def test_the_command_makes_a_token_unless_told_not_to(built):
    app, url = build_app(["--workspace", str(built.workspace), "--port", "8123"])
    assert url.startswith("http://127.0.0.1:8123/gallery?token=") and len(url) > 60
    token = url.split("token=")[1]
    with TestClient(app, base_url="http://127.0.0.1:8123") as c:
        assert c.get("/api/v1/datasets").status_code == 401
        assert c.get("/api/v1/datasets", headers={"Authorization": f"Bearer {token}"},
                     ).status_code == 200
        assert c.get("/api/v1/datasets", headers={"Authorization": f"Bearer {token}",
                                                  "Host": "attacker.example"}).status_code == 400
    open_app, open_url = build_app(["--workspace", str(built.workspace), "--no-auth"])
    assert "token" not in open_url
    with TestClient(open_app, base_url="http://127.0.0.1:8090") as c:
        assert c.get("/api/v1/datasets").status_code == 200


def test_query_image_reads_only_files_of_registered_datasets(client, metas_url, built, tmp_path):
    outside = tmp_path / "secret.png"
    Image.new("RGB", (16, 16), (1, 2, 3)).save(outside)
    link = built.workspace / "images" / "blue_car" / "link-out.png"
    link.symlink_to(outside)
    try:
        for uri in (outside.as_uri(), "file:///etc/passwd", "file:///dev/zero", link.as_uri(),
                    (built.workspace / "images" / ".." / "pg" / "PG_VERSION").as_uri()):
            r = client.get(metas_url, params={"QueryImage": uri, "TopK": 3})
            assert r.status_code == 400, (uri, r.text)
            assert "not a file of a registered dataset" in r.json()["Message"]
    finally:
        link.unlink()
    # An image under the dataset's root that no scan registered yet is fine.
    fresh = built.workspace / "images" / "blue_car" / "not-scanned-yet.png"
    Image.new("RGB", (160, 120), (30, 40, 220)).save(fresh)
    try:
        r = client.get(metas_url, params={"QueryImage": fresh.as_uri(), "TopK": 3})
        assert r.status_code == 200 and len(r.json()["DatasetFileMetas"]) == 3
    finally:
        fresh.unlink()


@pytest.mark.parametrize("where", ["/tmp/elsewhere/", "exports/", "file:///etc/",
                                   "{exports}../escape/", "oss://any-bucket/out/"])
def test_exports_are_written_only_under_the_export_roots(client, built, where):
    exports = (built.workspace / "exports").as_uri() + "/"
    r = client.post(f"/api/v1/datasets/{built.dataset_id}/datasetjobs", json={
        "JobAction": "FileMetaExport",
        "JobSpec": {"query": "FileDir:'red'", "exportDirUri": where.format(exports=exports)}})
    assert r.status_code == 400 and r.json()["Code"] == "InvalidParameter.JobSpec.exportDirUri"
    assert not os.path.exists("/tmp/elsewhere") and not os.path.exists("exports")


def test_thumbnail_sizes_are_bounded(client, metas_url):
    probe = client.get(metas_url, params={"QueryExpression": "FileDir:'blue'"}).json()[
        "DatasetFileMetas"][0]
    url = probe["ThumbnailUrl"].split("?")[0]
    huge = client.get(url, params={"ThumbnailMode": "m_fixed,w_16384,h_16384"})
    assert huge.status_code == 400 and "larger than" in huge.json()["Message"]
    tall = client.get(url, params={"ThumbnailMode": "h_16384"})  # 160x120 source: 21845 wide
    assert tall.status_code == 400
    view = client.get(url, params={"ThumbnailMode": "m_lfit,w_2048,h_2048"})  # the gallery's
    assert view.status_code == 200 and Image.open(io.BytesIO(view.content)).size == (2048, 1536)


def test_the_thumbnail_cache_keeps_to_its_size(tmp_path):
    cache = ThumbnailCache(tmp_path, max_bytes=10_000)
    for i in range(30):
        cache.get_or_make(cache.key(f"m{i}", "fp", "w_200"), lambda: b"x" * 1000)
    kept = sorted(tmp_path.glob("*/*.jpg"))
    assert 0 < sum(p.stat().st_size for p in kept) <= 10_000
    newest = cache.path(cache.key("m29", "fp", "w_200"))
    assert newest.exists()  # the least recently used went first


def test_a_body_over_the_limit_is_refused_before_it_is_read(context, built):
    app = create_api_app(context, max_body_bytes=1000)
    url = f"/api/v1/datasets/{built.dataset_id}/datasetjobs"
    with TestClient(app) as c:
        r = c.post(url, content=b"{" + b" " * 5000 + b"}",
                   headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["Code"] == "RequestEntityTooLarge"
        chunked = c.post(url, content=iter([b"{", b" " * 3000, b"}"]),
                         headers={"content-type": "application/json"})
        assert chunked.status_code == 413


def test_thousands_of_tag_edits_of_one_file_are_applied_in_order_and_written_once(
        client, metas_url, monkeypatch):
    probe = client.get(metas_url, params={"QueryExpression": "FileDir:'green'"}).json()[
        "DatasetFileMetas"][0]
    store_class = type(client.app.state.mmdm.store())  # each worker thread has its own store
    writes = []
    real = store_class.apply_tag_edits
    monkeypatch.setattr(store_class, "apply_tag_edits", lambda self, file_id, edits: (
        writes.append(len(edits)) or real(self, file_id, edits)))
    items = [{"DatasetFileMetaId": probe["DatasetFileMetaId"],
              "Tags": {"user": {"add": [f"bulk-{i}"]}}} for i in range(2000)]
    items += [{"DatasetFileMetaId": probe["DatasetFileMetaId"],  # later items see earlier ones
               "Tags": {"user": {"remove": ["bulk-7"], "add": ["bulk-last"]}}},
              {"DatasetFileMetaId": "nope", "Tags": {"user": {"add": ["x"]}}}]
    r = client.put(metas_url, json={"DatasetFileMetas": items}).json()
    assert r["Status"] is False and r["FailedDetails"] == [
        {"DatasetFileMetaId": "nope", "Result": "Not Found"}]
    assert writes == [2001]  # one write for the file's 2,001 edits
    one = client.get(f"{metas_url}/{probe['DatasetFileMetaId']}").json()["DatasetFileMeta"]
    user = json.loads(one["Tags"])["user"]
    assert len(user) == 2000 and "bulk-7" not in user and user[-1] == "bulk-last"
    client.put(metas_url, json={"DatasetFileMetas": [{
        "DatasetFileMetaId": probe["DatasetFileMetaId"],
        "Tags": {"user": {"remove": [f"bulk-{i}" for i in range(2000)] + ["bulk-last"]}}}]})


def test_tags_sent_as_a_json_string_edit_or_fail_per_item_never_a_500(client, metas_url):
    probe = client.get(metas_url, params={"QueryExpression": "FileDir:'snow'"}).json()[
        "DatasetFileMetas"][0]
    file_id = probe["DatasetFileMetaId"]
    bad = ["not json", "[1, 2]", '"x"', '{"user": 5}', '{"ai": ["x"]}']
    items = [{"DatasetFileMetaId": file_id, "Tags": text} for text in bad]
    items.append({"DatasetFileMetaId": file_id,  # PAI's SDK: a JSON string, a plain list
                  "Tags": json.dumps({"user": ["sdk-a", "sdk-b"]})})
    r = client.put(metas_url, json={"DatasetFileMetas": items})
    assert r.status_code == 200, r.text
    assert [f["DatasetFileMetaId"] for f in r.json()["FailedDetails"]] == [file_id] * len(bad)
    one = client.get(f"{metas_url}/{file_id}").json()["DatasetFileMeta"]
    assert json.loads(one["Tags"])["user"] == ["sdk-a", "sdk-b"]  # the list replaced the group
    client.put(metas_url, json={"DatasetFileMetas": [
        {"DatasetFileMetaId": file_id, "Tags": '{"user": []}'}]})
    one = client.get(f"{metas_url}/{file_id}").json()["DatasetFileMeta"]
    assert json.loads(one["Tags"]).get("user", []) == []
