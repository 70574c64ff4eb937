"""FileMetaBuild: register a dataset version's files as file metas, incrementally.

The listing is streamed in batches; per batch the store is asked what it already knows, so
memory stays flat however many files there are. A file whose size and modification time (and
ETag, on OSS) match its meta is not read at all; a file whose fingerprint is unchanged costs no
write, except a touched one (same bytes, new time): its time is recorded, so it is read once.
A file that vanished becomes Status=DELETED, and comes back ACTIVE if it reappears. A file that
cannot be used is a recorded per-file failure and the scan goes on.

A first build (a version with no metas yet) looks nothing up and lists no sizes (each file's
are taken from its read; locally that saves a stat a file). Local files are read ahead (the
kernel fetches files while the ones before are examined), and large batches are examined by
worker processes while the batch before is written (see ``_Examiner``); on PostgreSQL a
thread writes it while the main thread builds the next one (see ``_Writer``). Files are
hashed in 1 MiB chunks (memory flat in the file's size); the header is probed from the same
open file, and the size and time recorded are that file's (fstat), so all three describe the
bytes hashed. A file whose size or time differs after the read from before it, or that gave
fewer or more bytes than its size, "changed while being read": a failure.

No directory entry aborts the scan. Per kind (``failed``: recorded in the job's files with the
reason, the job ends PartialFailed, the next scan tries again; ``skipped``: counted, logged
with the reason, the job can still end Succeeded):

- failed "name is not valid UTF-8": its URI, hence its meta, cannot hold the name (the failure
  is recorded under the name percent-encoded byte for byte);
- failed "symlink loop", "dangling link: its target does not exist";
- failed "link leads outside the dataset folder": the target is neither registered nor read
  (LocalStorage(follow_links_outside_root=True) allows it); links within the folder are fine;
- failed "vanished: no such file", "unreadable: <why>", "not a regular file any more": the
  entry went or changed between listing and reading (or could not be read);
- failed "changed while being read"; failed "truncated: header-only image: ..." and the other
  image checks of :mod:`imageprobe`;
- failed "folder cannot be listed: <why>", under the folder's URI: the listing is then
  incomplete, so this scan marks no file DELETED;
- skipped "not a regular file: a FIFO" (a socket, a device, a link to a folder: links to
  folders are never followed, which also rules out loops through folders), and, unlogged,
  files that are not a supported image.

A failure found by the listing itself (the name, a loop, a dangling or outside link) means
there is no usable file under that name: a meta it had is marked DELETED, as for a removed
file. A failure found on reading leaves a meta as it was (the next scan tries again).
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import posixpath
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from itertools import islice, repeat
from typing import BinaryIO, TypeVar

from PIL import Image

from .errors import AdapterError
from .ids import file_meta_id
from .imageprobe import HEAD_BYTES, TAIL_BYTES, ImageInfo, NeedMoreBytes, ProbeError, probe_image
from .metadata import SCAN_COLUMNS, FileMeta, MetadataStore
from .metadata.store import LOST_AFTER_S
from .progress import ProgressCallback, ProgressMeter
from .storage import (
    LocalStorage, ObjectInfo, OssConfig, Storage, is_supported_image, open_storage,
)
from .timeutil import now_ms

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class ScanResult:
    job_id: str
    listed: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    restored: int = 0
    deleted: int = 0
    failed: int = 0
    skipped: int = 0  # not a supported image format, or not a file (a FIFO, a device)
    failures: list[tuple[str, str]] = field(default_factory=list)  # first few, for display
    skips: list[tuple[str, str]] = field(default_factory=list)  # first few with a reason

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k not in ("failures", "skips")}


@dataclass(frozen=True)
class _Outcome:
    obj: ObjectInfo
    meta: FileMeta | None = None
    kind: str = "unchanged"  # new | changed | restored | unchanged | failed
    reason: str | None = None
    touched: int | None = None  # pk of an unchanged file whose listed size or time is new


# (fingerprint, image info, failure reason, the file as read: on local disks its size and time
# are those of the bytes hashed): plain data, so it crosses process boundaries.
Examined = tuple[str | None, ImageInfo | None, str | None, ObjectInfo]

CHUNK_BYTES = 1 << 20  # hashing reads this much at a time


def examine(storage: Storage, obj: ObjectInfo, max_pixels: int) -> Examined:
    """Fingerprint a file and read its image header, reading no more than that needs:
    the whole file on local disks (MD5, streamed), the head and tail on OSS (the ETag is
    listed). Never raises for a bad file: the reason is returned."""
    try:
        if isinstance(storage, LocalStorage):
            return _examine_local(storage, obj, max_pixels)
        head = storage.read(obj.key, (0, HEAD_BYTES - 1)) if obj.size else b""
        tail = None
        if obj.size > len(head):
            tail = storage.read(obj.key, (max(obj.size - TAIL_BYTES, 0), obj.size - 1))
        return obj.etag, _probe(storage, obj, head, tail, max_pixels), None, obj
    except ProbeError as exc:
        return None, None, f"{exc.reason}: {exc.detail}", obj
    except AdapterError as exc:  # the client already retried; the next scan tries again
        if isinstance(storage, LocalStorage):  # says what happened: vanished, a loop, ...
            return None, None, exc.message, obj
        return None, None, f"{'unavailable' if exc.retriable else 'unreadable'}: {exc.message}", obj
    except OSError as exc:  # a read error half way through (EIO)
        return None, None, f"unreadable: {exc.strerror or type(exc).__name__}", obj
    except Exception as exc:  # a decoder bug on a hostile file fails that file, not the job
        log.exception("examining %s", obj.uri)
        return None, None, f"unexpected error: {type(exc).__name__}", obj


def _examine_local(storage: LocalStorage, obj: ObjectInfo, max_pixels: int) -> Examined:
    """MD5 and header from one open file, with its size and time from fstat before the read;
    the same fstat after it proves the three describe the same bytes."""
    with storage.open(obj.key) as fh:
        before = os.fstat(fh.fileno())
        digest, hashed, first = _md5(fh, before.st_size)
        try:
            info, reason = _probe_read(obj.key, fh, first, hashed, max_pixels), None
        except ProbeError as exc:
            info, reason = None, f"{exc.reason}: {exc.detail}"
        after = os.fstat(fh.fileno())
    size, mtime_ms = before.st_size, before.st_mtime_ns // 1_000_000
    read = obj if (obj.size, obj.mtime_ms) == (size, mtime_ms) else replace(
        obj, size=size, mtime_ms=mtime_ms)
    if hashed != before.st_size or (after.st_size, after.st_mtime_ns) != (
            before.st_size, before.st_mtime_ns):
        return None, None, (f"changed while being read: {before.st_size} bytes before, "
                            f"{hashed} read, {after.st_size} after"), read
    return digest, info, reason, read


def _md5(fh: BinaryIO, size: int) -> tuple[str, int, bytes]:
    """The MD5 of a file, read in chunks; how many bytes it covers; the first chunk."""
    md5, n, first = hashlib.md5(), 0, b""
    want = min(max(size + 1, 64 * 1024), CHUNK_BYTES)  # a small file: no 1 MiB buffers
    while chunk := fh.read(want):
        md5.update(chunk)
        n += len(chunk)
        first = first or chunk
    return md5.hexdigest(), n, first


def _probe_read(name: str, fh: BinaryIO, first: bytes, size: int, max_pixels: int) -> ImageInfo:
    """Probe a file just hashed: from memory when it was one chunk (most images: the fastest),
    else from the open file, with its last bytes for the integrity checks."""
    if len(first) == size:
        return probe_image(name, first, size, max_pixels=max_pixels)
    fh.seek(max(size - TAIL_BYTES, 0))
    tail = fh.read(TAIL_BYTES)
    fh.seek(0)
    return probe_image(name, first[:HEAD_BYTES], size, tail, max_pixels=max_pixels, fp=fh)


def _probe(storage: Storage, obj: ObjectInfo, head: bytes, tail: bytes | None,
           max_pixels: int) -> ImageInfo:
    try:
        return probe_image(obj.key, head, obj.size, tail, max_pixels=max_pixels)
    except NeedMoreBytes:
        return probe_image(obj.key, storage.read(obj.key), obj.size, max_pixels=max_pixels)


def examine_all(storage: Storage, objs: list[ObjectInfo], max_pixels: int) -> list[Examined]:
    return [examine(storage, o, max_pixels) for o in objs]


def _read_and_examine(storage: LocalStorage, objs: list[ObjectInfo],
                      max_pixels: int) -> list[Examined]:
    storage.read_ahead([o.key for o in objs], CHUNK_BYTES)
    return examine_all(storage, objs, max_pixels)


def _start_worker() -> None:
    """A worker process dies of SIGTERM, whatever its parent does with it. An Airflow task
    process ignores SIGTERM in its forked children, and the pool terminates the other workers
    when one was killed (out of memory): a worker that ignored that, blocked writing a result
    no one reads any more, hung the scan for good."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


# A local batch of at least this many files to read is examined by worker processes, in
# chunks of PROCESS_CHUNK: MD5 and header parsing are CPU work, and the GIL keeps threads to one
# core (measured: threads were slower than inline). Smaller batches are examined inline.
PROCESS_BATCH = 1000
PROCESS_CHUNK = 250


class _Examiner:
    """Runs :func:`examine` for a batch, and overlaps it with the writing of the one before.

    OSS: a pool of threads (the work is waiting on the network), driven from one more thread
    so the main thread writes the previous batch meanwhile. Local disks: what waits is the
    reads, so the kernel is asked to read the files ahead (``read_ahead``). Large batches are
    examined by worker processes, one per core, each reading its chunk ahead (that costs a
    few system calls a file, which the main thread then need not make), while the batch before
    is written; small ones inline, when their result is wanted, read ahead by the driver
    thread meanwhile, so the files are in the page cache by then.
    """

    def __init__(self, storage: Storage, max_pixels: int, workers: int | None):
        self.storage = storage
        self.max_pixels = max_pixels
        self.local = isinstance(storage, LocalStorage)
        self._driver = ThreadPoolExecutor(1)
        self._threads = None if self.local else ThreadPoolExecutor(workers or 8)
        # One per core, at most 8: a default batch (2,000 files) is 8 chunks.
        self._process_count = workers or min(os.cpu_count() or 1, 8)
        self._processes: ProcessPoolExecutor | None = None
        self._no_processes = self._process_count < 2 or not self.local

    def submit(self, objs: list[ObjectInfo]) -> _Later | Future[list[Examined]]:
        if self._threads is not None:
            threads = self._threads
            return self._driver.submit(lambda: list(threads.map(self._examine, objs)))
        storage = self.storage
        assert isinstance(storage, LocalStorage)
        pool = self._pool() if len(objs) >= PROCESS_BATCH else None
        if pool is None:
            self._driver.submit(storage.read_ahead, [o.key for o in objs], CHUNK_BYTES)
            return _Later(lambda: examine_all(storage, objs, self.max_pixels))

        def in_processes() -> list[Examined]:
            chunks = [objs[i:i + PROCESS_CHUNK] for i in range(0, len(objs), PROCESS_CHUNK)]
            try:
                parts = list(pool.map(_read_and_examine, repeat(storage), chunks,
                                      repeat(self.max_pixels)))
            except BrokenProcessPool:  # a worker was killed (out of memory): go on inline
                log.warning("FileMetaBuild's worker processes died; examining inline")
                self._no_processes = True
                return examine_all(storage, objs, self.max_pixels)
            return [examined for part in parts for examined in part]

        return self._driver.submit(in_processes)

    def _pool(self) -> ProcessPoolExecutor | None:
        """The worker processes, started on first use; None where they cannot run (one core,
        or a daemonic parent such as a Celery pool process, which may not have children)."""
        if self._processes is None and not self._no_processes:
            # fork: "spawn" and "forkserver" would import the caller's __main__ again in each
            # worker, re-running a user's unguarded script. A forked worker only examines files.
            pool = ProcessPoolExecutor(self._process_count,
                                       mp_context=multiprocessing.get_context("fork"),
                                       initializer=_start_worker)
            try:
                pool.submit(os.getpid).result()
            except Exception as exc:  # noqa: BLE001 - any failure to start means inline
                log.info("FileMetaBuild examines inline: no worker processes (%s)", exc)
                pool.shutdown(cancel_futures=True)
                self._no_processes = True
                return None
            self._processes = pool
        return None if self._no_processes else self._processes

    def _examine(self, obj: ObjectInfo) -> Examined:
        return examine(self.storage, obj, self.max_pixels)

    def close(self) -> None:
        for pool in (self._driver, self._threads, self._processes):
            if pool is not None:
                pool.shutdown(cancel_futures=True)


class _Later:
    """Work done in the calling thread when its result is first asked for."""

    def __init__(self, work: Callable[[], list[Examined]]):
        self._work = work

    def result(self) -> list[Examined]:
        return self._work()


class _Writer:
    """Writes each batch's metas, touched times and failures in one transaction.

    Where the store offers a writer connection (PostgreSQL), a thread writes on it while the
    main thread lists, looks up and builds the next batch, and the server inserts meanwhile.
    One batch is written at a time, the next waiting for it: memory stays flat, and a failed
    write stops the scan one batch later, before any file is marked DELETED.
    """

    def __init__(self, store: MetadataStore, job_id: str, first_build: bool):
        self.job_id = job_id
        self.first_build = first_build  # no meta exists yet: the store may insert plainly
        self._own = store.writer_connection()
        self.store = self._own or store
        self._thread = ThreadPoolExecutor(1) if self._own else None
        self._pending: Future[None] | None = None

    def write(self, outcomes: list[_Outcome]) -> None:
        if self._thread is None:
            self._write(outcomes)
            return
        self.wait()
        self._pending = self._thread.submit(self._write, outcomes)

    def wait(self) -> None:
        """Until the batch being written is committed; raises what its write raised."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown()  # a batch being written ends committed or rolled back
        if self._own is not None:
            self._own.close()

    def _write(self, outcomes: list[_Outcome]) -> None:
        metas = [o.meta for o in outcomes if o.meta is not None]
        failures = [(o.obj.uri, "FAILED", o.reason) for o in outcomes if o.kind == "failed"]
        touched = [(o.obj.size, o.obj.mtime_ms, o.touched) for o in outcomes
                   if o.touched is not None]
        with self.store.transaction():
            self.store.upsert_file_metas(metas, update_columns=SCAN_COLUMNS,
                                         likely_new=self.first_build)
            if touched:  # the content is the same: tags and vectors stay valid
                self.store.executemany(
                    "UPDATE file_metas SET data_size = ?, file_update_time = ? WHERE pk = ?",
                    touched)
            if failures:
                self.store.record_job_files(self.job_id, failures)


class FileMetaBuilder:
    """Runs one FileMetaBuild over a dataset version. See :func:`build_file_metas`."""

    def __init__(self, store: MetadataStore, storage: Storage, dataset_id: str, version: str,
                 *, max_pixels: int, workers: int | None, allow_empty: bool = False):
        self.store = store
        self.storage = storage
        self.dataset_id = dataset_id
        self.version = version
        self.allow_empty = allow_empty
        self.examiner = _Examiner(storage, max_pixels, workers)
        self.incomplete = False  # a folder could not be listed: deletions are unproven
        self.first_build = False  # the version had no metas: nothing to look up

    def run(self, result: ScanResult, meter: ProgressMeter, batch_size: int) -> None:
        # A first build skips the lookups (on PostgreSQL 10 % of its time). A second scan
        # running at once on the same empty version then counts some files "new" twice; the
        # upserts still leave one meta a file. Nor does it need the listing's sizes and
        # times: every file is read, and its meta takes them from the open file.
        self.first_build = not self.store.has_file_metas(self.dataset_id, self.version)
        listing = (o for o in self.storage.list(sizes=not self.first_build)
                   if self._keep(o, result))
        batches = _batches(listing, batch_size)
        with self.store.seen_files(self.dataset_id, self.version) as seen:
            writer = _Writer(self.store, result.job_id, self.first_build)
            try:
                # Batch k+1 is examined (worker processes; threads on OSS) while k is written.
                current = self._start(next(batches, None))
                while current is not None:
                    following = self._start(next(batches, None))
                    batch, known, todo, future = current
                    examined = dict(zip((o.uri for o in todo), future.result()))
                    now = now_ms()
                    outcomes = [self._outcome(o, known.get(o.uri), examined.get(o.uri), now)
                                for o in batch]
                    writer.write(outcomes)
                    # An entry the listing found unusable has no file: its meta is not seen.
                    seen.add([known[o.uri][0] for o in batch if o.uri in known and not o.problem])
                    self._count(outcomes, result)
                    result.listed += len(batch)
                    meter.advance(len(batch), sum(o.kind == "failed" for o in outcomes))
                    current = following
                writer.wait()  # every batch committed before any file is marked DELETED
            finally:
                self.examiner.close()
                writer.close()
            self._refuse_emptying(result)
            if self.incomplete:
                self.store.append_job_log(
                    result.job_id, "Some folders could not be listed (see the failed files): "
                    "no file is marked DELETED by this run", level="WARN")
            else:
                result.deleted = seen.mark_unseen_deleted()
        self.store.refresh_statistics_after(result.new + result.changed + result.restored)

    def _refuse_emptying(self, result: ScanResult) -> None:
        """An empty listing of a version that has files is far likelier an unmounted or wrong
        folder than every file deleted: fail instead of marking them all DELETED."""
        if result.listed or self.allow_empty:
            return
        active = self.store.count_file_metas(self.dataset_id, self.version)
        if active:
            raise AdapterError(
                f"{self.storage.root_uri} lists no files, but version {self.version} has "
                f"{active} active files: not marking them all DELETED (an unmounted, moved or "
                "emptied folder?). If they really are gone, run again with allow_empty=True",
                is_input_error=True)

    def _start(self, batch: list[ObjectInfo] | None) -> tuple | None:
        """Look a batch up and send the files that need reading to the examiner."""
        if not batch:
            return None
        known = {} if self.first_build else self.store.scan_lookup(
            self.dataset_id, self.version, [o.uri for o in batch])
        todo = [o for o in batch
                if not o.problem and not _unchanged_listing(o, known.get(o.uri))]
        return batch, known, todo, self.examiner.submit(todo)

    def _outcome(self, obj: ObjectInfo, known: tuple | None, examined: Examined | None,
                 now: int) -> _Outcome:
        if obj.problem:
            return _Outcome(obj, kind="failed", reason=_printable(obj.problem))
        if examined is None:  # size, time (and ETag) as recorded: not even read
            return _Outcome(obj)
        fingerprint, info, reason, obj = examined  # obj: its size and time as hashed
        if info is None:
            return _Outcome(obj, kind="failed", reason=_printable(reason or "unreadable"))
        pk0, fingerprint0, _, _, status0 = known or (None, None, None, None, None)
        if known and fingerprint == fingerprint0 and status0 == "ACTIVE":
            return _Outcome(obj, touched=pk0)  # read because the listing differed: record it
        kind = "new" if not known else "restored" if status0 != "ACTIVE" else "changed"
        meta = FileMeta(
            file_meta_id=file_meta_id(self.dataset_id, self.version, obj.uri),
            dataset_id=self.dataset_id,
            dataset_version=self.version,
            uri=obj.uri,
            file_name=posixpath.basename(obj.key),
            file_dir=posixpath.dirname(obj.key),
            data_size=obj.size,
            file_fingerprint=fingerprint,
            file_create_time=obj.mtime_ms,
            file_update_time=obj.mtime_ms,
            file_type="image",
            content_type=info.content_type,
            meta_attributes=info.meta_attributes(),
            sync_time=now,
            status="ACTIVE",
        )
        return _Outcome(obj, meta, kind)

    def _keep(self, obj: ObjectInfo, result: ScanResult) -> bool:
        """Whether a listed entry is examined (or recorded as failed), else counted skipped."""
        if obj.key.endswith("/"):  # a folder that could not be listed: a failure
            self.incomplete = True
            return True
        if obj.skip:
            self._skip(obj, result)
            return False
        if is_supported_image(obj.key):
            return True
        result.skipped += 1
        return False

    def _skip(self, obj: ObjectInfo, result: ScanResult) -> None:
        result.skipped += 1
        log.info("skipped %s: %s", obj.uri, obj.problem)
        if len(result.skips) < 20:  # a folder of sockets must not flood the job log
            result.skips.append((obj.uri, obj.problem or ""))
            self.store.append_job_log(result.job_id, f"Skipped {obj.uri}: {obj.problem}",
                                      level="WARN")

    @staticmethod
    def _count(outcomes: list[_Outcome], result: ScanResult) -> None:
        for o in outcomes:
            setattr(result, o.kind, getattr(result, o.kind) + 1)
            if o.kind == "failed" and len(result.failures) < 20:
                result.failures.append((o.obj.uri, o.reason or ""))


def _printable(reason: str) -> str:
    """A reason the database accepts: no lone surrogates (bytes of a name that is not UTF-8)."""
    return reason.encode("utf-8", "backslashreplace").decode("utf-8")


def _unchanged_listing(obj: ObjectInfo, known: tuple | None) -> bool:
    """The listing alone proves the file unchanged: size and time (and the ETag) as recorded."""
    if not known:
        return False
    _, fingerprint, size, mtime, status = known
    return (status == "ACTIVE" and size == obj.size and mtime == obj.mtime_ms
            and (obj.etag is None or obj.etag == fingerprint))


def build_file_metas(
    store: MetadataStore,
    dataset_id: str,
    version: str,
    *,
    storage: Storage | None = None,
    oss_config: OssConfig | None = None,
    progress: ProgressCallback | None = None,
    batch_size: int = 2000,
    workers: int | None = None,
    max_pixels: int | None = None,
    allow_empty: bool = False,
    job_id: str | None = None,
) -> ScanResult:
    """Run a FileMetaBuild job over a STORAGE dataset version and record it as a job.

    Args:
        store: the metadata store.
        dataset_id: the dataset's id or name.
        version: the version name (``v1``).
        storage: where the files are; by default opened from the version's URI.
        oss_config: OSS endpoint and credentials when the URI is ``oss://``.
        progress: called with a :class:`~mmdm.adapters.progress.Progress` every few seconds.
        batch_size: files per store round trip and commit.
        workers: threads reading and probing OSS files while the main thread writes
            (default 8); for local files, the processes examining large batches (default:
            one per core, at most 8; 1 examines them inline).
        max_pixels: images with more pixels are rejected as decompression bombs
            (default: Pillow's ``Image.MAX_IMAGE_PIXELS``).
        allow_empty: let a listing with no files mark every file of the version DELETED;
            otherwise that fails the job (a missing or unmounted folder looks the same).
        job_id: a ``Pending`` job to run (CreateDatasetJob made it) instead of a new one.

    Returns:
        The counts of new, changed, unchanged, restored, deleted, failed and skipped files.
    """
    ds = store.get_dataset(dataset_id)
    ver = store.get_version(ds.dataset_id, version)
    if ver.source_type != "STORAGE" or not ver.uri:
        raise AdapterError(f"{ds.dataset_id}/{version} is a logical version; it is fed by import",
                           is_input_error=True)
    storage = storage or open_storage(ver.uri, oss_config)
    store.fail_lost_jobs(ds.dataset_id, version, LOST_AFTER_S)
    job = (store.adopt_pending_job(job_id, ds.dataset_id, version, "FileMetaBuild", {})
           if job_id else store.create_job(ds.dataset_id, version, "FileMetaBuild", job_spec={}))
    store.start_job(job.job_id)
    store.append_job_log(job.job_id, f"Job started: scanning {ver.uri}")
    result = ScanResult(job.job_id)
    meter = ProgressMeter(lambda p: _log_progress(store, job.job_id, p, progress))
    builder = FileMetaBuilder(store, storage, ds.dataset_id, version, workers=workers,
                              max_pixels=max_pixels or Image.MAX_IMAGE_PIXELS or 2**63,
                              allow_empty=allow_empty)
    try:
        builder.run(result, meter, batch_size)
    except BaseException as exc:
        store.append_job_log(job.job_id, f"Job failed: {exc}", level="ERROR")
        store.update_job_counts(job.job_id, total=result.listed,
                                completed=result.listed - result.failed, failed=result.failed)
        store.finish_job(job.job_id, "Failed", result.to_dict())
        raise
    meter.finish()
    store.update_job_counts(job.job_id, total=result.listed,
                            completed=result.listed - result.failed, failed=result.failed)
    status = "PartialFailed" if result.failed else "Succeeded"
    store.append_job_log(job.job_id, f"Job completed: {result.to_dict()}")
    store.finish_job(job.job_id, status, result.to_dict())
    return result


def _log_progress(store: MetadataStore, job_id: str, p, callback: ProgressCallback | None) -> None:
    store.append_job_log(job_id, f"Progress: {p}")
    store.heartbeat(job_id)
    if callback:
        callback(p)
