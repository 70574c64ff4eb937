"""The query vector of each tag, and the ranking of the corpus it produces.

Text queries are the embedding of ``prefix + tag`` (the seed's procedure). Image queries are
for image-only models such as the offline local one, which cannot embed text: a tag's query is
the normalised mean of the vectors of a few exemplar images of that tag, taken from
``exemplars.jsonl`` when the set has one, else the first ``per_tag`` distinct ground-truth
images (in dataset order) that have a vector. Exemplars are removed from that tag's ranking
and from its ground truth (every occurrence), so no image is scored on its own query.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .result import Problem

DEFAULT_EXEMPLARS_PER_TAG = 3
# Queries scored per matrix product: bounds memory to this many rows of corpus-size scores.
QUERY_CHUNK = 256


@dataclass(frozen=True)
class Query:
    tag: str
    vector: np.ndarray  # unit length
    exemplars: tuple[str, ...] = ()  # image ids left out of this tag's ranking and truth


def exemplar_queries(ground_truth: dict[str, list[str]], vectors: dict[str, np.ndarray],
                     exemplars: dict[str, list[str]] | None, per_tag: int,
                     problems: list[Problem]) -> list[Query]:
    """One query per tag that has at least one exemplar with a vector; others are problems."""
    if per_tag < 1:
        raise ValueError(f"need at least one exemplar per tag, not {per_tag}")
    queries = []
    for tag, truth in ground_truth.items():
        if exemplars is not None:
            if tag not in exemplars:
                problems.append(Problem("tag", tag, "not in exemplars.jsonl: no query"))
                continue
            chosen = [key for key in exemplars[tag] if key in vectors]
            if not chosen:
                problems.append(Problem("tag", tag, "none of its exemplar images has a vector"))
                continue
        else:
            chosen = list(dict.fromkeys(key for key in truth if key in vectors))[:per_tag]
            if not chosen:
                problems.append(Problem("tag", tag, "none of its images has a vector"))
                continue
        mean = np.mean([vectors[key] for key in chosen], axis=0)
        norm = float(np.linalg.norm(mean))
        if norm == 0.0:
            problems.append(Problem("tag", tag, "its exemplar vectors cancel out"))
            continue
        queries.append(Query(tag, (mean / norm).astype(np.float32), tuple(chosen)))
    return queries


def rankings(queries: Sequence[Query], corpus: Sequence[str], matrix: np.ndarray,
             depth: int) -> Iterator[tuple[Query, list[str]]]:
    """Each query's top ``depth`` corpus ids by dot product, best first, its exemplars left
    out. Ties keep dataset order, as the seed's stable sort does."""
    for start in range(0, len(queries), QUERY_CHUNK):
        chunk = queries[start:start + QUERY_CHUNK]
        scores = np.stack([q.vector for q in chunk]) @ matrix.T  # (queries, corpus)
        for query, row in zip(chunk, scores):
            order = np.argsort(-row, kind="stable")[:depth + len(query.exemplars)]
            excluded = set(query.exemplars)
            ranked = [corpus[i] for i in order if corpus[i] not in excluded]
            yield query, ranked[:depth]
