"""A real Airflow 3 deployment for the end-to-end tests: api-server, scheduler, dag-processor
and triggerer as separate processes (plus Celery workers), metadata in PostgreSQL, the
repository's DAGs, and mmdm on its embedded defaults in one workspace every process shares.

Each component runs in its own session so teardown can kill its whole process tree (the
LocalExecutor's workers and the task processes ignore SIGTERM while a task runs).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
PASSWORD = "e2e-" + secrets.token_hex(8)
FINAL_RUN_STATES = ("success", "failed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Deployment:
    executor: str
    home: Path
    workspace: Path
    airflow_db_url: str
    redis_url: str | None = None
    workers: int = 2
    port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    queue: str = field(default_factory=lambda: f"mmdm-e2e-{uuid.uuid4().hex[:8]}")
    _token: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- processes ------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AIRFLOW") and k not in ("MMDM_WORKSPACE", "PYTEST_CURRENT_TEST")}
        passwords = self.home / "passwords.json"
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "MMDM_WORKSPACE": str(self.workspace),
            "AIRFLOW__CORE__EXECUTOR": self.executor,
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__API__BASE_URL": f"{self.base_url}/",
            "AIRFLOW__API_AUTH__JWT_SECRET": _secret(self.home, "jwt"),
            "AIRFLOW__API__SECRET_KEY": _secret(self.home, "session"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.airflow_db_url,
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
        })
        if self.redis_url:
            env.update({"AIRFLOW__CELERY__BROKER_URL": self.redis_url,
                        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{self.airflow_db_url}",
                        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2"})
        return env

    def airflow(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run([AIRFLOW, *args], env=self.env(), capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} exited {done.returncode}:\n"
                               f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done.stdout

    def spawn(self, name: str, *args: str, **extra_env: str) -> None:
        log = open(self.home / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(
            [AIRFLOW, *args], env=self.env() | extra_env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=self.home)

    def start(self, timeout: float = 180) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "passwords.json").write_text(json.dumps({"admin": PASSWORD}))
        self.airflow("db", "migrate")
        self.spawn("api-server", "api-server", "-H", "127.0.0.1", "-p", str(self.port),
                   "-w", "1")
        self.spawn("scheduler", "scheduler")
        self.spawn("dag-processor", "dag-processor")
        self.spawn("triggerer", "triggerer")
        for i in range(self.workers if self.executor == "CeleryExecutor" else 0):
            self.spawn(f"worker{i + 1}", "celery", "worker", "-q", self.queue,
                       "-H", f"worker{i + 1}@e2e", "--concurrency", "2",
                       AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()))
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                last = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).json()
                parts = ("metadatabase", "scheduler", "dag_processor", "triggerer")
                if all(last.get(p, {}).get("status") == "healthy" for p in parts):
                    return
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(1)
        raise TimeoutError(f"Airflow not healthy after {timeout} s: {last}\n{self.logs()}")

    def check_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
        if dead:
            raise RuntimeError(f"Airflow components exited: {dead}\n{self.logs()}")

    def logs(self, lines: int = 40) -> str:
        out = []
        for name in self.procs:
            text = (self.home / f"{name}.log").read_text(errors="replace").splitlines()
            out.append(f"--- {name} ---\n" + "\n".join(text[-lines:]))
        return "\n".join(out)

    def stop(self) -> None:
        for proc in self.procs.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)  # whatever of the tree is left
            proc.wait(10)

    # -- REST API -------------------------------------------------------------------------
    def token(self) -> str:
        if self._token is None:
            r = httpx.post(f"{self.base_url}/auth/token",
                           json={"username": "admin", "password": PASSWORD}, timeout=30)
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        r = httpx.request(method, f"{self.base_url}/api/v2{path}", timeout=30,
                          headers={"Authorization": f"Bearer {self.token()}"}, **kwargs)
        if r.status_code >= 400:
            raise AssertionError(f"{method} {path}: {r.status_code} {r.text}")
        return r.json() if r.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Until the dag-processor has parsed it (import errors fail at once)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            errors = self.api("GET", "/importErrors")["import_errors"]
            assert not errors, f"DAG import errors: {errors}"
            r = httpx.get(f"{self.base_url}/api/v2/dags/{dag_id}", timeout=30,
                          headers={"Authorization": f"Bearer {self.token()}"})
            if r.status_code == 200:
                return
            time.sleep(1)
        raise TimeoutError(f"DAG {dag_id} not parsed after {timeout} s\n{self.logs()}")

    def unpause(self, dag_id: str) -> None:
        """DAGs start paused, as in a default deployment (the hourly one would run at once)."""
        self.wait_for_dag(dag_id)
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        self.unpause(dag_id)
        run = self.api("POST", f"/dags/{dag_id}/dagRuns",
                       json={"logical_date": None, "conf": conf})
        return str(run["dag_run_id"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            run = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in FINAL_RUN_STATES:
                return run
            time.sleep(2)
        raise TimeoutError(f"{dag_id} {run_id} still running after {timeout} s\n{self.logs()}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                        params={"limit": 100})["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        entry = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
                                f"/xcomEntries/return_value",
                         params={"map_index": map_index, "deserialize": True})
        value = entry["value"]
        return json.loads(value) if isinstance(value, str) else value

    def task_log(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
        r = httpx.get(f"{self.base_url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/"
                      f"{task_id}/logs/1", params={"map_index": map_index}, timeout=30,
                      headers={"Authorization": f"Bearer {self.token()}",
                               "Accept": "text/plain"})
        return r.text

    def worker_tasks(self) -> dict[str, set[str]]:
        """Per Celery worker, the log paths (dag, run, task, map index) of the tasks it ran;
        the task instances' hostname cannot tell workers on one machine apart."""
        found = {}
        for name in self.procs:
            if name.startswith("worker"):
                text = (self.home / f"{name}.log").read_text(errors="replace")
                found[name] = set(re.findall(
                    r"Executing workload in Celery: .*? log_path='([^']+)'", text))
        return found

    def explain_failure(self, dag_id: str, run_id: str) -> str:
        out = []
        for ti in self.task_instances(dag_id, run_id):
            if ti["state"] != "success":
                out.append(f"--- {ti['task_id']}[{ti['map_index']}] {ti['state']} ---\n"
                           + self.task_log(dag_id, run_id, ti["task_id"], ti["map_index"])[-3000:])
        return "\n".join(out)


def _secret(home: Path, name: str) -> str:
    """One value per deployment that every component shares (tokens signed by one are
    accepted by the others)."""
    path = home / f".{name}-secret"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
    return path.read_text()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
