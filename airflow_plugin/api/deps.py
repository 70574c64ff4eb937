"""Request-scoped helpers shared by the routers: the context, dataset/version/meta lookups."""

from __future__ import annotations

from typing import TypeVar

from fastapi import Request

from mmdm.adapters.errors import NotFoundError
from mmdm.adapters.metadata import Dataset, FileMeta, MetadataStore

from .context import ApiContext
from .errors import bad_parameter

T = TypeVar("T")


def context(request: Request) -> ApiContext:
    return request.app.state.mmdm


def dataset(store: MetadataStore, dataset_id: str) -> Dataset:
    return store.get_dataset(dataset_id)


def version_name(store: MetadataStore, dataset_id: str, version: str | None) -> str:
    """The named version (checked), or the newest one when the request names none."""
    if version:
        return store.get_version(dataset_id, version).version_name
    versions = store.list_versions(dataset_id)
    if not versions:
        raise NotFoundError(f"dataset {dataset_id!r} has no versions")
    return versions[-1].version_name


def file_meta(store: MetadataStore, dataset_id: str, file_meta_id: str) -> FileMeta:
    """The meta, which must belong to the dataset (ids are global, the path scopes them)."""
    meta = store.get_file_meta(file_meta_id)
    if meta.dataset_id != dataset_id:
        raise NotFoundError(f"dataset {dataset_id!r} has no file meta {file_meta_id!r}")
    return meta


def base_url(request: Request) -> str:
    """The app's own root URL, with the mount prefix (``/mmdm``) when inside Airflow.

    Starlette's ``request.base_url`` is the outermost app's root: a mounted app's own prefix
    is in the scope's ``root_path`` (with any prefix Airflow itself is served under).
    """
    root = request.scope.get("root_path", "")
    return str(request.url.replace(path=root, query="", fragment="")).rstrip("/")


def page_of(items: list[T], page_number: int, page_size: int) -> list[T]:
    """PAI's PageNumber/PageSize paging of a short list (datasets, versions, jobs, prompts)."""
    if page_number < 1 or not 1 <= page_size <= 1000:
        raise bad_parameter("PageSize", "PageNumber >= 1 and PageSize 1-1000")
    return items[(page_number - 1) * page_size:page_number * page_size]
