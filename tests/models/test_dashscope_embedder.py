"""DashScopeEmbedder for the three documented models, through the real SDK and the fake."""

from __future__ import annotations

import numpy as np
import pytest

from mmdm.adapters.errors import AdapterError, ConfigError
from mmdm.adapters.models.base import ImageInput, l2_normalise
from mmdm.adapters.models.dashscope import DashScopeEmbedder
from tests.fakes.fake_dashscope import (
    EMBEDDING_PATH,
    INTERNAL_ERROR,
    THROTTLED,
    FakeDashScope,
    fake_vector,
)
from tests.models.images import encode, scene


def embedder_for(fake: FakeDashScope, model: str, **kwargs) -> DashScopeEmbedder:
    return DashScopeEmbedder(api_key=fake.api_key, base_url=fake.base_url, model=model, **kwargs)


def images(n: int, start: int = 0) -> list[ImageInput]:
    return [encode(scene(seed, size=(64, 48)), uri=f"mem://{seed}.png")
            for seed in range(start, start + n)]


def bodies(fake: FakeDashScope) -> list[dict]:
    return [r.body for r in fake.requests if r.path == EMBEDDING_PATH]


def assert_vectors(results, inputs: list[ImageInput], dimension: int) -> None:
    assert len(results) == len(inputs)
    for got, image in zip(results, inputs):
        assert isinstance(got, np.ndarray) and got.dtype == np.float32
        assert got.shape == (dimension,)
        assert abs(float(np.linalg.norm(got)) - 1.0) < 1e-5
        np.testing.assert_allclose(got, l2_normalise(fake_vector(image.data, dimension)),
                                   rtol=1e-5, atol=1e-6)


def test_v1_sends_one_image_per_request(fake_dashscope: FakeDashScope) -> None:
    embedder = embedder_for(fake_dashscope, "multimodal-embedding-v1")
    assert (embedder.dimension, embedder.max_batch, embedder.supports_text) == (1024, 1, True)
    inputs = images(3)
    assert_vectors(embedder.embed_images(inputs), inputs, 1024)
    sent = bodies(fake_dashscope)
    assert len(sent) == 3
    for body in sent:
        assert body["model"] == "multimodal-embedding-v1"
        assert "dimension" not in body["parameters"]
        [item] = body["input"]["contents"]
        assert item["image"].startswith("data:image/png;base64,")


def test_vision_plus_batches_eight_and_sends_the_dimension(
        fake_dashscope: FakeDashScope) -> None:
    embedder = embedder_for(fake_dashscope, "tongyi-embedding-vision-plus", dimension=256)
    inputs = images(20)
    assert_vectors(embedder.embed_images(inputs), inputs, 256)
    sent = bodies(fake_dashscope)
    assert [len(b["input"]["contents"]) for b in sent] == [8, 8, 4]
    assert all(b["parameters"]["dimension"] == 256 for b in sent)


def test_a_shuffled_reply_is_placed_by_index(fake_dashscope: FakeDashScope) -> None:
    """The service says which vector is which with ``index``; the reply order proves nothing."""
    embedder = embedder_for(fake_dashscope, "tongyi-embedding-vision-plus", dimension=64)
    inputs = images(8)
    results = embedder.embed_images(inputs)
    [order] = fake_dashscope.answer_orders
    assert order != list(range(8)) and sorted(order) == list(range(8))
    assert_vectors(results, inputs, 64)  # each image its own vector, wherever it came back
    assert len({r.tobytes() for r in results}) == 8


def test_vision_plus_default_dimension(fake_dashscope: FakeDashScope) -> None:
    embedder = embedder_for(fake_dashscope, "tongyi-embedding-vision-plus")
    inputs = images(2)
    assert_vectors(embedder.embed_images(inputs), inputs, 1152)
    assert bodies(fake_dashscope)[0]["parameters"]["dimension"] == 1152


def test_one_peace_gets_one_item_per_request_and_reads_the_fused_vector(
        fake_dashscope: FakeDashScope) -> None:
    embedder = embedder_for(fake_dashscope, "multimodal-embedding-one-peace-v1")
    assert (embedder.dimension, embedder.max_batch) == (1536, 1)
    inputs = images(3)
    assert_vectors(embedder.embed_images(inputs), inputs, 1536)
    assert [len(b["input"]["contents"]) for b in bodies(fake_dashscope)] == [1, 1, 1]
    [text_vector] = embedder.embed_texts(["a wet road at night"])
    np.testing.assert_allclose(text_vector, l2_normalise(fake_vector("a wet road at night", 1536)),
                               rtol=1e-5, atol=1e-6)
    assert bodies(fake_dashscope)[-1]["parameters"]["auto_truncation"] is True


@pytest.mark.parametrize("model, dimension", [
    ("multimodal-embedding-v1", 1024), ("tongyi-embedding-vision-plus", 512)])
def test_text_queries_share_the_image_space(fake_dashscope: FakeDashScope, model,
                                            dimension) -> None:
    embedder = embedder_for(fake_dashscope, model, dimension=dimension)
    vectors = embedder.embed_texts(["棕色的狗", "a brown dog"])
    for vector, text in zip(vectors, ["棕色的狗", "a brown dog"]):
        assert vector.dtype == np.float32 and vector.shape == (dimension,)
        np.testing.assert_allclose(vector, l2_normalise(fake_vector(text, dimension)),
                                   rtol=1e-5, atol=1e-6)
    assert [b["input"]["contents"] for b in bodies(fake_dashscope)] == [
        [{"text": "棕色的狗"}], [{"text": "a brown dog"}]]


def test_text_that_names_a_file_is_not_uploaded(fake_dashscope: FakeDashScope, tmp_path,
                                                monkeypatch) -> None:
    (tmp_path / "notes.txt").write_text("private")
    monkeypatch.chdir(tmp_path)
    embedder = embedder_for(fake_dashscope, "multimodal-embedding-v1")
    embedder.embed_texts(["notes.txt", "file://dashcam.jpg"])
    assert [b["input"]["contents"][0]["text"] for b in bodies(fake_dashscope)] == [
        " notes.txt", " file://dashcam.jpg"]
    assert all("uploads" not in r.path for r in fake_dashscope.requests)


@pytest.mark.parametrize("model, dimension", [
    ("tongyi-embedding-vision-plus", 300), ("multimodal-embedding-v1", 512),
    ("multimodal-embedding-one-peace-v1", 1024)])
def test_unsupported_dimension_is_a_config_error(model, dimension) -> None:
    with pytest.raises(ConfigError):
        DashScopeEmbedder(api_key="sk-x", model=model, dimension=dimension)


def test_unknown_model_and_missing_key_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown DashScope embedding model"):
        DashScopeEmbedder(api_key="sk-x", model="text-embedding-v3")
    with pytest.raises(ConfigError, match="api_key"):
        DashScopeEmbedder(api_key="")


def test_refused_image_in_a_batch_fails_alone(fake_dashscope: FakeDashScope) -> None:
    inputs = images(5)
    fake_dashscope.rejected_images.add(inputs[2].data)
    embedder = embedder_for(fake_dashscope, "tongyi-embedding-vision-plus", dimension=64)
    results = embedder.embed_images(inputs)
    error = results[2]
    assert isinstance(error, AdapterError) and error.is_input_error and not error.retriable
    assert "DataInspectionFailed" in str(error)
    good = [i for i in range(5) if i != 2]
    assert_vectors([results[i] for i in good], [inputs[i] for i in good], 64)
    assert fake_dashscope.calls["embedding"] == 1 + 5  # the batch, then each image alone


def test_image_without_bytes_or_url_is_an_item_error(fake_dashscope: FakeDashScope) -> None:
    inputs = [images(1)[0], ImageInput("mem://nothing", None)]
    results = embedder_for(fake_dashscope, "tongyi-embedding-vision-plus").embed_images(inputs)
    assert isinstance(results[0], np.ndarray)
    assert isinstance(results[1], AdapterError) and results[1].is_input_error
    assert [len(b["input"]["contents"]) for b in bodies(fake_dashscope)] == [1]


@pytest.mark.parametrize("failure", [THROTTLED, INTERNAL_ERROR])
def test_request_failures_raise_retriable_errors(fake_dashscope: FakeDashScope, failure) -> None:
    embedder = embedder_for(fake_dashscope, "tongyi-embedding-vision-plus")
    fake_dashscope.fail_next(failure)
    with pytest.raises(AdapterError) as info:
        embedder.embed_images(images(3))
    assert info.value.retriable and failure.code in str(info.value)
    with pytest.raises(AdapterError) as info:
        fake_dashscope.fail_next(failure)
        embedder.embed_texts(["a query"])
    assert info.value.retriable


def test_timeout_is_retriable() -> None:
    fake = FakeDashScope(latency=1.0).start()
    try:
        embedder = embedder_for(fake, "multimodal-embedding-v1", timeout=0.2)
        with pytest.raises(AdapterError) as info:
            embedder.embed_texts(["slow"])
        assert info.value.retriable
    finally:
        fake.stop()


def test_wrong_key_is_an_input_error_without_the_key(fake_dashscope: FakeDashScope) -> None:
    embedder = DashScopeEmbedder(api_key="sk-not-the-right-one-42",
                                 base_url=fake_dashscope.base_url)
    with pytest.raises(AdapterError) as info:
        embedder.embed_images(images(1))
    assert info.value.is_input_error and "InvalidApiKey" in str(info.value)
    assert "sk-not-the-right-one-42" not in str(info.value) + repr(embedder)


def test_dimension_mismatch_with_the_service_is_reported(fake_dashscope: FakeDashScope) -> None:
    embedder = embedder_for(fake_dashscope, "tongyi-embedding-vision-plus", dimension=512)
    embedder.spec = embedder.spec.__class__((512,), 8, sends_dimension=False)  # server default
    with pytest.raises(AdapterError, match="returned 1152 values, configured for 512"):
        embedder.embed_images(images(1))


def test_a_one_peace_query_fuses_text_and_image_in_one_request_with_their_factors(
        fake_dashscope: FakeDashScope, tmp_path) -> None:
    """ONE-PEACE's own fusion: Content and QueryImage go in one request, each with its factor
    (TextFactor, ImageFactor), and the search ranks by the one vector the model returns."""
    from mmdm.adapters.jobs import run_index_job
    from mmdm.adapters.metadata import open_store
    from mmdm.adapters.models.image_prep import prepare_image
    from mmdm.adapters.search import SearchService
    from mmdm.query import parse
    from tests.fakes.numpy_vectors import NumpyVectorStore
    from tests.jobs.conftest import make_version

    store = open_store(f"sqlite:///{tmp_path / 'metadata.db'}")
    dataset_id = make_version(store, tmp_path / "images", 8)
    embedder = embedder_for(fake_dashscope, "multimodal-embedding-one-peace-v1")
    vectors = NumpyVectorStore(embedder.dimension)
    run_index_job(store, dataset_id, "v1", embedder=embedder, vector_store=vectors)
    metas = sorted(store.iter_file_metas(dataset_id, "v1"), key=lambda m: m.pk)
    probe = metas[2]

    def raw(meta):  # the fake's vector of a file's bytes as they were sent
        data = (tmp_path / "images" / meta.file_name).read_bytes()
        sent = prepare_image(ImageInput(meta.uri, data, "image/png"), embedder.image_limits)
        return fake_vector(sent[0].data, 1536)

    fused = l2_normalise(np.average([fake_vector("a wet road", 1536), raw(probe)], axis=0,
                                    weights=[2.0, 0.5]))
    expected = sorted(metas, key=lambda m: -float(l2_normalise(raw(m)) @ fused))[:4]
    before = len(bodies(fake_dashscope))
    page = SearchService(store, vector_store=vectors, embedder=embedder).search(
        dataset_id, "v1", parse(f"Content:'a wet road' AND QueryImage='{probe.uri}' AND "
                                "TextFactor=2 AND ImageFactor=0.5 AND TopK=4"))
    [query] = bodies(fake_dashscope)[before:]
    contents = query["input"]["contents"]
    assert [(sorted(c), c["factor"]) for c in contents] == [
        (["factor", "text"], 2.0), (["factor", "image"], 0.5)]
    assert [m.file_meta_id for m, _ in page.items] == [m.file_meta_id for m in expected]
    for meta, score in page.items:
        assert score == pytest.approx(float(l2_normalise(raw(meta)) @ fused), abs=1e-5)
    store.close()


def _wav(seconds: float = 0.5) -> bytes:
    """A short mono 16-bit WAV of noise."""
    import io
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.random.default_rng(7).integers(-3000, 3000, int(8000 * seconds),
                                                        dtype=np.int16).tobytes())
    return out.getvalue()


@pytest.fixture
def one_peace_version(fake_dashscope: FakeDashScope, tmp_path):
    from mmdm.adapters.jobs import run_index_job
    from mmdm.adapters.metadata import open_store
    from mmdm.adapters.search import SearchService
    from tests.fakes.numpy_vectors import NumpyVectorStore
    from tests.jobs.conftest import make_version

    store = open_store(f"sqlite:///{tmp_path / 'metadata.db'}")
    dataset_id = make_version(store, tmp_path / "images", 6)
    (tmp_path / "images" / "sounds").mkdir()
    (tmp_path / "images" / "sounds" / "cow.wav").write_bytes(_wav())
    embedder = embedder_for(fake_dashscope, "multimodal-embedding-one-peace-v1")
    vectors = NumpyVectorStore(embedder.dimension)
    run_index_job(store, dataset_id, "v1", embedder=embedder, vector_store=vectors)
    yield store, dataset_id, SearchService(store, vector_store=vectors, embedder=embedder)
    store.close()


def test_a_one_peace_query_uploads_its_audio_and_fuses_it_with_the_text(
        fake_dashscope: FakeDashScope, one_peace_version, tmp_path) -> None:
    """QueryAudio (ONE-PEACE): the file is uploaded with a policy from the connection's own
    base URL, named oss://… in the one fused request with its factor, and the search ranks
    by the vector the model returns."""
    from mmdm.query import parse

    store, dataset_id, search = one_peace_version
    audio_uri = (tmp_path / "images" / "sounds" / "cow.wav").as_uri()
    before = len(fake_dashscope.requests)
    page = search.search(dataset_id, "v1", parse(
        f"Content:'a cow' AND QueryAudio='{audio_uri}' AND AudioFactor=3 AND TopK=6"))
    sent = fake_dashscope.requests[before:]
    policy, upload, query = sent
    assert (policy.method, policy.path.split("?")[0]) == ("GET", "/api/v1/uploads")
    assert "model=multimodal-embedding-one-peace-v1" in policy.path
    assert (upload.method, upload.path) == ("POST", "/oss-upload")
    [(key, data)] = fake_dashscope.uploads.items()
    assert key.endswith("/cow.wav") and data == _wav()
    assert query.headers["x-dashscope-ossresourceresolve"] == "enable"
    assert query.body["input"]["contents"] == [{"text": "a cow", "factor": 1.0},
                                               {"audio": f"oss://{key}", "factor": 3.0}]
    fused = l2_normalise(np.average([fake_vector("a cow", 1536), fake_vector(_wav(), 1536)],
                                    axis=0, weights=[1.0, 3.0]))
    metas = {m.file_meta_id: m for m in store.iter_file_metas(dataset_id, "v1")}
    images = {k: l2_normalise(v) for k, v in zip(metas, embedder_for(
        fake_dashscope, "multimodal-embedding-one-peace-v1").embed_images(
            [ImageInput(m.uri, (tmp_path / "images" / m.file_dir / m.file_name).read_bytes(),
                        m.content_type or "image/png") for m in metas.values()]))}
    expected = sorted(images, key=lambda k: -float(images[k] @ fused))
    assert [m.file_meta_id for m, _ in page.items] == expected[:len(page.items)]
    assert len(page.items) == len(expected)  # every image scores above the default


def test_audio_alone_is_one_request_and_other_models_refuse_audio(
        fake_dashscope: FakeDashScope, one_peace_version, tmp_path) -> None:
    from mmdm.adapters.search import SearchService
    from mmdm.query import UnsupportedFeatureError, parse
    from tests.fakes.numpy_vectors import NumpyVectorStore

    store, dataset_id, search = one_peace_version
    audio_uri = (tmp_path / "images" / "sounds" / "cow.wav").as_uri()
    page = search.search(dataset_id, "v1", parse(f"QueryAudio='{audio_uri}' AND TopK=2"))
    assert len(page.items) == 2
    assert bodies(fake_dashscope)[-1]["input"]["contents"][0]["audio"].startswith("oss://")
    plus = embedder_for(fake_dashscope, "tongyi-embedding-vision-plus", dimension=64)
    other = SearchService(store, vector_store=NumpyVectorStore(64), embedder=plus,
                          index_set_id="any")
    with pytest.raises(UnsupportedFeatureError, match="cannot embed audio"):
        other.search(dataset_id, "v1", parse(f"QueryAudio='{audio_uri}'"))


def test_audio_the_model_cannot_take_is_refused_before_any_upload(
        fake_dashscope: FakeDashScope, one_peace_version, tmp_path) -> None:
    from mmdm.query import parse

    store, dataset_id, search = one_peace_version
    (tmp_path / "images" / "sounds" / "cow.ogg").write_bytes(b"OggS" + b"\0" * 100)
    (tmp_path / "images" / "sounds" / "long.wav").write_bytes(_wav(seconds=400))  # > 5 MB
    before = len(fake_dashscope.requests)
    for name, why in (("cow.ogg", "takes wav, mp3, flac"), ("long.wav", "up to 5 MB")):
        uri = (tmp_path / "images" / "sounds" / name).as_uri()
        with pytest.raises(AdapterError, match=why):
            search.search(dataset_id, "v1", parse(f"QueryAudio='{uri}'"))
    outside = tmp_path / "elsewhere.wav"
    outside.write_bytes(_wav())
    with pytest.raises(AdapterError, match="not a file of a registered dataset"):
        search.search(dataset_id, "v1", parse(f"QueryAudio='{outside.as_uri()}'"))
    assert len(fake_dashscope.requests) == before
