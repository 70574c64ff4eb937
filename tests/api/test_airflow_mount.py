"""Inside Airflow: the plugin mounts the API under /mmdm, lists itself, and requires a login."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def core(airflow_db):
    from airflow.api_fastapi.app import create_app

    with TestClient(create_app(apps="core")) as c:
        yield c


@pytest.fixture(scope="module")
def token(airflow_db):
    # A JWT for a user of the simple auth manager, as POST /auth/token would issue.
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))


def test_routes_need_a_login(core):
    for path in ("/mmdm/api/v1/datasets", "/mmdm/gallery",
                 "/mmdm/api/v1/statistics/datasets/d-x/datasetfilemetas"):
        assert core.get(path).status_code == 401, path


def test_with_a_token_the_api_and_gallery_answer(core, token):
    auth = {"Authorization": f"Bearer {token}"}
    r = core.get("/mmdm/api/v1/datasets", headers=auth)
    assert r.status_code == 200, r.text
    assert "Datasets" in r.json()
    page = core.get("/mmdm/gallery", headers=auth)
    assert page.status_code == 200 and "<html" in page.text.lower()
    # The login cookie the Airflow UI sets works too (the gallery runs inside the UI).
    core.cookies.set("_token", token)
    try:
        assert core.get("/mmdm/api/v1/datasets").status_code == 200
    finally:
        core.cookies.clear()


def test_plugins_endpoint_lists_the_app_and_the_nav_view(core, token):
    r = core.get("/api/v2/plugins", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    plugin = next(p for p in r.json()["plugins"] if p["name"] == "mmdm")
    assert plugin["fastapi_apps"][0]["url_prefix"] == "/mmdm"
    view = plugin["external_views"][0]
    assert (view["name"], view["href"], view["url_route"], view["destination"]) == (
        "Datasets", "/mmdm/gallery", "mmdm", "nav")


def test_a_page_load_without_login_goes_to_airflows_login(core):
    r = core.get("/mmdm/gallery", headers={"Accept": "text/html,application/xhtml+xml"},
                 follow_redirects=False)
    assert r.status_code == 303
    login, _, query = r.headers["location"].partition("?")
    assert login.startswith("/auth/") and "login" in login
    assert "next=http%3A%2F%2Ftestserver%2Fmmdm%2Fgallery" in query
    assert core.get("/mmdm/api/v1/datasets", headers={"Accept": "application/json"}
                    ).status_code == 401  # API calls keep their 401


def test_file_urls_carry_the_mount_prefix(core, token):
    """Thumbnails and downloads resolve inside Airflow: every URL the API hands out starts
    with /mmdm, and fetching it returns the image."""
    import os
    from pathlib import Path

    from tests.api.conftest import build_dataset

    built = build_dataset(Path(os.environ["MMDM_WORKSPACE"]), name="mount-samples")
    auth = {"Authorization": f"Bearer {token}"}
    r = core.get(f"/mmdm/api/v1/datasets/{built.dataset_id}/datasetfilemetas",
                 params={"MaxResults": 3}, headers=auth)
    assert r.status_code == 200, r.text
    items = r.json()["DatasetFileMetas"]
    assert len(items) == 3
    for item in items:
        for key in ("ThumbnailUrl", "DownloadUrl"):
            url = item[key]
            assert url.startswith("http://testserver/mmdm/"), url
            got = core.get(url.removeprefix("http://testserver"), headers=auth)
            assert got.status_code == 200 and got.headers["content-type"].startswith("image/")
