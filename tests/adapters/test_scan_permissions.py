"""FileMetaBuild where file permissions refuse it: an unreadable file or sub-folder is a
per-file failure and deletes nothing; an unreadable dataset folder fails the job before any
file is marked DELETED.

Root reads everything, so as root the scans run in a child process without the capabilities
that bypass permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH): what an ordinary Airflow
worker user meets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from mmdm.adapters.metadata import open_store
from mmdm.adapters.scan import build_file_metas
from tests.adapters.imagefiles import image_bytes

_SCAN = """
import json, sys
from mmdm.adapters.errors import AdapterError
from mmdm.adapters.metadata import open_store
from mmdm.adapters.scan import build_file_metas
store = open_store(sys.argv[1])
try:
    result = build_file_metas(store, "ds", "v1")
except AdapterError as exc:
    print(json.dumps({"error": str(exc)}))
else:
    job = store.get_job(result.job_id)
    print(json.dumps({
        "status": job.status, "deleted": result.deleted, "unchanged": result.unchanged,
        "failures": {uri.rstrip("/").rsplit("/", 1)[1]: why
                     for uri, why in store.job_file_failures(result.job_id)}}))
"""


def _without_permission_bypass() -> list[str]:
    """The command prefix that runs a child as this user minus root's bypass of permissions."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("running as root needs util-linux's setpriv to drop CAP_DAC_OVERRIDE")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all"]


def _scan_unprivileged(url: str) -> dict:
    done = subprocess.run([*_without_permission_bypass(), sys.executable, "-c", _SCAN, url],
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def registered(tmp_path):
    """Four readable images registered in SQLite by an ordinary scan: (root, url, store, id)."""
    root = tmp_path / "imgs"
    for rel in ("top.png", "locked.png", "sub/a.png", "sub/b.png"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(image_bytes("png"))
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    store = open_store(url)
    ds = store.create_dataset("ds", root.as_uri())
    store.create_version(ds.dataset_id)
    assert build_file_metas(store, ds.dataset_id, "v1").new == 4
    yield root, url, store, ds.dataset_id
    for path in (root, root / "sub", root / "locked.png"):  # let pytest clean up
        path.chmod(0o755)
    store.close()


def test_an_unreadable_file_or_folder_is_a_failure_and_deletes_nothing(registered):
    root, url, store, ds = registered
    locked = root / "locked.png"
    os.utime(locked, (locked.stat().st_atime, locked.stat().st_mtime + 60))  # must be read
    locked.chmod(0)
    (root / "sub").chmod(0)

    seen = _scan_unprivileged(url)
    assert seen["status"] == "PartialFailed"
    assert seen["failures"] == {"locked.png": "unreadable: Permission denied",
                                "sub": "folder cannot be listed: unreadable: Permission denied"}
    assert (seen["deleted"], seen["unchanged"]) == (0, 1)
    assert store.count_file_metas(ds, "v1") == 4  # ACTIVE ones


def test_an_unreadable_dataset_folder_fails_the_job_and_marks_nothing_deleted(registered):
    root, url, store, ds = registered
    root.chmod(0)

    seen = _scan_unprivileged(url)
    assert "is not readable by this process" in seen["error"]
    assert store.count_file_metas(ds, "v1") == 4  # ACTIVE ones
