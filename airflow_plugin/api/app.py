"""The FastAPI app: PAI-shaped dataset/file-meta/job endpoints and the gallery page.

``create_api_app`` takes the ``ApiContext`` (what to read) and an auth dependency (who may
read). Inside Airflow the dependency is ``requires_authenticated()``, because Airflow mounts
plugin apps without any auth of their own; standalone and in tests it may be left out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from starlette.middleware.trustedhost import TrustedHostMiddleware

from .access import ACCESS_KEY_ID, MAX_BODY_BYTES, BodyLimitMiddleware, TokenAuthMiddleware
from .context import ApiContext
from .errors import http_error, install_error_handlers
from .responses import PaiJSONResponse
from .routes import (datasets, filemetas, files, gallery, job_configs, jobs, prompts,
                     statistics)

ROUTERS = (datasets.router, filemetas.router, statistics.router, jobs.router,
           job_configs.router, prompts.router, files.router, gallery.router)


def create_api_app(context: ApiContext, *, auth: Callable[..., Any] | None = None,
                   token: str | None = None, allowed_hosts: Sequence[str] | None = None,
                   max_body_bytes: int = MAX_BODY_BYTES,
                   access_key_id: str = ACCESS_KEY_ID) -> FastAPI:
    """Build the app.

    :param context: the store, search service and workspace the routes use.
    :param auth: a FastAPI dependency every route runs first (401 when it refuses).
    :param token: the standalone server's token (see ``access``); ``None``: no token check.
    :param allowed_hosts: the Host headers served (others get 400); ``None``: any.
    :param max_body_bytes: the largest request body, uploads included (413 above).
    :param access_key_id: the AccessKeyId the PAI SDK signs with (its secret is ``token``).
    """
    app = FastAPI(title="mmdm dataset search API", version="1",
                  description="PAI-compatible ListDatasetFileMetas, statistics, jobs, files, "
                              "thumbnails, and the gallery page at /gallery.",
                  default_response_class=PaiJSONResponse)
    app.state.mmdm = context
    dependencies = [Depends(auth)] if auth is not None else []
    for router in ROUTERS:
        app.include_router(router, dependencies=dependencies)
    install_error_handlers(app)
    # The last added runs first: the Host check, then the token, then the body's size.
    app.add_middleware(BodyLimitMiddleware, limit=max_body_bytes)
    if token is not None:
        app.add_middleware(TokenAuthMiddleware, token=token, access_key_id=access_key_id,
                           limit=max_body_bytes)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    return app


def airflow_api_app() -> FastAPI:
    """The app Airflow's api-server mounts: connections from Airflow, login required.

    A page load (``Accept: text/html``) without a login goes to Airflow's login page and comes
    back after it; API calls get the 401.
    """
    from airflow.api_fastapi.core_api.security import requires_authenticated

    from .airflow_context import airflow_context

    app = create_api_app(airflow_context(), auth=requires_authenticated())

    @app.exception_handler(HTTPException)
    async def _login(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 401 and "text/html" in request.headers.get("accept", ""):
            from airflow.api_fastapi.app import get_auth_manager

            # Airflow's own root (it may be served under a prefix), not this app's.
            root = request.scope.get("app_root_path", "")
            login = get_auth_manager().get_url_login(next_url=str(request.url))
            return RedirectResponse(root + login, status_code=303)
        return http_error(request, exc)

    return app
