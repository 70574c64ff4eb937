"""The metric itself, against hand-worked values and against the seed's loop."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmdm.adapters.evaluation import K_VALUES, mean_precision, precision_at_k, score_tag
from mmdm.adapters.evaluation.queries import Query, rankings

from . import seed_script


def test_denominator_is_k_and_intersection_is_a_set():
    ranking = ["a", "b", "c"]
    assert precision_at_k(ranking, ["a", "a", "c"], 2) == 0.5  # {a, b} & {a, c}
    assert precision_at_k(ranking, ["a", "b", "c"], 5) == 3 / 5  # ranking shorter than k


def test_short_ground_truth_stops_the_walk_and_is_only_logged():
    ranking = ["x", "g1", "g2", "y", "g3", "z", "g4"]
    score = score_tag(ranking, ["g1", "g2", "g3", "g4", "g5", "g6", "g7"])
    # n=7: k=1 (0/1) and k=5 (3/5: g1 g2 g3) are counted; k=10 > 7 gives P@7 = 4/7, logged only
    assert score.counted == {1: 0.0, 5: 0.6}
    assert score.capped == (7, pytest.approx(4 / 7))


def test_duplicate_ground_truth_entries_count_in_n_but_not_in_the_hits():
    ranking = [f"i{n}" for n in range(200)]
    truth = [f"i{n}" for n in range(60)] * 2  # every image carries the tag twice: n = 120
    score = score_tag(ranking, truth)
    assert score.n_gt == 120
    assert score.counted == {1: 1.0, 5: 1.0, 10: 1.0, 50: 1.0, 100: 0.6}
    assert score.capped is None


def test_ground_truth_equal_to_k_is_counted_then_logged_at_the_next_k():
    score = score_tag(["a", "b", "c", "d", "e", "f"], ["a", "f", "q", "r", "s"])
    assert score.counted == {1: 1.0, 5: 0.2}
    assert score.capped == (5, 0.2)


def test_means_cover_different_tags_per_k():
    long = score_tag([f"i{n}" for n in range(100)], [f"i{n}" for n in range(0, 100, 2)])
    short = score_tag(["a", "b"], ["b"])
    means, counts = mean_precision([long, short])
    assert counts == {1: 2, 5: 1, 10: 1, 50: 1, 100: 0}
    assert means == {1: 0.5, 5: 0.6, 10: 0.5, 50: 0.5, 100: None}


def test_a_tag_without_ground_truth_cannot_be_scored():
    with pytest.raises(ValueError):
        score_tag(["a"], [])


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_matches_the_seed_loop(data):
    n_images = data.draw(st.integers(1, 130))
    ids = [f"img{i}" for i in range(n_images)]
    tags = {}
    for t in range(data.draw(st.integers(1, 5))):
        # with replacement: a tag written twice on an image appears twice
        tags[f"t{t}"] = data.draw(st.lists(st.sampled_from(ids), min_size=1, max_size=140))
    predictions = {}
    for tag in tags:
        scores = data.draw(st.lists(st.integers(0, 9), min_size=n_images, max_size=n_images))
        predictions[tag] = sorted(zip(ids, scores), key=lambda x: x[1], reverse=True)
    expected, log = seed_script.seed_precisions(tags, predictions)

    scores = [score_tag([p[0] for p in predictions[tag]], truth) for tag, truth in tags.items()]
    means, _ = mean_precision(scores)
    assert means == pytest.approx(expected)
    for tag, score in zip(tags, scores):
        last = [(k, p) for t, _, k, p in log if t == tag][-1]  # the capped line, if any
        if score.capped:
            assert score.capped == (last[0], pytest.approx(last[1]))
        else:
            assert score.n_gt >= K_VALUES[-1] and last[0] == K_VALUES[-1]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-3, 3), min_size=1, max_size=60))
def test_ranking_breaks_ties_in_dataset_order_like_the_seed(values):
    corpus = [f"img{i}" for i in range(len(values))]
    matrix = np.asarray(values, dtype=np.float32).reshape(-1, 1)
    (_, ranked), = rankings([Query("t", np.ones(1, dtype=np.float32))], corpus, matrix, 100)
    seed = seed_script.sorted_predictions(corpus, matrix, [1.0])
    assert ranked == [image_id for image_id, _ in seed][:100]


def test_ranking_leaves_a_query_s_exemplars_out():
    corpus = ["a", "b", "c", "d"]
    matrix = np.asarray([[4.0], [3.0], [2.0], [1.0]], dtype=np.float32)
    (_, ranked), = rankings([Query("t", np.ones(1, dtype=np.float32), ("a", "c"))], corpus,
                            matrix, 3)
    assert ranked == ["b", "d"]
