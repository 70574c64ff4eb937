"""The offline local model, judged with image queries on generated colour/brightness images."""

from __future__ import annotations

import numpy as np
import pytest

from mmdm.adapters.evaluation import evaluate_embedding, write_synthetic_set
from mmdm.adapters.models import LocalImageEmbedder

from .scripted import ScriptedEmbedder


@pytest.fixture(scope="module")
def synthetic_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    made = write_synthetic_set(root, per_hue=13, seed=0)  # 104 images, 8 hues + dark/bright
    assert made == {"images": 104, "tags": 10}
    return root


def _chance(result) -> float:
    """The mean precision a random ranking would get: each tag's share of the corpus."""
    return float(np.mean([r.score.n_gt / (result.images_ranked - len(r.exemplars))
                          for r in result.tags]))


def test_local_model_sees_colour_and_brightness(synthetic_set):
    result = evaluate_embedding(synthetic_set, LocalImageEmbedder())

    assert result.queries == "image" and result.problems == []
    # hues: 13 images - 3 exemplars = 10 (k <= 10 counted); dark 56 - 3, bright 48 - 3
    assert result.counts == {1: 10, 5: 10, 10: 10, 50: 1, 100: 0}
    for report in result.tags:
        assert len(report.exemplars) == 3
        assert not set(report.exemplars) & (set(report.preds) | set(report.gts))
    chance = _chance(result)
    assert chance < 0.2
    assert result.precision[1] >= 0.6
    assert result.precision[5] >= 2 * chance and result.precision[10] >= 2 * chance


def test_vectors_that_ignore_the_pixels_score_near_chance(synthetic_set):
    """The control: the same flow with random vectors stays far below the local model."""
    rng = np.random.default_rng(3)
    files = sorted((synthetic_set / "images").iterdir())
    blind = ScriptedEmbedder({f.read_bytes(): rng.standard_normal(32) for f in files}, {})
    blind.supports_text = False
    local = evaluate_embedding(synthetic_set, LocalImageEmbedder())
    random = evaluate_embedding(synthetic_set, blind)
    assert random.precision[10] < 2 * _chance(random)
    assert local.precision[5] > random.precision[5] + 0.2
