"""The whole evaluation on sets whose Precision@k is worked out by hand, through the real code
path with a scripted embedder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmdm.adapters.errors import AdapterError, ConfigError, NotFoundError
from mmdm.adapters.evaluation import Calls, evaluate_embedding
from mmdm.adapters.jobs import RetryPolicy
from mmdm.adapters.models.service_errors import ModelServiceError

from . import handworked, seed_script
from .scripted import ScriptedEmbedder, write_dataset, write_image

NO_WAIT = Calls(retry=RetryPolicy(max_attempts=3), sleep=lambda s: None)


def by_tag(result):
    return {report.tag: report for report in result.tags}


def test_handworked_set(tmp_path):
    embedder, files = handworked.build(tmp_path)
    result = evaluate_embedding(tmp_path, embedder, prefix=handworked.PREFIX, calls=NO_WAIT)

    # Per tag (n = ground truth after leaving out images without a vector):
    #   sky  n=120 (60 images, tag written twice): P@1,5,10,50 = 1, P@100 = 60/100
    #   red  n=7   (img001 no file, img002 not embedded): P@1 = 0, P@5 = 2/5; P@7 = 3/7 logged
    #   dog  n=1:  P@1 = 0; P@1 logged
    #   car  n=12: P@1 = 1, P@5 = 3/5, P@10 = 7/10; P@12 = 8/12 logged
    #   snow n=55: P@1 = 0, P@5 = 0, P@10 = 5/10, P@50 = 45/50; P@55 = 50/55 logged
    #   fog: its text failed: reported and left out, not scored on another tag's ranking
    assert result.precision == pytest.approx({
        1: (1 + 0 + 0 + 1 + 0) / 5, 5: (1 + 0.4 + 0.6 + 0) / 4, 10: (1 + 0.7 + 0.5) / 3,
        50: (1 + 0.9) / 2, 100: 0.6})
    assert result.counts == {1: 5, 5: 4, 10: 3, 50: 2, 100: 1}

    tags = by_tag(result)
    assert list(tags) == ["red", "sky", "snow", "dog", "car"]  # order of first appearance
    assert tags["sky"].score.n_gt == 120 and len(set(tags["sky"].gts)) == 60
    assert tags["sky"].score.counted[100] == 0.6 and tags["sky"].score.capped is None
    assert tags["red"].gts == handworked.ids(70, 77)
    assert tags["red"].preds == ["img080", "img070", "img071", "img081", "img082", "img072",
                                 "img083", "img073", "img074", "img000"]
    assert tags["red"].score.counted == {1: 0.0, 5: 0.4}
    assert tags["red"].score.capped == (7, pytest.approx(3 / 7))
    assert tags["dog"].score.capped == (1, 0.0)
    assert tags["car"].score.capped == (12, pytest.approx(8 / 12))
    assert tags["snow"].score.capped == (55, pytest.approx(50 / 55))

    problems = {(p.kind, p.item) for p in result.problems}
    assert problems == {
        ("line", "dataset.jsonl line 13"), ("line", "dataset.jsonl line 14"),
        ("line", "dataset.jsonl line 15"), ("line", "dataset.jsonl line 16"),
        ("line", "dataset.jsonl line 17"), ("line", "dataset.jsonl line 132"),
        ("image", "img001"), ("image", "img002"), ("tag", "fog")}
    assert len(result.problems) == 10  # line 132 holds two bad tags
    assert result.tags_total == 6
    assert (result.images_listed, result.images_ranked) == (124, 122)

    # Any supported extension is found, .jpg first; the prefix goes before every tag.
    sent = set(embedder.images_sent)
    assert {files[k] for k in ("img003", "img004", "img005", "img007", "img006")} <= sent
    assert b"image:img006.png" not in sent
    assert max(embedder.batch_sizes) <= embedder.max_batch
    assert sorted(embedder.texts_sent) == sorted(handworked.PREFIX + t for t in handworked.TAGS)


def test_matches_the_seed_script_on_random_vectors(tmp_path):
    rng = np.random.default_rng(7)
    ids = [f"p{n:03d}" for n in range(140)]
    tags = [f"tag{t}" for t in range(12)]
    lines, tag_dict = [], {}
    for key in ids:
        chosen = [tags[i] for i in rng.choice(12, size=int(rng.integers(0, 4)), replace=True)]
        lines.append({"image_id": f"{key}.jpg", "tags": chosen})
        for tag in chosen:
            tag_dict.setdefault(tag, []).append(key)
    write_dataset(tmp_path, lines)
    image_vectors = {write_image(tmp_path, f"{key}.jpg"): rng.standard_normal(16)
                     for key in ids}
    text_vectors = {tag: rng.standard_normal(16) for tag in tags}
    embedder = ScriptedEmbedder(image_vectors, text_vectors)

    result = evaluate_embedding(tmp_path, embedder, calls=NO_WAIT)

    feats = np.stack([v / np.linalg.norm(v) for v in image_vectors.values()]).astype(np.float32)
    predictions = {tag: seed_script.sorted_predictions(ids, feats, text_vectors[tag]
                                                       / np.linalg.norm(text_vectors[tag]))
                   for tag in tag_dict}
    expected, _ = seed_script.seed_precisions(tag_dict, predictions)
    assert result.precision == pytest.approx(expected)
    assert any(v is not None and 0 < v < 1 for v in expected.values())  # not a trivial case
    for report in result.tags:
        assert report.preds == [p[0] for p in predictions[report.tag][:10]]


def test_the_feature_file_spares_a_second_run_the_model(tmp_path):
    features = tmp_path / "out" / "features.jsonl"
    first_embedder, _ = handworked.build(tmp_path / "set")
    first = evaluate_embedding(tmp_path / "set", first_embedder, prefix=handworked.PREFIX,
                               features=features, calls=NO_WAIT)
    assert first.embedded_now == {"images": 122, "texts": 5}

    lines = [json.loads(line) for line in features.read_text().splitlines()]
    image_lines = [line for line in lines if "image_id" in line]
    text_lines = [line for line in lines if "text" in line]
    assert len(image_lines) == 122 and len(text_lines) == 5
    assert set(image_lines[0]) == {"image_id", "feature", "model"}  # the seed's two, plus model
    assert {line["text"] for line in text_lines} == {"sky", "red", "dog", "car", "snow"}
    assert all(line["prefix"] == handworked.PREFIX for line in text_lines)

    # A re-run sends only what failed before (img002, "fog") and gets the same figures.
    again, files = handworked.build(tmp_path / "set")
    second = evaluate_embedding(tmp_path / "set", again, prefix=handworked.PREFIX,
                                features=features, calls=NO_WAIT)
    assert again.images_sent == [files["img002"]]
    assert again.texts_sent == [handworked.PREFIX + "fog"]
    assert second.from_cache == {"images": 122, "texts": 5}
    assert second.precision == first.precision

    # Another prefix re-embeds the tag texts only.
    other_prefix, _ = handworked.build(tmp_path / "set")
    other_prefix.text_vectors = {"Q: " + t: v for t, v in
                                 zip(handworked.TAGS, np.eye(len(handworked.TAGS) + 1))}
    evaluate_embedding(tmp_path / "set", other_prefix, prefix="Q: ", features=features,
                       calls=NO_WAIT)
    assert len(other_prefix.texts_sent) == 6 and len(other_prefix.images_sent) == 1

    # Another model shares nothing with the first, and a torn last line is skipped.
    with features.open("a") as out:
        out.write('{"image_id": "img000", "feat')
    other_model, _ = handworked.build(tmp_path / "set", model="scripted-v2")
    evaluate_embedding(tmp_path / "set", other_model, prefix=handworked.PREFIX,
                       features=features, calls=NO_WAIT)
    assert len(other_model.images_sent) == 123 and len(other_model.texts_sent) == 6
    assert all(json.loads(line) for line in features.read_text().splitlines()[-3:])


def _image_query_set(tmp_path):
    """Two tags, A and B, four images each; 3-d vectors chosen for readable dot products."""
    vectors = {"a1": (1, 0, 0), "a2": (0.6, 0.8, 0), "a3": (0.8, 0, 0.6), "a4": (0, 0.6, 0.8),
               "b1": (0.6, 0, 0.8), "b2": (0, 1, 0), "b3": (0, 0, 1), "b4": (0.28, 0.96, 0),
               "x9": (0, 1, 0)}  # x9: in images/ only, used as an exemplar
    write_dataset(tmp_path, [{"image_id": f"{key}.jpg", "tags": ["A" if key < "b" else "B"]}
                             for key in vectors if key != "x9"])
    images = {write_image(tmp_path, f"{key}.png"): np.asarray(v, dtype=float)
              for key, v in vectors.items()}
    embedder = ScriptedEmbedder(images, {})
    embedder.supports_text = False
    return embedder


def test_image_queries_use_exemplars_and_never_score_them(tmp_path):
    result = evaluate_embedding(tmp_path, _image_query_set(tmp_path), exemplars_per_tag=2,
                                calls=NO_WAIT)
    tags = by_tag(result)
    # A: query = unit(a1 + a2) = (2, 1, 0)/sqrt 5. Scores without a1, a2: a3 .716, b4 .680,
    #    b1 .537, b2 .447, a4 .268, b3 0. Truth {a3, a4}: P@1 = 1; P@2 = 1/2 logged.
    assert tags["A"].exemplars == ["a1", "a2"]
    assert tags["A"].preds == ["a3", "b4", "b1", "b2", "a4", "b3"]
    assert tags["A"].gts == ["a3", "a4"]
    assert tags["A"].score.counted == {1: 1.0} and tags["A"].score.capped == (2, 0.5)
    # B: query = unit(b1 + b2) = (.6, 1, .8)/sqrt 2. Scores without b1, b2: a4 .877, a2 .820,
    #    b4 .798, a3 .679, b3 .566, a1 .424. Truth {b3, b4}: P@1 = 0; P@2 = 0 logged.
    assert tags["B"].preds == ["a4", "a2", "b4", "a3", "b3", "a1"]
    assert tags["B"].score.counted == {1: 0.0} and tags["B"].score.capped == (2, 0.0)
    assert result.queries == "image"
    assert result.precision[1] == 0.5 and result.counts == {1: 2, 5: 0, 10: 0, 50: 0, 100: 0}


def test_exemplars_file_names_each_tag_s_query_images(tmp_path):
    embedder = _image_query_set(tmp_path)
    (tmp_path / "exemplars.jsonl").write_text(json.dumps({"tag": "B", "image_ids": ["x9.jpg"]})
                                              + "\n")
    result = evaluate_embedding(tmp_path, embedder, calls=NO_WAIT)
    # B's query is x9 = (0, 1, 0): b2 1, b4 .96, a2 .8, a4 .6, then ties at 0 in dataset order.
    # x9 is not in dataset.jsonl, so nothing is left out: truth b1..b4, P@1 = 1; P@4 = 2/4.
    (report,) = result.tags
    assert report.preds[:5] == ["b2", "b4", "a2", "a4", "a1"]
    assert report.score.counted == {1: 1.0} and report.score.capped == (4, 0.5)
    assert [(p.kind, p.item) for p in result.problems] == [("tag", "A")]
    assert "x9" not in report.preds


def test_text_queries_need_a_model_that_embeds_text(tmp_path):
    embedder = _image_query_set(tmp_path)
    with pytest.raises(ConfigError, match="cannot embed text"):
        evaluate_embedding(tmp_path, embedder, queries="text")
    with pytest.raises(NotFoundError, match="dataset.jsonl"):
        evaluate_embedding(tmp_path / "nowhere", embedder)
    write_dataset(tmp_path / "no-images", [{"image_id": "a1", "tags": ["A"]}])
    with pytest.raises(NotFoundError, match="images/"):
        evaluate_embedding(tmp_path / "no-images", embedder)


class _Flaky(ScriptedEmbedder):
    """Whole requests fail with ``errors`` (in order) before the scripted answers."""

    def __init__(self, *args, errors=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.errors = list(errors)

    def embed_images(self, images):
        if self.errors:
            raise self.errors.pop(0)
        return super().embed_images(images)


def _small_set(tmp_path, **kwargs):
    write_dataset(tmp_path, [{"image_id": f"i{n}", "tags": ["t"]} for n in range(3)])
    images = {write_image(tmp_path, f"i{n}.jpg"): np.eye(3)[n] for n in range(3)}
    return _Flaky(images, {"t": np.ones(3)}, max_batch=1, **kwargs)


def test_throttling_is_retried_and_a_lost_batch_is_reported_per_image(tmp_path):
    throttled = ModelServiceError("throttled", status=429)
    embedder = _small_set(tmp_path, errors=[throttled, throttled, throttled, throttled])
    calls = Calls(retry=RetryPolicy(max_attempts=3), sleep=lambda s: None, max_concurrency=1)
    result = evaluate_embedding(tmp_path, embedder, calls=calls)
    # i0's request failed three times (given up, reported); i1's once, then succeeded.
    assert [(p.kind, p.item) for p in result.problems] == [("image", "i0")]
    assert "throttled" in result.problems[0].reason
    assert result.images_ranked == 2 and result.counts[1] == 1


def test_a_rejected_key_stops_the_run(tmp_path):
    embedder = _small_set(tmp_path, errors=[ModelServiceError("bad key", status=401)])
    with pytest.raises(AdapterError, match="bad key"):
        evaluate_embedding(tmp_path, embedder, calls=NO_WAIT)
