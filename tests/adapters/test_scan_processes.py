"""FileMetaBuild's worker processes: a large local batch is examined in other processes with
the same outcome, file for file, as inline; a worker that dies costs no file, in an Airflow
task process too, and where no process may be started (a daemonic parent, as in a Celery
pool) the scan runs inline."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading

import pytest

from mmdm.adapters import scan
from mmdm.adapters.metadata import open_store
from mmdm.adapters.scan import build_file_metas
from mmdm.adapters.storage import LocalStorage
from tests.adapters.imagefiles import image_bytes

FILES = scan.PROCESS_BATCH + 150


class PidRecordingStorage(LocalStorage):
    """Appends the id of the process that opens each file to ``log`` (shared by processes)."""

    def __init__(self, root, log):
        super().__init__(root.as_uri())
        self.log = str(log)

    def open(self, key):
        with open(self.log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        return super().open(key)


class DiesInWorkers(LocalStorage):
    """Kills the worker process that opens ``bad.png`` (as the out-of-memory killer would)."""

    def __init__(self, root, parent):
        super().__init__(root.as_uri())
        self.parent = parent

    def open(self, key):
        if key.endswith("bad.png") and os.getpid() != self.parent:
            os._exit(9)
        return super().open(key)


class SignalRecordingStorage(LocalStorage):
    """Appends, for each file a worker process opens, whether SIGTERM would kill it."""

    def __init__(self, root, log, parent):
        super().__init__(root.as_uri())
        self.log, self.parent = str(log), parent

    def open(self, key):
        if os.getpid() != self.parent:
            with open(self.log, "a") as fh:
                fh.write(f"{signal.getsignal(signal.SIGTERM) is signal.SIG_DFL}\n")
        return super().open(key)


@pytest.fixture(params=["plain", "airflow-task"])
def task_process(request):
    """The process the scan runs in. Airflow's task runner catches SIGTERM, and its handler
    does nothing in a forked child (``_on_term`` in airflow.sdk.execution_time.task_runner)."""
    if request.param == "plain":
        yield request.param
        return
    parent = os.getpid()

    def on_term(signum, frame):
        if os.getpid() != parent:
            return  # as Airflow's: a forked child ignores the signal
        raise SystemExit(128 + signum)  # the test process itself stays killable

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield request.param
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """FILES images, a few of them unusable, in folders of 100."""
    root = tmp_path_factory.mktemp("many")
    png, jpg = image_bytes("png"), image_bytes("jpg")
    for i in range(FILES):
        path = root / f"d{i // 100}" / (f"{i}.png" if i % 2 else f"{i}.jpg")
        path.parent.mkdir(exist_ok=True)
        data = png if i % 2 else jpg
        if i % 250 == 7:
            data = data[:40]  # truncated
        elif i % 250 == 8:
            data = b"not an image at all"
        path.write_bytes(data + i.to_bytes(4, "little"))
    (root / "bad.png").write_bytes(png)
    return root


def _scan(store, root, **kw):
    ds = store.create_dataset(f"ds{len(store.list_datasets())}", root.as_uri())
    store.create_version(ds.dataset_id)
    result = build_file_metas(store, ds.dataset_id, "v1", **kw)
    metas = {m.uri: (m.data_size, m.file_fingerprint, m.content_type, m.meta_attributes,
                     m.file_update_time) for m in store.iter_file_metas(ds.dataset_id, "v1")}
    failures = sorted(store.job_file_failures(result.job_id))
    return result, metas, failures


def test_worker_processes_examine_a_large_batch_as_inline_does(store, folder, tmp_path):
    log = tmp_path / "pids"
    result, metas, failures = _scan(store, folder, workers=2,
                                    storage=PidRecordingStorage(folder, log))
    pids = set(log.read_text().split())
    assert str(os.getpid()) not in pids and len(pids) == 2  # both workers, not this process
    inline, inline_metas, inline_failures = _scan(store, folder, workers=1,
                                                  storage=PidRecordingStorage(folder, log))
    assert set(log.read_text().split()) - pids == {str(os.getpid())}
    assert result.new == inline.new == FILES + 1 - len(failures)
    assert len(failures) == 2 * (FILES // 250 + 1) and failures == inline_failures
    assert {uri.rsplit("/", 1)[1] for uri, _ in failures} >= {"7.png", "8.jpg"}
    assert metas == inline_metas


def test_a_worker_that_dies_costs_no_file(store, folder, task_process):
    """When a worker is killed the pool terminates the others; one that outlived SIGTERM (in
    an Airflow task) could block for good writing its result, and the scan with it."""
    done: list = []
    scan_thread = threading.Thread(target=lambda: done.append(_scan(
        store, folder, workers=2, storage=DiesInWorkers(folder, os.getpid()))), daemon=True)
    scan_thread.start()
    scan_thread.join(timeout=120)
    if not done:  # unblock the hung pool, so that the suite goes on
        for child in multiprocessing.active_children():
            child.kill()
    assert done, "the scan hung after a worker died"
    result, metas, failures = done[0]
    assert result.new == FILES + 1 - len(failures) == len(metas)  # examined inline instead
    assert folder.joinpath("bad.png").as_uri() in metas


def test_workers_die_of_sigterm_whatever_the_task_process_does(store, folder, tmp_path,
                                                                task_process):
    log = tmp_path / "signals"
    _scan(store, folder, workers=2, storage=SignalRecordingStorage(folder, log, os.getpid()))
    assert log.read_text().split() and set(log.read_text().split()) == {"True"}


def _scan_in_daemon(root: str, url: str, out) -> None:
    store = open_store(url)
    ds = store.create_dataset("daemon", root)
    store.create_version(ds.dataset_id)
    out.put(build_file_metas(store, ds.dataset_id, "v1", workers=2).new)


def test_a_daemonic_parent_scans_inline(folder, tmp_path):
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_scan_in_daemon, daemon=True,
                        args=(folder.as_uri(), f"sqlite:///{tmp_path / 'm.db'}", out))
    child.start()
    new = out.get(timeout=120)
    child.join(30)
    assert child.exitcode == 0 and new == FILES + 1 - 2 * (FILES // 250 + 1)
