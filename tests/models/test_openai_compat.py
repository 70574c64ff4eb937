"""OpenAI-compatible model servers through the real ``openai`` client, against a fake server
that speaks that wire format: tagging by chat completions, text and image embeddings in the
three forms servers document, failures, and the tagging and index jobs end to end."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from mmdm.adapters.errors import AdapterError, ConfigError, NotSupportedError
from mmdm.adapters.jobs import run_index_job, run_tagging_job
from mmdm.adapters.metadata import open_store
from mmdm.adapters.models import open_embedder, open_tagger
from mmdm.adapters.models.base import ImageInput, TagDefinition, l2_normalise
from mmdm.adapters.models.image_prep import limits_for, prepare_image
from mmdm.adapters.models.service_errors import ModelServiceError
from mmdm.adapters.samples import generate_samples
from mmdm.adapters.scan import build_file_metas
from mmdm.adapters.search import SearchService
from mmdm.query import parse
from tests.fakes.fake_dashscope import chosen_tags, fake_vector
from tests.fakes.fake_openai import THROTTLED, FakeOpenAI, OpenAIFailure
from tests.fakes.numpy_vectors import NumpyVectorStore
from tests.models.images import encode, scene

DEFINITION = TagDefinition("You sort photos.", {"cat": "a cat", "dog": "a dog",
                                                "car": "a car", "tree": "a tree"})


def tagger(fake: FakeOpenAI, **settings):
    return open_tagger("openai", base_url=fake.base_url, model="qwen2.5-vl-7b",
                       api_key=fake.api_key, **settings)


def embedder(fake: FakeOpenAI, **settings):
    return open_embedder("openai", base_url=fake.base_url, model="gme-qwen2-vl-2b",
                         api_key=fake.api_key, dimension=fake.dimension, **settings)


def images(n: int):
    return [encode(scene(seed, size=(40, 40)), "PNG", uri=f"mem://{seed}.png")
            for seed in range(n)]


def test_tagging_is_a_chat_completion_with_the_image_inline(fake_openai):
    image = images(1)[0]
    result = tagger(fake_openai, temperature=0.1).tag(image, DEFINITION)
    assert result.tags == chosen_tags(image.data, list(DEFINITION.tags))
    [request] = fake_openai.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {fake_openai.api_key}"
    body = request.body
    assert body["model"] == "qwen2.5-vl-7b" and body["temperature"] == 0.1
    system, user = body["messages"]
    assert system["role"] == "system" and "You sort photos." in system["content"]
    assert user["content"][0] == {"type": "image_url", "image_url": {
        "url": "data:image/png;base64," + base64.b64encode(image.data).decode()}}
    assert user["content"][1]["type"] == "text" and '"cat"' in user["content"][1]["text"]


def test_an_unreadable_answer_gets_one_repair_request(fake_openai):
    answers = iter(["I see a cat and maybe a tree.", json.dumps(["cat", "tree"])])
    fake_openai.answer = lambda turn: next(answers)
    result = tagger(fake_openai).tag(images(1)[0], DEFINITION)
    assert result.tags == ["cat", "tree"]
    second = fake_openai.requests[1].body["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[2]["content"] == "I see a cat and maybe a tree."


def test_failures_say_whether_to_retry_and_never_show_the_key(fake_openai):
    fake_openai.fail_next(THROTTLED, OpenAIFailure(503, "overloaded"))
    for retry_after in (2.0, None):
        with pytest.raises(ModelServiceError) as info:
            tagger(fake_openai).tag(images(1)[0], DEFINITION)
        assert info.value.retriable and info.value.retry_after == retry_after
    bad_key = open_tagger("openai", base_url=fake_openai.base_url, model="m",
                          api_key="sk-wrong-key")
    with pytest.raises(ModelServiceError) as info:
        bad_key.tag(images(1)[0], DEFINITION)
    assert info.value.status == 401 and not info.value.retriable
    assert "sk-wrong-key" not in str(info.value) and "sk-wrong-key" not in repr(bad_key)
    down = open_tagger("openai", base_url="http://127.0.0.1:9/v1", model="m", timeout=2)
    with pytest.raises(AdapterError) as info:
        down.tag(images(1)[0], DEFINITION)
    assert info.value.retriable and "could not be reached" in str(info.value)


@pytest.mark.parametrize(("form", "max_batch", "requests"), [
    ("messages", 16, 5),  # vLLM's chat form: one image per request
    ("objects", 2, 3),
    ("data-uri", 16, 1),
])
def test_images_embed_in_each_documented_form(fake_openai, form, max_batch, requests):
    batch = images(5)
    vectors = embedder(fake_openai, image_input=form, max_batch=max_batch).embed_images(batch)
    for image, vector in zip(batch, vectors):  # placed by index, though replies are shuffled
        assert vector.dtype == np.float32
        np.testing.assert_allclose(vector, l2_normalise(fake_vector(image.data, 64)),
                                   rtol=1e-5, atol=1e-6)
    sent = fake_openai.requests_to("/v1/embeddings")
    assert len(sent) == requests
    body = sent[0].body
    uri = "data:image/png;base64," + base64.b64encode(batch[0].data).decode()
    if form == "messages":
        assert "input" not in body
        assert body["messages"][0]["content"][0] == {"type": "image_url",
                                                     "image_url": {"url": uri}}
    elif form == "objects":
        assert body["input"][0] == {"image": uri} and len(body["input"]) == 2
    else:
        assert body["input"][0] == uri and body["modality"] == "image"


def test_a_refused_image_fails_alone(fake_openai):
    batch = images(4)
    fake_openai.rejected_images.add(batch[2].data)
    vectors = embedder(fake_openai, image_input="objects").embed_images(batch)
    assert isinstance(vectors[2], ModelServiceError) and vectors[2].status == 400
    assert all(isinstance(v, np.ndarray) for i, v in enumerate(vectors) if i != 2)


def test_texts_embed_as_the_standard_input_list(fake_openai):
    vectors = embedder(fake_openai).embed_texts(["a red car", "a tree"])
    for text, vector in zip(["a red car", "a tree"], vectors):
        np.testing.assert_allclose(vector, l2_normalise(fake_vector(text, 64)), rtol=1e-5,
                                   atol=1e-6)
    assert fake_openai.requests[-1].body["input"] == ["a red car", "a tree"]
    with pytest.raises(NotSupportedError):
        embedder(fake_openai, supports_text="false").embed_texts(["x"])


def test_settings_are_checked(fake_openai):
    with pytest.raises(ConfigError, match="image_input"):
        embedder(fake_openai, image_input="multipart")
    with pytest.raises(ConfigError, match="missing setting"):
        open_embedder("openai", base_url=fake_openai.base_url, model="m")  # no dimension
    wrong = open_embedder("openai", base_url=fake_openai.base_url, model="m",
                          api_key=fake_openai.api_key, dimension=32)
    with pytest.raises(AdapterError, match="returned 64 values, configured for 32"):
        wrong.embed_texts(["x"])


def test_tagging_and_indexing_jobs_run_on_an_openai_compatible_server(fake_openai, tmp_path):
    generate_samples(tmp_path / "images", per_scene=2)
    store = open_store(f"sqlite:///{tmp_path / 'metadata.db'}")
    ds = store.create_dataset("openai", (tmp_path / "images").as_uri())
    store.create_version(ds.dataset_id)
    build_file_metas(store, ds.dataset_id, "v1")
    store.create_prompt("animals", DEFINITION.tags, guide_prompt=DEFINITION.guide_prompt)
    tagged = run_tagging_job(store, ds.dataset_id, "v1", tagger=tagger(fake_openai),
                             prompt="animals", mode="Full")
    assert (tagged.status, tagged.completed) == ("Succeeded", 10)
    metas = list(store.iter_file_metas(ds.dataset_id, "v1"))
    limits = limits_for("openai", "qwen2.5-vl-7b")
    converted = 0
    for meta in metas:  # the server saw each image as the service takes it (GIF, BMP, TIFF
        data = (tmp_path / "images" / meta.file_dir / meta.file_name).read_bytes()  # as JPEG)
        sent, change = prepare_image(ImageInput(meta.uri, data, meta.content_type), limits)
        converted += change is not None
        assert meta.tags_ai == chosen_tags(sent.data, list(DEFINITION.tags))
    assert converted >= 3
    usage = store.get_job(tagged.job_id).result["Usage"]  # in the job record, as reported
    chats = fake_openai.requests_to("/v1/chat/completions")
    assert usage["Calls"] == usage["Images"] == len(chats) == 10
    assert usage["InputTokens"] > 0 and usage["OutputTokens"] > 0
    assert usage["PreparedImages"] == converted
    assert store.get_job(tagged.job_id).result["DroppedTagNames"] == 0

    emb = embedder(fake_openai, image_input="messages")
    vectors = NumpyVectorStore(emb.dimension)
    indexed = run_index_job(store, ds.dataset_id, "v1", embedder=emb, vector_store=vectors)
    assert (indexed.status, indexed.completed) == ("Succeeded", 10)
    assert store.get_job(indexed.job_id).result["Usage"] == {
        "Calls": 10, "Images": 10, "InputTokens": 10, "PreparedImages": converted}
    search = SearchService(store, vector_store=vectors, embedder=emb)
    probe = metas[3]
    page = search.search(ds.dataset_id, "v1", parse(f"QueryImage='{probe.uri}' AND TopK=3"))
    assert page.items[0][0].file_meta_id == probe.file_meta_id
    assert page.items[0][1] == pytest.approx(1.0, abs=1e-5)
    store.close()


@pytest.mark.parametrize("factors", [None, (3.0, 0.5)])
def test_text_and_image_together_are_fused_never_dropped(fake_openai, tmp_path, factors):
    """Content and QueryImage in one query: both are embedded, and the search ranks by the
    mean of their unit vectors (what neither alone ranks by), weighted by TextFactor and
    ImageFactor when the query gives them."""
    generate_samples(tmp_path / "images", per_scene=2)
    store = open_store(f"sqlite:///{tmp_path / 'metadata.db'}")
    ds = store.create_dataset("fused", (tmp_path / "images").as_uri())
    store.create_version(ds.dataset_id)
    build_file_metas(store, ds.dataset_id, "v1")
    emb = embedder(fake_openai, image_input="objects")
    vectors = NumpyVectorStore(emb.dimension)
    run_index_job(store, ds.dataset_id, "v1", embedder=emb, vector_store=vectors)
    search = SearchService(store, vector_store=vectors, embedder=emb)
    metas = {m.file_meta_id: m for m in store.iter_file_metas(ds.dataset_id, "v1")}
    probe = next(iter(metas.values()))

    def sent(meta):  # the bytes the server embedded for a file (prepared for the provider)
        data = (tmp_path / "images" / meta.file_dir / meta.file_name).read_bytes()
        return prepare_image(ImageInput(meta.uri, data, meta.content_type),
                             emb.image_limits)[0].data

    unit = {i: l2_normalise(fake_vector(sent(m), 64)) for i, m in metas.items()}
    text_f, image_f = factors or (1.0, 1.0)
    query = l2_normalise(text_f * l2_normalise(fake_vector("a red bus", 64))
                         + image_f * unit[probe.file_meta_id])
    expected = sorted(unit, key=lambda i: -float(unit[i] @ query))[:5]
    if factors:  # the weights change the ranking, so a search that ignored them would fail
        even = l2_normalise(l2_normalise(fake_vector("a red bus", 64)) + unit[probe.file_meta_id])
        assert sorted(unit, key=lambda i: -float(unit[i] @ even))[:5] != expected
    before = len(fake_openai.requests_to("/v1/embeddings"))
    weights = f" AND TextFactor={text_f} AND ImageFactor={image_f}" if factors else ""
    page = search.search(ds.dataset_id, "v1", parse(
        f"Content:'a red bus' AND QueryImage='{probe.uri}' AND TopK=5{weights}"))
    assert [m.file_meta_id for m, _ in page.items] == expected
    for meta, score in page.items:
        assert score == pytest.approx(float(unit[meta.file_meta_id] @ query), abs=1e-5)
    bodies = [r.body for r in fake_openai.requests_to("/v1/embeddings")[before:]]
    assert [b["input"] == ["a red bus"] for b in bodies].count(True) == 1  # the text
    assert sum(isinstance(b["input"][0], dict) for b in bodies) == 1  # and the image
    text_only = search.search(ds.dataset_id, "v1", parse("Content:'a red bus' AND TopK=5"))
    assert [m.file_meta_id for m, _ in text_only.items] != expected
    store.close()


def test_unknown_tag_names_are_dropped_and_counted_in_the_job(fake_openai, tmp_path):
    """README: "unknown names dropped and counted"; the count is in the job's record."""
    generate_samples(tmp_path / "images", per_scene=1)
    store = open_store(f"sqlite:///{tmp_path / 'metadata.db'}")
    ds = store.create_dataset("dropped", (tmp_path / "images").as_uri())
    store.create_version(ds.dataset_id)
    build_file_metas(store, ds.dataset_id, "v1")
    store.create_prompt("animals", DEFINITION.tags, guide_prompt=DEFINITION.guide_prompt)
    fake_openai.answer = lambda turn: json.dumps(["cat", "unicorn", "dragon"])
    summary = run_tagging_job(store, ds.dataset_id, "v1", tagger=tagger(fake_openai),
                              prompt="animals", mode="Full")
    assert store.get_job(summary.job_id).result["DroppedTagNames"] == 2 * 5
    assert {tuple(m.tags_ai) for m in store.iter_file_metas(ds.dataset_id, "v1")} == {("cat",)}
    store.close()
