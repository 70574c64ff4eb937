"""EasGmeEmbedder against the fake EAS GME service."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from mmdm.adapters.errors import AdapterError, ConfigError
from mmdm.adapters.models.base import ImageInput, l2_normalise
from mmdm.adapters.models.eas import EasGmeEmbedder
from tests.fakes.fake_eas import FakeEas, HttpFailure
from tests.fakes.fake_dashscope import fake_vector
from tests.models.images import encode, scene


def embedder_for(fake: FakeEas, **kwargs) -> EasGmeEmbedder:
    return EasGmeEmbedder(endpoint=fake.endpoint, token=fake.token, **kwargs)


def images(n: int) -> list[ImageInput]:
    return [encode(scene(seed, size=(48, 48)), "JPEG", uri=f"mem://{seed}.jpg")
            for seed in range(n)]


def test_request_is_the_documented_format(fake_eas: FakeEas) -> None:
    image = images(1)[0]
    [vector] = embedder_for(fake_eas).embed_images([image])
    [request] = fake_eas.requests
    assert request.path == "/api/predict/gme_2b"
    assert request.headers["authorization"] == fake_eas.token  # raw token, no "Bearer"
    assert request.body == {"input": {"contents": [
        {"image": "data:image/jpeg;base64," + base64.b64encode(image.data).decode()}]}}
    assert vector.dtype == np.float32 and vector.shape == (1536,)
    np.testing.assert_allclose(vector, l2_normalise(fake_vector(image.data, 1536)),
                               rtol=1e-5, atol=1e-6)


def test_batches_follow_max_batch(fake_eas: FakeEas) -> None:
    inputs = images(5)
    results = embedder_for(fake_eas, max_batch=2).embed_images(inputs)
    assert [len(r.body["input"]["contents"]) for r in fake_eas.requests] == [2, 2, 1]
    for got, image in zip(results, inputs):
        np.testing.assert_allclose(got, l2_normalise(fake_vector(image.data, 1536)),
                                   rtol=1e-5, atol=1e-6)


def test_partial_success_returns_errors_for_the_failed_items(fake_eas: FakeEas) -> None:
    inputs = images(4)
    fake_eas.failing_images.update({inputs[1].data, inputs[3].data})
    results = embedder_for(fake_eas).embed_images(inputs)
    assert len(fake_eas.requests) == 1
    for i in (0, 2):
        np.testing.assert_allclose(results[i], l2_normalise(fake_vector(inputs[i].data, 1536)),
                                   rtol=1e-5, atol=1e-6)
    for i in (1, 3):
        assert isinstance(results[i], AdapterError) and results[i].is_input_error
        assert f"item {i} failed" in str(results[i]) and "cannot decode image" in str(results[i])


def test_a_shuffled_partial_reply_is_placed_by_index(fake_eas: FakeEas) -> None:
    """Vectors come back out of order and with gaps: only ``index`` says whose each one is."""
    inputs = images(6)
    fake_eas.failing_images.add(inputs[2].data)
    results = embedder_for(fake_eas).embed_images(inputs)
    [order] = fake_eas.answer_orders
    assert order != [0, 1, 3, 4, 5] and sorted(order) == [0, 1, 3, 4, 5]
    assert isinstance(results[2], AdapterError) and "item 2 failed" in str(results[2])
    for i in (0, 1, 3, 4, 5):
        np.testing.assert_allclose(results[i], l2_normalise(fake_vector(inputs[i].data, 1536)),
                                   rtol=1e-5, atol=1e-6)


def test_failure_of_every_item_is_reported_per_item(fake_eas: FakeEas) -> None:
    inputs = images(2)
    fake_eas.failing_images.update(image.data for image in inputs)
    results = embedder_for(fake_eas).embed_images(inputs)
    assert all(isinstance(r, AdapterError) and r.is_input_error for r in results)
    assert "refused the request" in str(results[0])


def test_texts(fake_eas: FakeEas) -> None:
    vectors = embedder_for(fake_eas).embed_texts(["Find an image of a tunnel.", "雨天"])
    assert fake_eas.requests[0].body == {"input": {"contents": [
        {"text": "Find an image of a tunnel."}, {"text": "雨天"}]}}
    np.testing.assert_allclose(vectors[1], l2_normalise(fake_vector("雨天", 1536)),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("failure, retry_after", [
    (HttpFailure(429, "Too Many Requests", "2"), 2.0), (HttpFailure(503, "busy"), None),
    (HttpFailure(500, "boom"), None)])
def test_throttling_and_server_errors_are_retriable(fake_eas: FakeEas, failure,
                                                    retry_after) -> None:
    fake_eas.fail_next(failure)
    with pytest.raises(AdapterError) as info:
        embedder_for(fake_eas).embed_images(images(1))
    assert info.value.retriable and info.value.retry_after == retry_after
    assert f"HTTP {failure.status}" in str(info.value)


def test_timeout_is_retriable() -> None:
    fake = FakeEas(latency=1.0).start()
    try:
        with pytest.raises(AdapterError) as info:
            embedder_for(fake, timeout=0.2).embed_texts(["slow"])
        assert info.value.retriable and "timed out" in str(info.value)
    finally:
        fake.stop()


def test_wrong_token_is_an_input_error_and_the_token_stays_secret(fake_eas: FakeEas) -> None:
    embedder = EasGmeEmbedder(endpoint=fake_eas.endpoint, token="secret-token-xyz")
    with pytest.raises(AdapterError) as info:
        embedder.embed_images(images(1))
    assert info.value.is_input_error and not info.value.retriable
    assert "HTTP 401" in str(info.value)
    assert "secret-token-xyz" not in str(info.value) + repr(embedder)


def test_model_sets_the_dimension_and_mismatch_is_reported(fake_eas: FakeEas) -> None:
    embedder = embedder_for(fake_eas, model="gme-Qwen2-VL-7B-Instruct")
    assert embedder.dimension == 3584
    with pytest.raises(AdapterError, match="returned 1536 values, configured for 3584"):
        embedder.embed_texts(["x"])


def test_missing_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        EasGmeEmbedder(endpoint="", token="t")
    with pytest.raises(ConfigError):
        EasGmeEmbedder(endpoint="http://eas", token="")
