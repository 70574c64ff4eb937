"""Every service client counts what it spent, as its service reports it (calls, images,
tokens), and a job's result carries its own share."""

from __future__ import annotations

from mmdm.adapters.models import open_embedder, open_tagger
from mmdm.adapters.models.base import TagDefinition
from mmdm.adapters.models.usage import usage_of, usage_since
from tests.models.images import encode, scene

DEFINITION = TagDefinition("", {"cat": "a cat", "dog": "a dog"})


def _images(n: int):
    return [encode(scene(seed, size=(32, 32)), "PNG", uri=f"mem://{seed}.png")
            for seed in range(n)]


def test_dashscope_reports_tokens_per_call(fake_dashscope):
    tagger = open_tagger("dashscope", api_key=fake_dashscope.api_key,
                         base_url=fake_dashscope.base_url)
    for image in _images(2):
        tagger.tag(image, DEFINITION)
    used = usage_of(tagger)
    assert (used["Calls"], used["Images"], used["ImageTokens"]) == (2, 2, 512)
    assert used["InputTokens"] > 0 and used["OutputTokens"] > 0
    embedder = open_embedder("dashscope", api_key=fake_dashscope.api_key,
                             base_url=fake_dashscope.base_url,
                             model="tongyi-embedding-vision-plus")
    before = usage_of(embedder)
    embedder.embed_images(_images(3))
    embedder.embed_texts(["a cat"])
    assert usage_since(embedder, before) == {"Calls": 2, "Images": 3, "InputTokens": 4}


def test_eas_counts_calls_and_images(fake_eas):
    embedder = open_embedder("eas", endpoint=fake_eas.endpoint, token=fake_eas.token,
                             max_batch=2)
    embedder.embed_images(_images(3))
    assert usage_of(embedder) == {"Calls": 2, "Images": 3}


def test_the_offline_model_spends_nothing():
    assert usage_of(open_tagger("local")) == {} and usage_of(open_embedder("local")) == {}
