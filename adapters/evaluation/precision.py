"""Precision@k exactly as PAI's embedding-evaluation script computes it (pai-compat §8.3).

Two rules of that script are easy to get wrong and are kept on purpose:

* the denominator is always ``k``, and the intersection is of *sets*, while a tag's ground-truth
  count ``n_t`` counts list entries (a tag written twice on one image counts twice);
* per tag, k walks 1, 5, 10, 50, 100 in order; at the first ``k > n_t`` the script computes
  P@n_t, only logs it, and stops, so every column averages a different set of tags.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

K_VALUES: tuple[int, ...] = (1, 5, 10, 50, 100)


def precision_at_k(ranking: Sequence[str], ground_truth: Iterable[str], k: int) -> float:
    """``|set(ranking[:k]) ∩ set(ground_truth)| / k``; the denominator is k even when the
    ranking is shorter, as in the seed."""
    if k <= 0:
        raise ValueError(f"k must be positive, not {k}")
    return len(set(ranking[:k]) & set(ground_truth)) / k


@dataclass(frozen=True)
class TagScore:
    """One tag's figures: ``counted`` go into the averages, ``capped`` is only reported."""

    n_gt: int  # list entries, duplicates included
    counted: dict[int, float]  # k -> P@k for every k <= n_gt (a prefix of the k walk)
    capped: tuple[int, float] | None  # (n_gt, P@n_gt) at the first k > n_gt; None if none


def score_tag(ranking: Sequence[str], ground_truth: Sequence[str],
              ks: Sequence[int] = K_VALUES) -> TagScore:
    """Walk ``ks`` in ascending order the way the seed's loop does.

    Raises:
        ValueError: an empty ground truth (the seed would divide by zero), or ks not ascending.
    """
    if not ground_truth:
        raise ValueError("a tag needs at least one ground-truth image to be scored")
    if list(ks) != sorted(set(ks)):
        raise ValueError(f"ks must be distinct and ascending, not {list(ks)}")
    n_gt = len(ground_truth)
    counted: dict[int, float] = {}
    for k in ks:
        if k > n_gt:
            return TagScore(n_gt, counted, (n_gt, precision_at_k(ranking, ground_truth, n_gt)))
        counted[k] = precision_at_k(ranking, ground_truth, k)
    return TagScore(n_gt, counted, None)


def mean_precision(scores: Iterable[TagScore], ks: Sequence[int] = K_VALUES
                   ) -> tuple[dict[int, float | None], dict[int, int]]:
    """Per k: the mean of the counted P@k and how many tags it covers (``None`` for none,
    where the seed would print ``nan``)."""
    totals = {k: 0.0 for k in ks}
    counts = {k: 0 for k in ks}
    for score in scores:
        for k, value in score.counted.items():
            totals[k] += value
            counts[k] += 1
    means = {k: (totals[k] / counts[k] if counts[k] else None) for k in ks}
    return means, counts
