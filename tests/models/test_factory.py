"""open_tagger / open_embedder from a connection's plain settings."""

from __future__ import annotations

import numpy as np
import pytest

from mmdm.adapters.errors import ConfigError
from mmdm.adapters.models import (
    DashScopeEmbedder,
    DashScopeTagger,
    EasGmeEmbedder,
    LocalImageEmbedder,
    LocalPixelTagger,
    open_embedder,
    open_tagger,
)
from tests.fakes.fake_dashscope import FakeDashScope
from tests.models.driving_tags import DRIVING_DEFINITION
from tests.models.images import encode, scene


def test_dashscope_tagger_from_string_settings(fake_dashscope: FakeDashScope) -> None:
    # URI-form connections turn every extra into a string; unknown keys are ignored.
    tagger = open_tagger("DashScope", api_key=fake_dashscope.api_key,
                         base_url=fake_dashscope.base_url, model="qwen-vl-plus", timeout="5",
                         temperature="0.1", Models="ignored", workspace="")
    assert isinstance(tagger, DashScopeTagger)
    assert (tagger.model, tagger.timeout, tagger.temperature, tagger.workspace) == (
        "qwen-vl-plus", 5.0, 0.1, None)
    tagger.tag(encode(scene(1)), DRIVING_DEFINITION)
    assert fake_dashscope.requests[-1].body["parameters"]["temperature"] == 0.1


def test_embedders_from_settings() -> None:
    dashscope = open_embedder("dashscope", api_key="sk-x", model="tongyi-embedding-vision-plus",
                              dimension="512")
    assert isinstance(dashscope, DashScopeEmbedder) and dashscope.dimension == 512
    eas = open_embedder("eas", endpoint="http://127.0.0.1:1/api/predict/gme", token="t",
                        max_batch="4", timeout="3")
    assert isinstance(eas, EasGmeEmbedder)
    assert (eas.dimension, eas.max_batch, eas.timeout) == (1536, 4, 3.0)
    local = open_embedder("local", dimension="128")
    assert isinstance(local, LocalImageEmbedder) and local.dimension == 128
    assert open_embedder("local").dimension == 256


def test_local_tagger_needs_nothing() -> None:
    tagger = open_tagger("local")
    assert isinstance(tagger, LocalPixelTagger)
    vector = open_embedder("local").embed_images([encode(scene(2))])[0]
    assert isinstance(vector, np.ndarray)


@pytest.mark.parametrize("call", [
    lambda: open_tagger("openai"),
    lambda: open_tagger("eas", endpoint="http://x", token="t"),
    lambda: open_tagger("dashscope"),
    lambda: open_embedder("dashscope", api_key=""),
    lambda: open_embedder("eas", endpoint="http://x"),
    lambda: open_embedder("local", dimension="many"),
    lambda: open_embedder("dashscope", api_key="sk-x", timeout="soon"),
])
def test_bad_settings_are_config_errors(call) -> None:
    with pytest.raises(ConfigError):
        call()


def test_secrets_stay_out_of_reprs() -> None:
    objects = [open_tagger("dashscope", api_key="sk-abc-secret"),
               open_embedder("dashscope", api_key="sk-abc-secret"),
               open_embedder("eas", endpoint="http://x", token="sk-abc-secret")]
    assert all("sk-abc-secret" not in repr(o) for o in objects)
