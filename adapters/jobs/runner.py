"""The machinery every model job shares: bounded concurrency, retries, commits, progress.

Files are streamed from the store in key order and sent in units (one file per VLM call, a
batch per embedding call) to at most ``concurrency`` worker threads. Each finished unit is
committed at once with the job's per-file outcomes, so a job killed at any point, when run
again, redoes at most the units that were in flight. On PostgreSQL the files are claimed a
few units at a time, so jobs of one version running at once split them between them.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..errors import AdapterError
from ..metadata import FileMeta, Job, MetadataStore
from ..metadata.store import LOST_AFTER_S
from ..progress import ProgressCallback, ProgressMeter

log = logging.getLogger(__name__)
R = TypeVar("R")
STATUS_CHECK_S = 1.0  # how often counters are saved and a stop request is looked for

# A unit's outcome per file: the result, or the exception that failed that file.
Outcome = tuple[FileMeta, Any]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; a service's Retry-After is a floor."""

    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        backoff = random.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** attempt))
        return max(backoff, retry_after or 0.0)


def call_with_retries(fn: Callable[[], R], policy: RetryPolicy,
                      sleep: Callable[[float], None] = time.sleep) -> R:
    """``fn()``, retried on retriable ``AdapterError``s; the last error propagates."""
    for attempt in range(policy.max_attempts):
        try:
            return fn()
        except AdapterError as exc:
            if not exc.retriable or attempt == policy.max_attempts - 1:
                raise
            sleep(policy.delay(attempt, exc.retry_after))
    raise AssertionError("unreachable")


def failure_reason(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:2000]


@dataclass
class JobSummary:
    """What a job did, as small JSON for XCom and logs."""

    job_id: str
    status: str = "Running"
    total: int = 0
    completed: int = 0
    failed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"DatasetJobId": self.job_id, "Status": self.status,
                "TotalFileCount": self.total, "CompletedFileCount": self.completed,
                "FailedFileCount": self.failed, **self.extra}


class FileJobRunner(Generic[R]):
    """Runs ``work`` over a job's pending files; ``commit`` stores each unit's successes."""

    def __init__(
        self,
        store: MetadataStore,
        job: Job,
        *,
        target: str,
        concurrency: int,
        unit_size: int = 1,
        progress: ProgressCallback | None = None,
        page_size: int = 500,
        shard: tuple[int, int] | None = None,
        definition: tuple[str, int] | None = None,
        index_set: str | None = None,
        claim: str | None = None,
        extra: Callable[[], dict[str, Any]] | None = None,
    ):
        self.store = store
        self.extra = extra  # what the job adds to its result (usage, ...), read at the end
        self.claim = claim or target  # the work jobs sharing a version split (see _units)
        self.definition = definition  # tagging: (prompt_id, revision), see pending_files
        self.index_set = index_set  # description vectors: the set they go into
        self.job = job
        self.target = target
        self.concurrency = max(1, concurrency)
        self.unit_size = max(1, unit_size)
        self.progress = progress
        self.page_size = page_size
        self.shard = shard
        self.summary = JobSummary(job.job_id)

    def _units(self) -> Iterator[list[FileMeta]]:
        if self.store.shares_work:
            yield from self._claimed_units()
            return
        after = 0
        while True:
            page = self.store.pending_files(
                self.job.dataset_id, self.job.dataset_version, job_id=self.job.job_id,
                target=self.target, mode=self.job.job_mode, after_pk=after,
                limit=self.page_size, shard=self.shard, definition=self.definition,
                index_set=self.index_set)
            for i in range(0, len(page), self.unit_size):
                yield page[i:i + self.unit_size]
            if len(page) < self.page_size:
                return
            after = page[-1].pk or 0

    def _claimed_units(self) -> Iterator[list[FileMeta]]:
        """Claim as much as the workers can take at once, no more: another job of the version
        then gets the files this one has not started on. Files are claimed in key order; at
        the end one more sweep from the start takes claims that lapsed meanwhile (a killed
        job's) and rows a claimer skipped while they were locked."""
        after, swept = 0, False
        while True:
            metas, last = self.store.claim_pending_files(
                self.job.dataset_id, self.job.dataset_version, job_id=self.job.job_id,
                target=self.target, mode=self.job.job_mode, claim=self.claim,
                after_pk=after, limit=self.unit_size * self.concurrency,
                lost_after_s=LOST_AFTER_S, shard=self.shard, definition=self.definition,
                index_set=self.index_set)
            if last is None:
                if swept or after == 0:
                    return
                after, swept = 0, True
                continue
            after = last
            for i in range(0, len(metas), self.unit_size):
                yield metas[i:i + self.unit_size]

    def _previous_counts(self) -> tuple[int, int]:
        rows = dict(self.store.fetchall(
            "SELECT state, COUNT(*) FROM job_files WHERE job_id = ? GROUP BY state",
            (self.job.job_id,)))
        return int(rows.get("DONE", 0)), int(rows.get("FAILED", 0))

    def run(self, work: Callable[[list[FileMeta]], list[Outcome]],
            commit: Callable[[list[Outcome]], None]) -> JobSummary:
        s, store, job_id = self.summary, self.store, self.job.job_id
        s.completed, s.failed = self._previous_counts()  # a resumed job keeps its progress
        store.release_claims(job_id)  # a resumed job's earlier run left them in flight
        pending = store.count_pending(self.job.dataset_id, self.job.dataset_version,
                                      job_id=job_id, target=self.target, mode=self.job.job_mode,
                                      shard=self.shard, definition=self.definition,
                                      index_set=self.index_set)
        s.total = s.completed + s.failed + pending
        store.start_job(job_id, s.total)
        at_most = "up to " if store.shares_work else ""  # other jobs may take some
        store.append_job_log(job_id, f"Job started: {at_most}{pending} files to process "
                                     f"(mode {self.job.job_mode}, concurrency {self.concurrency})")
        meter = ProgressMeter(self._report, total=s.total)
        meter.done, meter.failed = s.completed + s.failed, s.failed
        units = self._units()
        inflight: set[Future[list[Outcome]]] = set()
        stopped = False
        last_check = time.monotonic()
        with ThreadPoolExecutor(self.concurrency) as pool:

            def refill() -> None:
                while not stopped and len(inflight) < self.concurrency:
                    unit = next(units, None)
                    if unit is None:
                        return
                    inflight.add(pool.submit(work, unit))

            refill()
            while inflight:
                # Wakes at least every STATUS_CHECK_S, so a slow unit does not stop the beat.
                done, inflight = wait(inflight, timeout=STATUS_CHECK_S,
                                      return_when=FIRST_COMPLETED)
                refill()  # keep every slot busy while this thread commits
                outcomes = [o for f in done for o in f.result()]
                self._commit(outcomes, commit, meter)
                if time.monotonic() - last_check >= STATUS_CHECK_S:
                    last_check = time.monotonic()
                    store.update_job_counts(job_id, completed=s.completed, failed=s.failed)
                    stopped = stopped or store.job_status(job_id) == "ManuallyStop"
        meter.finish()
        return self._finish(stopped)

    def _commit(self, outcomes: list[Outcome], commit: Callable[[list[Outcome]], None],
                meter: ProgressMeter) -> None:
        ok = [(m, r) for m, r in outcomes if not isinstance(r, BaseException)]
        bad = [(m.file_meta_id, "FAILED", failure_reason(r)) for m, r in outcomes
               if isinstance(r, BaseException)]
        if ok:
            commit(ok)
        if bad:
            self.store.record_job_files(self.job.job_id, bad)
        self.summary.completed += len(ok)
        self.summary.failed += len(bad)
        meter.advance(len(outcomes), len(bad))

    def _report(self, p) -> None:
        self.store.append_job_log(self.job.job_id, f"Progress: {p}")
        if self.progress:
            self.progress(p)

    def _finish(self, stopped: bool) -> JobSummary:
        s = self.summary
        # A stop that came after the last status check still counts (the user asked for it).
        stopped = stopped or self.store.job_status(s.job_id) == "ManuallyStop"
        if stopped:
            s.status = "ManuallyStop"
        elif s.failed == 0:
            s.status = "Succeeded"
        else:
            s.status = "Failed" if s.completed == 0 else "PartialFailed"
        if self.store.shares_work and not stopped:  # the count was an upper bound
            s.total = s.completed + s.failed
        self.store.update_job_counts(s.job_id, total=s.total, completed=s.completed,
                                     failed=s.failed)
        if self.extra is not None:
            s.extra.update(self.extra())
        for key, reason in self.store.job_file_failures(s.job_id, limit=5):
            self.store.append_job_log(s.job_id, f"Failed: {key}: {reason}", level="WARN")
        self.store.append_job_log(s.job_id, f"Job finished: {s.status}, {s.completed} done, "
                                            f"{s.failed} failed of {s.total}")
        self.store.finish_job(s.job_id, s.status, s.to_dict())
        return s


def fail_job(store: MetadataStore, job_id: str, exc: BaseException) -> None:
    """A job-level error (bad configuration, lost database): the job ends Failed."""
    store.append_job_log(job_id, f"Job failed: {failure_reason(exc)}", level="ERROR")
    store.finish_job(job_id, "Failed", {"error": failure_reason(exc)})
