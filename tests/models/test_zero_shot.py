"""Zero-shot tagging with an embedding model (through the OpenAI-compatible client and its
fake server), alone and as the VLM's first pass, with both counts in the job's record."""

from __future__ import annotations

import pytest

from mmdm.adapters.errors import AdapterError, NotSupportedError
from mmdm.adapters.jobs import run_tagging_job
from mmdm.adapters.metadata import open_store
from mmdm.adapters.models import open_embedder, open_tagger
from mmdm.adapters.models.base import ImageInput, TagDefinition, l2_normalise
from mmdm.adapters.models.image_prep import prepare_image
from mmdm.adapters.models.zero_shot import FirstPassTagger, ZeroShotTagger
from mmdm.adapters.samples import generate_samples
from mmdm.adapters.scan import build_file_metas
from tests.fakes.fake_dashscope import fake_vector

DEFINITION = TagDefinition("", {"cat": "a cat", "dog": "a dog", "car": "a car",
                                "tree": "a tree", "boat": "a boat", "snow": "snow"},
                           prompt_id="pmt-zs", revision=1)


def _embedder(fake):
    return open_embedder("openai", base_url=fake.base_url, model="clip-vit-b-32",
                         api_key=fake.api_key, dimension=fake.dimension, image_input="objects")


def _expected(sent: bytes, threshold: float) -> list[str]:
    """What the fake's vectors say: the tags whose text is within ``threshold``."""
    image = l2_normalise(fake_vector(sent, 64))
    return [name for name, text in DEFINITION.tags.items()
            if float(l2_normalise(fake_vector(f"{name}: {text}", 64)) @ image) > threshold]


def _samples(tmp_path):
    generate_samples(tmp_path / "images", per_scene=3)
    store = open_store(f"sqlite:///{tmp_path / 'metadata.db'}")
    ds = store.create_dataset("zero-shot", (tmp_path / "images").as_uri())
    store.create_version(ds.dataset_id)
    build_file_metas(store, ds.dataset_id, "v1")
    store.create_prompt("things", DEFINITION.tags)
    return store, ds


def _sent(tmp_path, meta, emb) -> bytes:
    data = (tmp_path / "images" / meta.file_dir / meta.file_name).read_bytes()
    return prepare_image(ImageInput(meta.uri, data, meta.content_type), emb.image_limits)[0].data


def test_zero_shot_alone_tags_by_similarity(fake_openai, tmp_path):
    store, ds = _samples(tmp_path)
    emb = _embedder(fake_openai)
    summary = run_tagging_job(store, ds.dataset_id, "v1", tagger=ZeroShotTagger(emb, 0.1),
                              prompt="things", mode="Full")
    assert summary.status == "Succeeded" and summary.completed == 15
    metas = list(store.iter_file_metas(ds.dataset_id, "v1"))
    for meta in metas:
        assert meta.tags_ai == _expected(_sent(tmp_path, meta, emb), 0.1)
    assert any(m.tags_ai for m in metas) and not all(m.tags_ai for m in metas)
    texts = [r for r in fake_openai.requests_to("/v1/embeddings")
             if isinstance(r.body["input"][0], str)]
    assert len(texts) == 1  # the definition's texts, embedded once for the whole job
    assert fake_openai.requests_to("/v1/chat/completions") == []  # no VLM at all
    store.close()


def test_the_first_pass_sends_only_candidates_to_the_vlm(fake_openai, tmp_path):
    store, ds = _samples(tmp_path)
    emb = _embedder(fake_openai)
    vlm = open_tagger("openai", base_url=fake_openai.base_url, model="qwen2.5-vl-7b",
                      api_key=fake_openai.api_key)
    tagger = FirstPassTagger(ZeroShotTagger(emb, 0.2), vlm)
    summary = run_tagging_job(store, ds.dataset_id, "v1", tagger=tagger, prompt="things",
                              mode="Full")
    metas = list(store.iter_file_metas(ds.dataset_id, "v1"))
    candidates = [m for m in metas if _expected(_sent(tmp_path, m, emb), 0.2)]
    assert 0 < len(candidates) < len(metas)
    chats = fake_openai.requests_to("/v1/chat/completions")
    assert len(chats) == len(candidates)
    usage = store.get_job(summary.job_id).result["Usage"]
    assert usage["FirstPassImages"] == len(metas) and usage["SentToModel"] == len(candidates)
    assert usage["Calls"] == len(chats) + len(fake_openai.requests_to("/v1/embeddings"))
    screened_out = {m.file_meta_id for m in metas} - {m.file_meta_id for m in candidates}
    assert all(not m.tags_ai for m in metas if m.file_meta_id in screened_out)
    store.close()


def test_zero_shot_refuses_what_it_cannot_do(fake_openai):
    with pytest.raises(NotSupportedError, match="embeds images only"):
        ZeroShotTagger(open_embedder("local"))
    image = ImageInput("mem://a.png", b"\x89PNG", "image/png")
    with pytest.raises(AdapterError, match="cannot describe"):
        ZeroShotTagger(_embedder(fake_openai)).tag(image, DEFINITION, describe=True)


def test_a_job_spec_asks_for_a_zero_shot_pass(fake_openai, tmp_path):
    """The JobSpec keys CreateDatasetJob, the CLI and SmartTagOperator share."""
    from mmdm.adapters.defaults import embedded_resources
    from mmdm.adapters.jobs.dispatch import tagger_from_spec

    resources = embedded_resources(tmp_path)
    asked: list[tuple] = []
    resources.embedder = lambda conn, model: asked.append((conn, model)) or _embedder(
        fake_openai)
    plain = tagger_from_spec({"promptId": "p"}, resources)
    assert plain.model == "local-pixel-v1"  # no zero-shot keys: the VLM (offline here) alone
    both = tagger_from_spec({"zeroShotConnectionId": "clip", "zeroShotModel": "b32",
                             "zeroShotThreshold": 0.3}, resources)
    assert isinstance(both, FirstPassTagger) and both.first.threshold == 0.3
    alone = tagger_from_spec({"zeroShotOnly": True, "zeroShotConnectionId": "clip"}, resources)
    assert isinstance(alone, ZeroShotTagger) and alone.threshold == 0.25
    assert asked == [("clip", "b32"), ("clip", None)]
