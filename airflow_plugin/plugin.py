"""The Airflow plugin object (the search API and gallery mount here)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class MmdmPlugin(AirflowPlugin):
    name = "mmdm"
