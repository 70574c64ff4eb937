"""README, "The embedded database": "the first one starts it ..., the others attach to it, the last
one to exit stops it ... A process killed with `kill -9` is dropped from the server's users on
the next open. The server opens no TCP port"."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import psycopg

OPEN = textwrap.dedent("""
    import sys, time
    import psycopg
    from mmdm.adapters.metadata.embedded import embedded_postgres_url

    url = embedded_postgres_url(sys.argv[1])
    with psycopg.connect(url) as conn:
        listen = conn.execute("SHOW listen_addresses").fetchone()[0]
    print(repr(listen), flush=True)
    if sys.argv[2] == "hold":
        time.sleep(600)  # until killed
""")


def _server_pid(data_dir: Path) -> int | None:
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text().splitlines()[0])
    return pid if psutil.pid_exists(pid) else None


def _open(data_dir: Path, mode: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", OPEN, str(data_dir), mode],
                            env={**os.environ, "PYTHONPATH": os.getcwd()},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_process_killed_with_kill_9_is_dropped_so_the_last_user_stops_the_server(tmp_path):
    data_dir = tmp_path / "pg"
    holder = _open(data_dir, "hold")  # the first user starts the server
    try:
        assert holder.stdout.readline().strip() == "''", holder.stderr.read()  # no TCP port
        server = _server_pid(data_dir)
        assert server is not None
        os.kill(holder.pid, signal.SIGKILL)  # dies without detaching
        holder.wait(30)
        assert _server_pid(data_dir) == server  # the server outlives its users

        other = _open(data_dir, "exit")  # attaches to the same server, then exits cleanly
        out, err = other.communicate(timeout=120)
        assert other.returncode == 0 and out.strip() == "''", err
        deadline = time.monotonic() + 30
        while _server_pid(data_dir) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _server_pid(data_dir) is None  # it was the last live user: it stopped the server
    finally:
        if holder.poll() is None:
            holder.kill()
        pid = _server_pid(data_dir)
        if pid is not None:  # a failed run must not leave a server behind
            os.kill(pid, signal.SIGINT)


def test_threads_of_one_process_open_the_embedded_server_at_once(tmp_path):
    """An API server's worker threads each open their store on the first requests; the
    package's process lock is not thread-safe, which made some of them fail."""
    import threading

    from mmdm.adapters.metadata.embedded import embedded_postgres_url

    data = tmp_path / "pg"
    first = embedded_postgres_url(data)
    urls, errors = [], []

    def open_it() -> None:
        try:
            urls.append(embedded_postgres_url(data))
        except Exception as exc:  # any failure of any thread is the bug
            errors.append(repr(exc))

    for _ in range(3):
        threads = [threading.Thread(target=open_it) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == [] and urls == [first] * 48


def test_only_the_owner_reaches_the_socket(tmp_path):
    """README: "clients connect through a unix socket inside the data folder (mode 0700), so
    only its owner (and root) can connect. Run as root, the package creates a system user
    `embedded_postgres` to run the server". Another local user, with every folder above the
    data folder open to it, is refused at the socket."""
    import pwd
    import stat

    from mmdm.adapters.metadata.embedded import embedded_postgres_url

    data = tmp_path / "pg"
    url = embedded_postgres_url(data)
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    server = psutil.Process(_server_pid(data))
    if os.geteuid() != 0:  # the server runs as the user who opened it
        assert server.username() == pwd.getpwuid(os.geteuid()).pw_name
        return
    assert server.username() == "embedded_postgres"
    for folder in [tmp_path, *tmp_path.parents]:  # nothing above the data folder stops anyone
        if folder != Path("/"):
            os.chmod(folder, os.stat(folder).st_mode | 0o005)
    nobody = pwd.getpwnam("nobody")
    # psql, as any local user has it (this Python may live where nobody cannot read).
    probe = subprocess.run(
        ["psql", url, "-c", "SELECT 1"], capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ["PATH"], "HOME": "/tmp"},
        preexec_fn=lambda: (os.setgid(nobody.pw_gid), os.setuid(nobody.pw_uid)))
    assert probe.returncode != 0 and "Permission denied" in probe.stderr, probe.stderr[-400:]
    with psycopg.connect(url) as conn:  # while its owner's process connects
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_the_api_server_stopped_with_sigterm_stops_the_workspace_database(tmp_path):
    """uvicorn re-raises SIGTERM after its graceful shutdown: under the default handler the
    process died without exit handlers and the workspace's database kept running."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "mmdm.airflow_plugin.api", "--workspace", str(tmp_path),
         "--port", str(port), "--token", "t"], stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    data_dir = tmp_path / "pg"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/datasets", timeout=5,
                             headers={"Authorization": "Bearer t"}).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, server.stderr.read()
            time.sleep(0.3)
        assert _server_pid(data_dir) is not None

        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 128 + signal.SIGTERM
        assert _server_pid(data_dir) is None  # its last user detached and stopped it
    finally:
        if server.poll() is None:
            server.kill()
        pid = _server_pid(data_dir)
        if pid is not None:
            os.kill(pid, signal.SIGINT)
