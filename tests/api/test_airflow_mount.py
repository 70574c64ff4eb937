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
