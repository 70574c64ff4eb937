"""The in-process CLIP embedder on a tiny, randomly initialised checkpoint saved to a folder and
loaded back through ``from_pretrained``, offline: its vectors are the model's own, batching and
EXIF orientation do not change them, bad images fail alone, and it serves an index job, a text
search, ``mmdm eval`` through an ``mmdm_clip`` connection and zero-shot tagging."""

from __future__ import annotations

import io
import json
import string

import numpy as np
import pytest
from PIL import Image, ImageOps

from mmdm.adapters.errors import AdapterError, ConfigError
from mmdm.adapters.models import ClipEmbedder, open_embedder, open_tagger
from mmdm.adapters.models.base import ImageInput, TagDefinition, l2_normalise
from tests.models.images import encode, scene

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

PROJECTION_DIM = 16
MAX_TOKENS = 16


@pytest.fixture(scope="module", autouse=True)
def offline():
    """Nothing here may reach the hub (the hub library reads the variable once, at import)."""
    import huggingface_hub.constants

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, offline) -> str:
    """A tiny CLIP (2 layers, 32 wide, 32 px images in 8 px patches, 16-d vectors) with a
    character-level CLIP tokenizer and a CLIP image processor, saved as a hub folder is."""
    path = tmp_path_factory.mktemp("tiny-clip")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in string.ascii_lowercase + string.digits + string.punctuation:
        vocab[char] = len(vocab)
        vocab[char + "</w>"] = len(vocab)
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")  # no merges: one token per character
    # Loaded from the two files and saved in this version's own format; no model_max_length,
    # so truncation has to come from the embedder.
    transformers.CLIPTokenizer.from_pretrained(path).save_pretrained(path)
    transformers.CLIPImageProcessor(size=32, crop_size=32).save_pretrained(path)
    text = transformers.CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=MAX_TOKENS, bos_token_id=0,
        eos_token_id=1, pad_token_id=1)
    vision = transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=64,
                                           num_hidden_layers=2, num_attention_heads=2,
                                           image_size=32, patch_size=8)
    config = transformers.CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(),
                                     projection_dim=PROJECTION_DIM)
    torch.manual_seed(0)
    transformers.CLIPModel(config).save_pretrained(path)
    return str(path)


def images(n: int, size=(40, 40)) -> list[ImageInput]:
    return [encode(scene(seed, size=size), "PNG", uri=f"mem://{seed}.png") for seed in range(n)]


def vectors(results) -> np.ndarray:
    assert not [r for r in results if isinstance(r, Exception)]
    return np.stack(results)


def test_image_vectors_are_the_models_own_for_the_same_pixels(checkpoint):
    emb = ClipEmbedder(checkpoint)
    inputs = images(3)
    got = vectors(emb.embed_images(inputs))

    model = transformers.CLIPModel.from_pretrained(checkpoint).eval()
    processor = transformers.AutoImageProcessor.from_pretrained(checkpoint)
    pixels = processor([Image.open(io.BytesIO(i.data)).convert("RGB") for i in inputs],
                       return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        direct = model.visual_projection(model.vision_model(pixel_values=pixels).pooler_output)
    direct = direct.numpy() / np.linalg.norm(direct.numpy(), axis=1, keepdims=True)

    np.testing.assert_allclose(got, direct, atol=1e-5)
    assert emb.dimension == PROJECTION_DIM and got.shape == (3, PROJECTION_DIM)
    assert got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert emb.supports_text and emb.model == checkpoint
    assert emb.usage.snapshot() == {"Calls": 1, "Images": 3}


def test_batches_of_batch_size_give_the_same_vectors_as_one_at_a_time(checkpoint):
    emb = open_embedder("clip", model=checkpoint, batch_size="2")
    assert emb.max_batch == 2
    inputs = images(5)
    seen: list[int] = []
    hook = emb.clip.vision_model.register_forward_hook(
        lambda module, args, kwargs, output: seen.append(kwargs["pixel_values"].shape[0]),
        with_kwargs=True)
    try:
        batched = vectors(emb.embed_images(inputs))
        assert seen == [2, 2, 1]
        single = np.stack([vectors(emb.embed_images([i]))[0] for i in inputs])
    finally:
        hook.remove()
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert emb.usage.snapshot() == {"Calls": 3 + 5, "Images": 5 + 5}


def test_calls_from_many_threads_give_what_one_caller_gets(checkpoint):
    """A job's workers and the API's searches share one loaded model."""
    from concurrent.futures import ThreadPoolExecutor

    emb = ClipEmbedder(checkpoint, batch_size=3)
    inputs, texts = images(6), ["a red bus", "snow on a hill", "a green park"]
    want_images, want_texts = vectors(emb.embed_images(inputs)), vectors(emb.embed_texts(texts))
    with ThreadPoolExecutor(8) as pool:
        got_images = list(pool.map(lambda _: vectors(emb.embed_images(inputs)), range(8)))
        got_texts = list(pool.map(lambda _: vectors(emb.embed_texts(texts)), range(8)))
    for got in got_images:
        np.testing.assert_allclose(got, want_images, atol=1e-5)
    for got in got_texts:
        np.testing.assert_allclose(got, want_texts, atol=1e-5)


def _jpeg(im: Image.Image, orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue()


def test_exif_orientation_is_applied_before_embedding(checkpoint):
    emb = ClipEmbedder(checkpoint)
    upright = scene(3, size=(64, 40))
    on_its_side = upright.transpose(Image.Transpose.ROTATE_90)  # stored as a camera stores it
    tagged = _jpeg(on_its_side, orientation=6)  # "rotate 90 clockwise to view"
    as_shown = ImageOps.exif_transpose(Image.open(io.BytesIO(tagged)))
    assert as_shown.size == upright.size

    got = vectors(emb.embed_images([
        ImageInput("mem://tagged.jpg", tagged),
        encode(as_shown.convert("RGB"), "PNG", uri="mem://as-shown.png"),
        ImageInput("mem://untagged.jpg", _jpeg(on_its_side)),
        ImageInput("mem://upright.jpg", _jpeg(upright))]))
    tagged_v, shown_v, untagged_v, upright_v = got
    np.testing.assert_allclose(tagged_v, shown_v, atol=1e-5)
    assert float(tagged_v @ upright_v) > float(untagged_v @ upright_v)


def test_an_unreadable_image_fails_alone_and_its_neighbours_embed(checkpoint):
    emb = ClipEmbedder(checkpoint)
    good = images(2)
    results = emb.embed_images([
        good[0],
        ImageInput("mem://broken.jpg", b"\xff\xd8\xff\xe0 not really a JPEG"),
        good[1],
        ImageInput("oss://bucket/remote.jpg", None, signed_url="https://bucket.example/r.jpg")])

    for i in (1, 3):
        assert isinstance(results[i], AdapterError) and results[i].is_input_error
    assert "broken.jpg" in str(results[1]) and "signed URL" in str(results[3])
    np.testing.assert_allclose(vectors([results[0], results[2]]),
                               vectors(emb.embed_images(good)), atol=1e-5)
    assert emb.usage.snapshot()["Images"] == 2 + 2  # the failures were never run


def test_texts_embed_as_the_model_computes_them(checkpoint):
    emb = ClipEmbedder(checkpoint)
    texts = ["a red bus", "a green park", "a red bus", "a " + "very " * 40 + "long text"]
    got = vectors(emb.embed_texts(texts))
    assert got.shape == (4, PROJECTION_DIM) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(got[0], got[2])
    assert float(got[0] @ got[1]) < 0.999

    model = transformers.CLIPModel.from_pretrained(checkpoint).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(checkpoint)
    tokens = tokenizer(texts[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        direct = model.text_projection(model.text_model(**tokens).pooler_output).numpy()
    np.testing.assert_allclose(got[:2], [l2_normalise(v) for v in direct], atol=1e-5)
    assert emb.embed_texts([]) == []


def test_a_checkpoint_that_cannot_be_loaded_is_a_config_error_naming_it(checkpoint, tmp_path):
    missing = str(tmp_path / "no-such-checkpoint")
    with pytest.raises(ConfigError, match="no-such-checkpoint"):
        ClipEmbedder(missing)
    with pytest.raises(ConfigError, match="no-such-org/no-such-clip"):  # offline: no download
        open_embedder("clip", model="no-such-org/no-such-clip")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="empty"):
        ClipEmbedder(str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="model"):
        open_embedder("clip")
    with pytest.raises(ConfigError, match="batch_size"):
        ClipEmbedder(checkpoint, batch_size=0)
    with pytest.raises(ConfigError, match="embeddings only"):
        open_tagger("clip", model=checkpoint)


def test_an_index_job_then_a_text_search_finds_the_nearest_image(checkpoint, tmp_path):
    from mmdm.adapters.jobs import run_index_job
    from mmdm.adapters.metadata import open_store
    from mmdm.adapters.samples import generate_samples
    from mmdm.adapters.scan import build_file_metas
    from mmdm.adapters.search import SearchService
    from mmdm.query import parse
    from tests.fakes.numpy_vectors import NumpyVectorStore

    generate_samples(tmp_path / "images", per_scene=2)  # PNG, JPEG, GIF, BMP, TIFF, WEBP, ...
    store = open_store(f"sqlite:///{tmp_path / 'metadata.db'}")
    ds = store.create_dataset("clip", (tmp_path / "images").as_uri())
    store.create_version(ds.dataset_id)
    build_file_metas(store, ds.dataset_id, "v1")
    emb = ClipEmbedder(checkpoint, batch_size=4)
    index = NumpyVectorStore(emb.dimension)

    summary = run_index_job(store, ds.dataset_id, "v1", embedder=emb, vector_store=index)

    metas = list(store.iter_file_metas(ds.dataset_id, "v1"))
    assert (summary.status, summary.completed, len(metas)) == ("Succeeded", 10, 10)
    assert store.get_job(summary.job_id).result["Usage"] == {"Calls": 3, "Images": 10}
    files = [ImageInput(m.uri, (tmp_path / "images" / m.file_dir / m.file_name).read_bytes())
             for m in metas]
    unit = dict(zip((m.file_meta_id for m in metas), vectors(emb.embed_images(files))))
    [query] = emb.embed_texts(["a red bus"])
    ranked = sorted(unit, key=lambda i: -float(unit[i] @ query))

    page = SearchService(store, vector_store=index, embedder=emb).search(
        ds.dataset_id, "v1", parse("Content:'a red bus' AND TopK=3"))
    assert [m.file_meta_id for m, _ in page.items] == ranked[:3]
    assert page.items[0][1] == pytest.approx(float(unit[ranked[0]] @ query), abs=1e-5)
    store.close()


def test_an_mmdm_clip_connection_embeds_and_runs_mmdm_eval(checkpoint, tmp_path, monkeypatch,
                                                            capsys):
    from mmdm.adapters.evaluation import evaluate_embedding, write_synthetic_set
    from mmdm.airflow_plugin.cli import main
    from mmdm.airflow_plugin.hooks.models import ClipHook, embedder_for

    monkeypatch.setenv("AIRFLOW_CONN_TINY_CLIP", json.dumps({
        "conn_type": "mmdm_clip", "extra": {"model": checkpoint, "device": "cpu",
                                            "batch_size": "8"}}))
    emb = embedder_for("tiny_clip")
    assert isinstance(emb, ClipEmbedder)
    assert (emb.model, emb.device, emb.max_batch, emb.dimension) == (
        checkpoint, "cpu", 8, PROJECTION_DIM)
    assert ClipHook("tiny_clip").get_embedder().model == checkpoint
    np.testing.assert_allclose(vectors(emb.embed_images(images(2))),
                               vectors(ClipEmbedder(checkpoint).embed_images(images(2))),
                               atol=1e-5)
    monkeypatch.setenv("AIRFLOW_CONN_NO_MODEL", json.dumps({"conn_type": "mmdm_clip"}))
    with pytest.raises(ConfigError, match="model"):
        embedder_for("no_model")

    write_synthetic_set(tmp_path / "set", per_hue=2, seed=1)  # 16 images, 10 tags
    capsys.readouterr()  # Airflow's log of loading its configuration
    code = main(["eval", "--data", str(tmp_path / "set"), "--connection", "tiny_clip",
                 "--json"])
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert code == 0 and out["embedded_now"]["images"] == 16 and out["queries"] == "text"
    direct = evaluate_embedding(tmp_path / "set", embedder_for("tiny_clip"))
    assert out["precision"] == {str(k): v for k, v in direct.precision.items()}


def test_zero_shot_tags_are_those_nearest_by_the_embedders_own_vectors(checkpoint):
    from mmdm.adapters.models.zero_shot import ZeroShotTagger

    emb = ClipEmbedder(checkpoint)
    definition = TagDefinition("", {"red": "a red thing", "green": "a green park",
                                    "bus": "a bus on a road", "snow": "snow on a hill"})
    image = images(1)[0]
    [vector] = emb.embed_images([image])
    texts = emb.embed_texts([f"{name}: {text}" for name, text in definition.tags.items()])
    sims = {name: float(v @ vector) for name, v in zip(definition.tags, texts)}
    threshold = float(np.median(list(sims.values())))  # some tags pass, some do not

    result = ZeroShotTagger(emb, threshold).tag(image, definition)

    assert result.tags == [name for name in definition.tags if sims[name] > threshold]
    assert 0 < len(result.tags) < len(definition.tags)
    assert json.loads(result.raw) == {n: pytest.approx(s, abs=1e-4) for n, s in sims.items()}
