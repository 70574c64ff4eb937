"""The evaluation against the fake DashScope server, through the real dashscope SDK."""

from __future__ import annotations

import pytest

from mmdm.adapters.errors import AdapterError
from mmdm.adapters.evaluation import Calls, evaluate_embedding
from mmdm.adapters.jobs import RetryPolicy
from mmdm.adapters.models.dashscope import DashScopeEmbedder
from tests.fakes.fake_dashscope import EMBEDDING_PATH, THROTTLED, FakeDashScope

from .dashscope_set import PREFIX, TAGS, build_set, expected_precision

NO_WAIT = Calls(retry=RetryPolicy(max_attempts=3), sleep=lambda s: None)


def _embedder(fake: FakeDashScope) -> DashScopeEmbedder:
    return DashScopeEmbedder(model="multimodal-embedding-v1", api_key=fake.api_key,
                             base_url=fake.base_url)


def test_dashscope_through_the_sdk(tmp_path, fake_dashscope: FakeDashScope):
    files = build_set(tmp_path / "set")
    features = tmp_path / "features.jsonl"
    fake_dashscope.fail_next(THROTTLED)  # one throttled request, retried

    result = evaluate_embedding(tmp_path / "set", _embedder(fake_dashscope), prefix=PREFIX,
                                features=features, calls=NO_WAIT)

    assert result.problems == []
    assert result.precision == pytest.approx(expected_precision(files))
    assert result.counts == {1: 5, 5: 1, 10: 0, 50: 0, 100: 0}
    # multimodal-embedding-v1 takes one image per request: 12 images + 5 tags + 1 retry
    assert fake_dashscope.calls["embedding"] == 18
    bodies = [r.body for r in fake_dashscope.requests if r.path == EMBEDDING_PATH]
    texts = sorted(item["text"] for b in bodies for item in b["input"]["contents"]
                   if "text" in item)
    assert texts == sorted(PREFIX + tag for tag in TAGS)
    assert all(item["image"].startswith("data:image/png;base64,")
               for b in bodies for item in b["input"]["contents"] if "image" in item)
    assert not [r for r in fake_dashscope.requests if r.method == "GET"]  # nothing uploaded

    again = evaluate_embedding(tmp_path / "set", _embedder(fake_dashscope), prefix=PREFIX,
                               features=features, calls=NO_WAIT)
    assert fake_dashscope.calls["embedding"] == 18  # all from the feature file
    assert again.precision == result.precision


def test_an_image_the_service_refuses_is_reported_and_left_out(tmp_path, fake_dashscope):
    files = build_set(tmp_path)
    fake_dashscope.rejected_images.add(files["im06"])  # moderation refuses it: HTTP 400

    result = evaluate_embedding(tmp_path, _embedder(fake_dashscope), prefix=PREFIX,
                                calls=NO_WAIT)

    assert [(p.kind, p.item) for p in result.problems] == [("image", "im06")]
    assert "DataInspectionFailed" in result.problems[0].reason
    assert result.images_ranked == 11
    assert result.precision == pytest.approx(
        expected_precision(files, keep=lambda key: key != "im06"))


def test_a_wrong_key_stops_the_run(tmp_path, fake_dashscope):
    build_set(tmp_path)
    embedder = DashScopeEmbedder(model="multimodal-embedding-v1", api_key="sk-wrong",
                                 base_url=fake_dashscope.base_url)
    with pytest.raises(AdapterError, match="InvalidApiKey"):
        evaluate_embedding(tmp_path, embedder, calls=Calls(max_concurrency=1))
    assert fake_dashscope.calls["embedding"] == 1  # not one failure per image
