"""The search API and gallery (FastAPI), mounted in Airflow's api-server or run standalone.

    >>> from mmdm.airflow_plugin.api import create_api_app, embedded_context
    >>> app = create_api_app(embedded_context(Path("mmdm-workspace")))
"""

from __future__ import annotations

from .app import create_api_app
from .context import ApiContext, embedded_context

__all__ = ["ApiContext", "create_api_app", "embedded_context"]
