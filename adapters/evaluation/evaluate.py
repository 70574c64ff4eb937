"""Judge an embedding model on a labelled set with Precision@k, as PAI's evaluation does.

The corpus is every distinct image of ``dataset.jsonl`` that has a file and a vector; each tag
ranks that corpus and is scored against its ground truth restricted to the same corpus. The
seed crashes on a missing file and keeps an image it failed to embed in the ground truth,
where no model can retrieve it; here both are reported and left out of the ground truth, so
the figures judge the ranking the model produced (the report's problems say what is missing).
A tag whose query cannot be made is reported and left out, never scored on another tag's
ranking as the seed does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..models.base import Embedder
from ..progress import ProgressCallback
from .embedding import Calls, embed_images, embed_tag_texts
from .feature_cache import FeatureCache, model_key
from .labelled_set import IMAGES_DIR, read_exemplars, read_labelled_set
from .precision import K_VALUES, mean_precision, score_tag
from .queries import DEFAULT_EXEMPLARS_PER_TAG, Query, exemplar_queries, rankings
from .result import REPORT_TOP, EvaluationResult, Problem, TagReport

log = logging.getLogger(__name__)
QUERY_MODES = ("auto", "text", "image")


def evaluate_embedding(
    data_dir: str | Path,
    embedder: Embedder,
    *,
    prefix: str = "",
    features: str | Path | None = None,
    queries: str = "auto",
    exemplars_per_tag: int = DEFAULT_EXEMPLARS_PER_TAG,
    ks: Sequence[int] = K_VALUES,
    calls: Calls | None = None,
    cache_key: str | None = None,
    progress: ProgressCallback | None = None,
) -> EvaluationResult:
    """Precision@k of ``embedder`` on the labelled set in ``data_dir``.

    :param prefix: text sent before each tag (an instruction such as GME's); text queries only.
    :param features: the feature file to read and extend (see ``feature_cache``); None keeps
        vectors in memory only.
    :param queries: ``text`` (embed the tag text), ``image`` (mean of exemplar images, see
        ``queries``) or ``auto`` (text when the model can embed text, else image).
    :param exemplars_per_tag: image queries without ``exemplars.jsonl``: how many of a tag's
        first ground-truth images make its query.
    :param calls: retries, sleep and concurrency of the model calls.
    :param cache_key: the model name the feature file records; default ``model_key(embedder)``.

    Raises:
        NotFoundError: no ``dataset.jsonl`` or ``images/`` in ``data_dir``.
        ConfigError: an unknown query mode, or text queries on an image-only model.
        AdapterError: a failure every call would repeat (rejected key, wrong endpoint).
    """
    mode = _query_mode(queries, embedder)
    ks = tuple(ks)
    if not ks or list(ks) != sorted(set(ks)) or ks[0] < 1:  # checked before paying for vectors
        raise ConfigError(f"ks must be distinct positive numbers in ascending order, not {ks}")
    if mode == "image" and exemplars_per_tag < 1:
        raise ConfigError(f"image queries need at least one exemplar per tag, not "
                          f"{exemplars_per_tag}")
    calls = calls or Calls()
    labelled = read_labelled_set(data_dir)
    problems: list[Problem] = list(labelled.problems)
    exemplars = read_exemplars(labelled.root, problems) if mode == "image" else None

    with FeatureCache(features, cache_key or model_key(embedder), embedder.dimension) as cache:
        wanted = dict.fromkeys(labelled.image_ids)
        for ids in (exemplars or {}).values():  # exemplars need vectors even outside the set
            wanted.update(dict.fromkeys(ids))
        images = embed_images(embedder, labelled.root / IMAGES_DIR, list(wanted), cache,
                              calls, progress)
        problems += images.problems
        if mode == "text":
            texts = embed_tag_texts(embedder, list(labelled.ground_truth), prefix, cache, calls)
            problems += texts.problems
            built = [Query(tag, texts.vectors[tag]) for tag in labelled.ground_truth
                     if tag in texts.vectors]
            text_counts = (texts.embedded_now, texts.from_cache)
        else:
            built = exemplar_queries(labelled.ground_truth, images.vectors, exemplars,
                                     exemplars_per_tag, problems)
            text_counts = (0, 0)

    corpus = [key for key in labelled.image_ids if key in images.vectors]
    reports = _score(built, corpus, images.vectors, labelled.ground_truth, ks, problems)
    means, counts = mean_precision((r.score for r in reports), ks)
    for problem in problems:  # the caller shows them; this is for library users' logs
        log.debug("left out: %s", problem)
    return EvaluationResult(
        model=embedder.model, dimension=embedder.dimension, queries=mode,
        prefix=prefix if mode == "text" else "", ks=ks, precision=means, counts=counts,
        tags=reports, problems=problems, tags_total=len(labelled.ground_truth),
        images_listed=len(labelled.image_ids), images_ranked=len(corpus),
        embedded_now={"images": images.embedded_now, "texts": text_counts[0]},
        from_cache={"images": images.from_cache, "texts": text_counts[1]},
    )


def _query_mode(queries: str, embedder: Embedder) -> str:
    if queries not in QUERY_MODES:
        raise ConfigError(f"queries must be one of {', '.join(QUERY_MODES)}, not {queries!r}")
    can_text = bool(getattr(embedder, "supports_text", True))
    if queries == "auto":
        return "text" if can_text else "image"
    if queries == "text" and not can_text:
        raise ConfigError(f"{embedder.model} cannot embed text; use image queries (exemplar "
                          "images per tag) to evaluate it")
    return queries


def _score(queries: list[Query], corpus: list[str], vectors: dict[str, np.ndarray],
           ground_truth: dict[str, list[str]], ks: Sequence[int],
           problems: list[Problem]) -> list[TagReport]:
    """Rank and score each query; a tag left with no ground truth is a problem, not a zero."""
    if not corpus or not queries:
        return []
    matrix = np.stack([vectors[key] for key in corpus])
    in_corpus = set(corpus)
    reports = []
    for query, ranking in rankings(queries, corpus, matrix, max(max(ks), REPORT_TOP)):
        excluded = set(query.exemplars)
        truth = [key for key in ground_truth[query.tag]
                 if key in in_corpus and key not in excluded]
        if not truth:
            why = "after its exemplars" if excluded else "with a vector"
            problems.append(Problem("tag", query.tag, f"no ground-truth image left {why}"))
            continue
        score = score_tag(ranking, truth, ks)
        for k, value in score.counted.items():
            log.debug("Tag %s, Len(GT) %d, Precision@%d %.4f", query.tag, score.n_gt, k, value)
        if score.capped:
            log.info("Tag %s, Len(GT) %d, Precision@%d %.4f (capped, not averaged)",
                     query.tag, score.n_gt, *score.capped)
        reports.append(TagReport(query.tag, truth, ranking[:REPORT_TOP], score,
                                 list(query.exemplars)))
    return reports
