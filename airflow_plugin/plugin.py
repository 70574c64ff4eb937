"""The Airflow plugin object: the search API and gallery on the api-server, a nav entry."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from .api.app import airflow_api_app

URL_PREFIX = "/mmdm"  # not one of Airflow's reserved prefixes (/api/v2, /ui, /auth, ...)


class MmdmPlugin(AirflowPlugin):
    name = "mmdm"
    # The app opens stores lazily, so building it here is cheap in every Airflow component.
    fastapi_apps = [{"app": airflow_api_app(), "url_prefix": URL_PREFIX, "name": "mmdm"}]
    # With url_route the UI opens the page inside Airflow, where the login cookie applies.
    external_views = [{"name": "Datasets", "href": f"{URL_PREFIX}/gallery", "url_route": "mmdm",
                       "destination": "nav", "category": None}]
