"""The gallery page: one self-contained HTML file (inline CSS and JS, no CDN, no build)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse

router = APIRouter(tags=["gallery"])


@cache
def _page() -> str:
    return files("mmdm.airflow_plugin.api").joinpath("static/gallery.html").read_text("utf-8")


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    # Relative, so it stays under the mount prefix (/mmdm) inside Airflow.
    return RedirectResponse("gallery")


@router.get("/gallery", response_class=HTMLResponse)
def gallery() -> HTMLResponse:
    return HTMLResponse(_page(), headers={"Cache-Control": "no-cache"})
