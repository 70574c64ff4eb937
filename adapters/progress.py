"""Progress of a long job: done/total, rate and ETA, reported at a bounded frequency."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    done: int
    total: int | None
    failed: int
    elapsed_s: float

    @property
    def rate(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        if self.total is None or self.rate <= 0:
            return None
        return max(self.total - self.done, 0) / self.rate

    def __str__(self) -> str:
        of = f"/{self.total}" if self.total is not None else ""
        eta = f", ETA {self.eta_s:.0f}s" if self.eta_s is not None else ""
        return f"{self.done}{of} files ({self.failed} failed), {self.rate:.0f} files/s{eta}"


ProgressCallback = Callable[[Progress], None]


class ProgressMeter:
    """Calls ``callback`` at most every ``interval_s`` seconds, and always at ``finish``."""

    def __init__(self, callback: ProgressCallback | None, total: int | None = None,
                 interval_s: float = 5.0):
        self.callback = callback
        self.total = total
        self.interval_s = interval_s
        self.done = 0
        self.failed = 0
        self._start = time.monotonic()
        self._last = self._start

    def snapshot(self) -> Progress:
        return Progress(self.done, self.total, self.failed, time.monotonic() - self._start)

    def advance(self, done: int, failed: int = 0) -> None:
        self.done += done
        self.failed += failed
        now = time.monotonic()
        if self.callback and now - self._last >= self.interval_s:
            self._last = now
            self.callback(self.snapshot())

    def finish(self) -> Progress:
        snap = self.snapshot()
        if self.callback:
            self.callback(snap)
        return snap
