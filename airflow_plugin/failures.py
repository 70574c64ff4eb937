"""Which errors fail a task for good, and which are left to Airflow's retries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from airflow.sdk.exceptions import AirflowFailException

from mmdm.adapters.errors import AdapterError


def _query_error_types() -> tuple[type[BaseException], ...]:
    try:
        from mmdm.query.errors import QueryError
    except ImportError:  # the query engine is optional for the storage-only operators
        return ()
    return (QueryError,)


@contextmanager
def fail_fast() -> Iterator[None]:
    """Query and configuration errors fail the task without retries (retrying cannot help);
    retriable adapter errors (timeouts, 429, 5xx) propagate so the task's ``retries`` apply."""
    try:
        yield
    except AdapterError as exc:
        if exc.retriable:
            raise
        raise AirflowFailException(str(exc)) from exc
    except _query_error_types() as exc:
        render = getattr(exc, "render", None)
        raise AirflowFailException(render() if callable(render) else str(exc)) from exc
