"""Assets that mmdm export tasks update and training DAGs are scheduled on."""

from __future__ import annotations

from airflow.sdk import Asset


def export_asset(name: str) -> Asset:
    """The Asset of one named export; its events carry the manifest URI and the row count."""
    return Asset(name=f"mmdm_export_{name}", uri=f"mmdm://exports/{name}", group="mmdm")
