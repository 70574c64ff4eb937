"""DashScopeTagger through the real dashscope SDK against the fake DashScope server."""

from __future__ import annotations

import base64
import json
import socket

import pytest

from mmdm.adapters.errors import AdapterError
from mmdm.adapters.models.base import ImageInput, TagParseError
from mmdm.adapters.models.dashscope import DashScopeTagger, normalise_base_url
from tests.fakes.fake_dashscope import (
    CHAT_PATH,
    INTERNAL_ERROR,
    THROTTLED,
    ChatTurn,
    Failure,
    FakeDashScope,
    chosen_tags,
    fenced,
    in_prose,
)
from tests.models.driving_tags import DRIVING_DEFINITION, DRIVING_DEFINITION_ZH, DRIVING_TAGS
from tests.models.images import encode, flat, scene


def tagger_for(fake: FakeDashScope, **kwargs) -> DashScopeTagger:
    return DashScopeTagger(api_key=fake.api_key, base_url=fake.base_url, **kwargs)


def chat_requests(fake: FakeDashScope):
    return [r for r in fake.requests if r.path == CHAT_PATH]


def test_driving_definition_round_trips(fake_dashscope: FakeDashScope) -> None:
    tagger = tagger_for(fake_dashscope)
    seen: set[str] = set()
    for seed in range(8):
        image = encode(scene(seed), uri=f"mem://{seed}.png")
        result = tagger.tag(image, DRIVING_DEFINITION)
        expected = chosen_tags(image.data, list(DRIVING_TAGS))
        assert result.tags == expected  # exactly as defined, in definition order
        assert result.dropped == [] and result.description is None
        seen.update(result.tags)
    assert len(seen) > 10  # the fake really varies its answers
    assert fake_dashscope.calls["chat"] == 8


def test_request_is_the_documented_shape(fake_dashscope: FakeDashScope) -> None:
    image = encode(flat((10, 20, 30)))
    DashScopeTagger(api_key=fake_dashscope.api_key, base_url=fake_dashscope.base_url,
                    model="qwen-vl-plus", workspace="ws-123").tag(image, DRIVING_DEFINITION)
    [request] = chat_requests(fake_dashscope)
    assert request.headers["authorization"] == f"Bearer {fake_dashscope.api_key}"
    assert request.headers["x-dashscope-workspace"] == "ws-123"
    body = request.body
    assert body["model"] == "qwen-vl-plus"
    assert body["parameters"]["result_format"] == "message"
    system, user = body["input"]["messages"]
    assert system["role"] == "system"
    assert system["content"][0]["text"].startswith(DRIVING_DEFINITION.guide_prompt)
    assert user["role"] == "user"
    assert user["content"][0]["image"] == (
        "data:image/png;base64," + base64.b64encode(image.data).decode())
    assert "Reflective tape" in user["content"][1]["text"]
    # Inline data only: the SDK's upload handshake must never be attempted.
    assert not [r for r in fake_dashscope.requests if "uploads" in r.path]


def test_signed_url_is_sent_instead_of_the_bytes(fake_dashscope: FakeDashScope) -> None:
    url = "https://bucket.oss-cn-hangzhou.aliyuncs.com/a.jpg?Signature=abc"
    image = ImageInput("oss://bucket/a.jpg", b"unused", "image/jpeg", signed_url=url)
    result = tagger_for(fake_dashscope).tag(image, DRIVING_DEFINITION)
    [request] = chat_requests(fake_dashscope)
    assert request.body["input"]["messages"][1]["content"][0]["image"] == url
    assert result.tags == chosen_tags(url, list(DRIVING_TAGS))


def test_chinese_answers_fenced_with_full_width_punctuation(
        fake_dashscope: FakeDashScope) -> None:
    fake_dashscope.answer = lambda turn: fenced(
        '["隧道", "人行 横道", "车道合流/分流", "左转,右转,掉头箭头", "红绿灯"]')
    result = tagger_for(fake_dashscope).tag(encode(scene(1)), DRIVING_DEFINITION_ZH)
    assert result.tags == ["左转、右转、掉头箭头", "人行横道", "车道合流/分流", "隧道"]
    assert result.dropped == ["红绿灯"]


def test_prose_wrapped_answer_with_near_misses_and_unknown_names(
        fake_dashscope: FakeDashScope) -> None:
    def answer(turn: ChatTurn) -> str:
        names = [name.lower() for name in turn.tag_names[:3]] + ["Speed bumps", "Traffic light",
                                                                "Pedestrian"]
        return in_prose(json.dumps(names))

    fake_dashscope.answer = answer
    result = tagger_for(fake_dashscope).tag(encode(scene(2)), DRIVING_DEFINITION)
    assert result.tags == ["Reflective tape", "Wheel lock", "Lit construction vehicle",
                           "Speed bump"]
    assert result.dropped == ["Traffic light", "Pedestrian"]
    assert len(result.dropped) == 2


def test_describe_mode_returns_description_and_keywords(fake_dashscope: FakeDashScope) -> None:
    image = encode(scene(3))
    result = tagger_for(fake_dashscope).tag(image, DRIVING_DEFINITION, describe=True)
    assert result.tags == chosen_tags(image.data, list(DRIVING_TAGS))
    assert result.description and result.description.startswith("A test image")
    assert len(result.keywords) == 5
    prompt = chat_requests(fake_dashscope)[0].body["input"]["messages"][1]["content"][1]["text"]
    assert '"description"' in prompt


def test_invalid_json_gets_one_repair_request(fake_dashscope: FakeDashScope) -> None:
    fake_dashscope.answer = lambda turn: (
        "I think there is a tunnel here." if turn.turn == 1 else '["Tunnel"]')
    result = tagger_for(fake_dashscope).tag(encode(scene(4)), DRIVING_DEFINITION)
    assert result.tags == ["Tunnel"]
    assert fake_dashscope.calls["chat"] == 2
    repair = chat_requests(fake_dashscope)[1].body["input"]["messages"]
    assert [m["role"] for m in repair] == ["system", "user", "assistant", "user"]
    assert repair[2]["content"][0]["text"] == "I think there is a tunnel here."
    assert "valid JSON only" in repair[3]["content"][0]["text"]


def test_invalid_json_twice_raises_tag_parse_error_keeping_the_answers(
        fake_dashscope: FakeDashScope) -> None:
    answers = iter(['["Tunnel", "Ramp"', "Sorry, I cannot answer in JSON."])
    fake_dashscope.answer = lambda turn: next(answers)
    with pytest.raises(TagParseError) as info:
        tagger_for(fake_dashscope).tag(encode(scene(5)), DRIVING_DEFINITION)
    assert info.value.raw == "Sorry, I cannot answer in JSON."
    assert info.value.answers == ('["Tunnel", "Ramp"', "Sorry, I cannot answer in JSON.")
    assert not info.value.retriable
    assert fake_dashscope.calls["chat"] == 2  # one repair, no more


@pytest.mark.parametrize("retry_after, expected", [("7", 7.0), (None, None)])
def test_throttling_is_retriable_with_retry_after(fake_dashscope: FakeDashScope, retry_after,
                                                  expected) -> None:
    fake_dashscope.fail_next(Failure(429, "Throttling.RateQuota", "Requests rate limit "
                                     "exceeded, please try again later.", retry_after))
    with pytest.raises(AdapterError) as info:
        tagger_for(fake_dashscope).tag(encode(scene(6)), DRIVING_DEFINITION)
    assert info.value.retriable and not info.value.is_input_error
    assert info.value.retry_after == expected
    assert "Throttling.RateQuota" in str(info.value)


def test_server_error_is_retriable_and_the_next_call_succeeds(
        fake_dashscope: FakeDashScope) -> None:
    fake_dashscope.fail_next(INTERNAL_ERROR)
    tagger = tagger_for(fake_dashscope)
    with pytest.raises(AdapterError) as info:
        tagger.tag(encode(scene(7)), DRIVING_DEFINITION)
    assert info.value.retriable and "InternalError" in str(info.value)
    assert tagger.tag(encode(scene(7)), DRIVING_DEFINITION).raw.startswith("[")


def test_refused_image_is_an_input_error(fake_dashscope: FakeDashScope) -> None:
    image = encode(scene(8))
    fake_dashscope.rejected_images.add(image.data)
    with pytest.raises(AdapterError) as info:
        tagger_for(fake_dashscope).tag(image, DRIVING_DEFINITION)
    assert info.value.is_input_error and not info.value.retriable
    assert "DataInspectionFailed" in str(info.value) and "HTTP 400" in str(info.value)


def test_timeout_is_retriable() -> None:
    fake = FakeDashScope(latency=1.0).start()
    try:
        with pytest.raises(AdapterError) as info:
            tagger_for(fake, timeout=0.2).tag(encode(scene(9)), DRIVING_DEFINITION)
        assert info.value.retriable and "timed out" in str(info.value)
    finally:
        fake.stop()


def test_refused_connection_is_retriable() -> None:
    with socket.socket() as sock:  # a port nobody listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    tagger = DashScopeTagger(api_key="sk-secret-123456", base_url=f"http://127.0.0.1:{port}",
                             timeout=2)
    with pytest.raises(AdapterError) as info:
        tagger.tag(encode(scene(10)), DRIVING_DEFINITION)
    assert info.value.retriable and "could not be reached" in str(info.value)
    assert "sk-secret-123456" not in str(info.value)


def test_api_key_never_appears_in_errors_or_reprs() -> None:
    fake = FakeDashScope(api_key="sk-real-key-0123456789", echo_key_in_errors=True).start()
    try:
        image = encode(scene(11))
        tagger = tagger_for(fake)
        fake.fail_next(THROTTLED, INTERNAL_ERROR)
        errors = []
        for _ in range(2):
            with pytest.raises(AdapterError) as info:
                tagger.tag(image, DRIVING_DEFINITION)
            errors.append(info.value)
        wrong = DashScopeTagger(api_key="sk-wrong-key-9876543210", base_url=fake.base_url)
        with pytest.raises(AdapterError) as info:
            wrong.tag(image, DRIVING_DEFINITION)
        errors.append(info.value)
        assert errors[-1].is_input_error and "InvalidApiKey" in str(errors[-1])
        # The fake echoed the key into every message; none of it may come through.
        texts = [str(e) for e in errors] + [repr(e) for e in errors] + [repr(tagger), repr(wrong)]
        assert all("key" in t or "Tagger" in t for t in texts)
        for text in texts:
            assert "sk-real-key-0123456789" not in text
            assert "sk-wrong-key-9876543210" not in text
    finally:
        fake.stop()


def test_random_throttling_fails_some_calls_retriably() -> None:
    fake = FakeDashScope(failure_rate=0.5, seed=3).start()
    try:
        tagger, outcomes = tagger_for(fake), []
        for seed in range(12):
            try:
                tagger.tag(encode(scene(seed)), DRIVING_DEFINITION)
                outcomes.append("ok")
            except AdapterError as exc:
                assert exc.retriable and "Throttling" in str(exc)
                outcomes.append("throttled")
        assert 0 < outcomes.count("throttled") < 12
        assert fake.calls["chat"] == 12
    finally:
        fake.stop()


@pytest.mark.parametrize("given, expected", [
    (None, "https://dashscope.aliyuncs.com/api/v1"),
    ("https://dashscope-intl.aliyuncs.com/api/v1/", "https://dashscope-intl.aliyuncs.com/api/v1"),
    ("cn-hangzhou.aigc.aliyuncs.com/api/v1/services/xxx",
     "https://cn-hangzhou.aigc.aliyuncs.com/api/v1"),
    ("https://dashscope.aliyuncs.com/api/v1/services/embeddings/multimodal-embedding/"
     "multimodal-embedding", "https://dashscope.aliyuncs.com/api/v1"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080/api/v1"),
])
def test_base_url_normalisation(given, expected) -> None:
    assert normalise_base_url(given) == expected


def test_full_endpoint_url_from_a_connection_works(fake_dashscope: FakeDashScope) -> None:
    endpoint = fake_dashscope.base_url + "/services/aigc/multimodal-generation/generation"
    result = DashScopeTagger(api_key=fake_dashscope.api_key, base_url=endpoint).tag(
        encode(scene(12)), DRIVING_DEFINITION)
    assert result.raw.startswith("[")
