"""What an evaluation returns: the Precision@k table, a per-tag report, and what went wrong."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .precision import TagScore

REPORT_TOP = 10  # predictions kept per tag in the report, as the seed writes them


@dataclass(frozen=True)
class Problem:
    """One item the run had to leave out; the run itself goes on.

    ``kind`` is ``line`` (a dataset or exemplar line), ``image`` (missing, unreadable or not
    embedded) or ``tag`` (its query could not be made, or nothing is left to score).
    """

    kind: str
    item: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kind} {self.item}: {self.reason}"


@dataclass(frozen=True)
class TagReport:
    """The seed's per-tag record (``tag``, ``gts``, ``preds``) plus the figures behind it."""

    tag: str
    gts: list[str]  # ground truth as scored: one entry per occurrence
    preds: list[str]  # the top REPORT_TOP of the ranking
    score: TagScore
    exemplars: list[str] = field(default_factory=list)  # image-query mode: the query's images

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tag": self.tag, "gts": self.gts, "preds": self.preds, "n_gt": self.score.n_gt,
            "precision": {str(k): v for k, v in self.score.counted.items()},
            "capped": ({"k": self.score.capped[0], "precision": self.score.capped[1]}
                       if self.score.capped else None),
        }
        if self.exemplars:
            out["exemplars"] = self.exemplars
        return out


@dataclass
class EvaluationResult:
    model: str
    dimension: int
    queries: str  # "text" or "image"
    prefix: str
    ks: tuple[int, ...]
    precision: dict[int, float | None]  # k -> mean over the tags counted for k
    counts: dict[int, int]  # k -> how many tags that mean covers
    tags: list[TagReport]
    problems: list[Problem]
    tags_total: int  # distinct tags in the dataset
    images_listed: int  # distinct images in the dataset
    images_ranked: int  # images with a vector: the corpus every tag is ranked over
    embedded_now: dict[str, int]  # "images" / "texts" -> model calls' worth made by this run
    from_cache: dict[str, int]  # "images" / "texts" -> vectors read from the feature file

    def to_dict(self) -> dict[str, Any]:
        """Small JSON for XCom and scripts: the table and the counts, never vectors."""
        return {
            "model": self.model, "dimension": self.dimension, "queries": self.queries,
            "prefix": self.prefix,
            "precision": {str(k): self.precision[k] for k in self.ks},
            "tags_counted": {str(k): self.counts[k] for k in self.ks},
            "tags": {"total": self.tags_total, "scored": len(self.tags)},
            "images": {"listed": self.images_listed, "ranked": self.images_ranked},
            "embedded_now": dict(self.embedded_now),
            "from_cache": dict(self.from_cache),
            "problems": len(self.problems),
        }

    def table(self) -> str:
        """The seed's ``Precision@k 0.1234`` lines, with how many tags each mean covers."""
        how = (f"text queries, prefix {self.prefix!r}" if self.queries == "text"
               else "image queries (mean of exemplar images)")
        lines = [f"{self.model} ({self.dimension} dims), {how}"]
        for k in self.ks:
            value = self.precision[k]
            shown = f"{value:.4f}" if value is not None else "   n/a"
            count = self.counts[k]
            lines.append(f"Precision@{k:<4d} {shown}  ({count} tag{'' if count == 1 else 's'})")
        lines.append(f"tags scored {len(self.tags)} of {self.tags_total}; images ranked "
                     f"{self.images_ranked} of {self.images_listed}; problems "
                     f"{len(self.problems)}")
        return "\n".join(lines)

    def write_report(self, path: str | Path) -> None:
        """One JSON object per line and tag (the seed writes the same fields indented)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", encoding="utf-8") as out:
            for report in self.tags:
                out.write(json.dumps(report.to_dict(), ensure_ascii=False) + "\n")
