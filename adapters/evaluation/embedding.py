"""Getting the vectors an evaluation needs: from the feature file first, else from the model.

Throttling and server errors are retried (the job runner's policy); an image or tag the model
still fails on becomes a ``Problem`` and the run goes on. An error that every later call would
repeat (bad settings, a rejected key, a text query to an image-only model) is raised at once:
carrying on would only report the same failure for every item.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AdapterError, ConfigError, NotSupportedError
from ..jobs.runner import RetryPolicy, call_with_retries, failure_reason
from ..models.base import Embedder, ImageInput
from ..progress import ProgressCallback, ProgressMeter
from .feature_cache import FeatureCache
from .labelled_set import IMAGE_EXTENSIONS, IMAGES_DIR, find_image_file, load_image
from .result import Problem

# A rejected key (401/403) or a wrong endpoint (404) fails every request the same way.
FATAL_STATUSES = frozenset({401, 403, 404})


def is_fatal(exc: BaseException) -> bool:
    return (isinstance(exc, (ConfigError, NotSupportedError))
            or getattr(exc, "status", None) in FATAL_STATUSES)


@dataclass
class Embedded:
    """Vectors by key (image id or tag), unit length, and what it took to get them."""

    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    embedded_now: int = 0
    from_cache: int = 0


@dataclass(frozen=True)
class Calls:
    """How to call the model: retries, the sleep between them (tests pass a no-op), threads."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    max_concurrency: int = 4

    def run(self, fn: Callable[[], Any]) -> Any:
        return call_with_retries(fn, self.retry, self.sleep)

    def map(self, work: Callable[[Any], Any], units: Sequence[Any]) -> Iterator[Any]:
        """``work`` over ``units``, results in order, with at most max_concurrency units
        submitted at a time, so that after an error no further unit is started."""
        width = max(1, self.max_concurrency)
        pool = ThreadPoolExecutor(width)
        pending: deque[Future[Any]] = deque()
        try:
            for unit in units:
                if len(pending) == width:
                    yield pending.popleft().result()
                pending.append(pool.submit(work, unit))
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True)


def checked_vector(result: Any, dimension: int) -> tuple[np.ndarray | None, str | None]:
    """A model's answer for one item as a unit vector, or why it cannot be used."""
    if isinstance(result, BaseException):
        return None, failure_reason(result)
    vector = np.asarray(result, dtype=np.float32).reshape(-1)
    if vector.shape != (dimension,):
        return None, f"the model returned {vector.size} values, expected {dimension}"
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0.0:
        return None, "the model returned a zero or non-finite vector"
    return vector / norm, None


def embed_images(embedder: Embedder, images_dir: Path, keys: Sequence[str],
                 cache: FeatureCache, calls: Calls,
                 progress: ProgressCallback | None = None) -> Embedded:
    """A vector per image id in ``keys`` that has a file and that the model embeds."""
    out = Embedded()
    todo: list[tuple[str, Path]] = []
    for key in keys:
        cached = cache.image(key)
        if cached is not None:
            out.vectors[key] = cached
            out.from_cache += 1
            continue
        path = find_image_file(images_dir, key)
        if path is None:
            out.problems.append(Problem(
                "image", key, f"no file {IMAGES_DIR}/{key}.<ext> for any extension of "
                              f"{', '.join(IMAGE_EXTENSIONS)}"))
        else:
            todo.append((key, path))

    def work(batch: list[tuple[str, Path]]) -> list[tuple[str, Any]]:
        outcome: list[tuple[str, Any]] = []
        inputs: list[tuple[str, ImageInput]] = []
        for key, path in batch:
            try:
                inputs.append((key, load_image(path, f"{IMAGES_DIR}/{path.name}")))
            except OSError as exc:
                outcome.append((key, exc))
        if inputs:
            try:
                results = calls.run(lambda: embedder.embed_images([i for _, i in inputs]))
            except AdapterError as exc:
                if is_fatal(exc):
                    raise
                results = [exc] * len(inputs)
            outcome.extend(zip((key for key, _ in inputs), results))
        return outcome

    size = max(1, int(embedder.max_batch))
    meter = ProgressMeter(progress, total=len(todo))
    for outcome in calls.map(work, [todo[i:i + size] for i in range(0, len(todo), size)]):
        failed = 0
        for key, result in outcome:
            vector, reason = checked_vector(result, embedder.dimension)
            if vector is None:
                out.problems.append(Problem("image", key, f"not embedded: {reason}"))
                failed += 1
                continue
            out.vectors[key] = vector
            out.embedded_now += 1
            cache.add_image(key, vector)
        meter.advance(len(outcome), failed)
    if todo:
        meter.finish()
    return out


def embed_tag_texts(embedder: Embedder, tags: Sequence[str], prefix: str,
                    cache: FeatureCache, calls: Calls) -> Embedded:
    """A vector per tag, for the text ``prefix + tag``; one text per call, so a tag the model
    refuses fails alone."""
    out = Embedded()
    todo: list[str] = []
    for tag in tags:
        cached = cache.text(tag, prefix)
        if cached is not None:
            out.vectors[tag] = cached
            out.from_cache += 1
        else:
            todo.append(tag)

    def work(tag: str) -> Any:
        try:
            return calls.run(lambda: embedder.embed_texts([prefix + tag]))[0]
        except AdapterError as exc:
            if is_fatal(exc):
                raise
            return exc

    for tag, result in zip(todo, calls.map(work, todo)):
        vector, reason = checked_vector(result, embedder.dimension)
        if vector is None:
            out.problems.append(Problem("tag", tag, f"query text not embedded: {reason}"))
            continue
        out.vectors[tag] = vector
        out.embedded_now += 1
        cache.add_text(tag, prefix, vector)
    return out
