"""The offline local model: pixel tags on generated images, and near-duplicate search."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from mmdm.adapters.errors import AdapterError, ConfigError, NotSupportedError
from mmdm.adapters.models.base import ImageInput, TagDefinition
from mmdm.adapters.models.local import (
    BLURRY_LAPLACIAN_VAR,
    LOCAL_TAG_DEFINITION,
    LocalImageEmbedder,
    LocalPixelTagger,
)
from tests.models.driving_tags import DRIVING_DEFINITION
from tests.models.images import blurred, encode, flat, resized_recompressed, scene

TAGGER = LocalPixelTagger()


def tags(im: Image.Image, definition: TagDefinition = LOCAL_TAG_DEFINITION, fmt: str = "PNG"
         ) -> list[str]:
    return TAGGER.tag(encode(im, fmt), definition).tags


def test_white_image_is_over_exposed() -> None:
    found = tags(flat((255, 255, 255)))
    assert "over-exposed" in found and "under-exposed" not in found


def test_black_image_is_under_exposed() -> None:
    found = tags(flat((0, 0, 0)))
    assert "under-exposed" in found and "over-exposed" not in found


def test_flat_grey_is_low_contrast_grayscale_and_not_called_blurry() -> None:
    found = tags(flat((128, 128, 128)))
    assert {"low contrast", "grayscale"} <= set(found)
    assert not {"blurry", "over-exposed", "under-exposed"} & set(found)


def test_sharp_busy_image_is_not_blurry_and_its_blurred_copy_is() -> None:
    sharp = scene(7, size=(320, 240))
    sharp_tags, soft_tags = tags(sharp, fmt="JPEG"), tags(blurred(sharp), fmt="JPEG")
    assert "blurry" not in sharp_tags and "low contrast" not in sharp_tags
    assert "blurry" in soft_tags and "low contrast" not in soft_tags
    stats = json.loads(TAGGER.tag(encode(blurred(sharp)), LOCAL_TAG_DEFINITION).raw)
    assert stats["laplacian_var"] < BLURRY_LAPLACIAN_VAR


def test_colours() -> None:
    assert "red" in tags(flat((220, 20, 20)))
    assert "grayscale" not in tags(flat((220, 20, 20)))
    assert "blue" in tags(flat((30, 60, 200)))
    half = flat((20, 180, 40), size=(100, 100))
    half.paste(flat((240, 220, 20), size=(50, 100)), (0, 0))
    found = tags(half)
    assert "green" in found and "yellow" in found and "red" not in found


def test_size_and_orientation() -> None:
    assert {"tiny", "landscape"} <= set(tags(flat((90, 90, 200), size=(60, 40))))
    assert "tiny" not in tags(flat((90, 90, 200), size=(640, 64)))
    assert "portrait" in tags(flat((90, 90, 200), size=(90, 120)))
    assert "square" in tags(flat((90, 90, 200), size=(100, 103)))


def test_exif_rotation_counts_for_orientation() -> None:
    im = flat((90, 90, 200), size=(160, 90))  # stored landscape, shown rotated a quarter turn
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif.tobytes())
    result = TAGGER.tag(ImageInput("mem://r.jpg", buf.getvalue()), LOCAL_TAG_DEFINITION)
    assert "portrait" in result.tags
    assert json.loads(result.raw)["width"] == 90


def test_transparent_pixels_count_as_white() -> None:
    found = tags(Image.new("RGBA", (80, 80), (0, 0, 0, 0)))
    assert "over-exposed" in found and "under-exposed" not in found


def test_only_tags_the_definition_names_are_reported_under_its_names() -> None:
    definition = TagDefinition("", {"红色": "", "Tunnel": "", "blurry": "", "Blurred": ""})
    image = blurred(scene(3, size=(200, 200)))
    image.paste(flat((220, 20, 20), size=(200, 120)), (0, 0))
    assert tags(blurred(image), definition) == ["红色", "blurry"]
    # The driving definition's "Overexposure" is measurable; nothing else in it is.
    assert tags(flat((255, 255, 255)), DRIVING_DEFINITION) == ["Overexposure"]
    assert tags(scene(4), DRIVING_DEFINITION) == []


def test_describe_is_deterministic() -> None:
    image = encode(flat((30, 60, 200), size=(120, 90)))
    first = TAGGER.tag(image, LOCAL_TAG_DEFINITION, describe=True)
    assert first == TAGGER.tag(image, LOCAL_TAG_DEFINITION, describe=True)
    assert first.description.startswith("A 120x90 landscape colour image; mostly blue")
    assert first.keywords == first.tags[:5]


def test_unreadable_image_is_an_input_error() -> None:
    with pytest.raises(AdapterError) as info:
        TAGGER.tag(ImageInput("mem://x.jpg", b"\xff\xd8\xffnot really"), LOCAL_TAG_DEFINITION)
    assert info.value.is_input_error
    with pytest.raises(AdapterError):
        TAGGER.tag(ImageInput("oss://b/x.jpg", None, signed_url="https://x"),
                   LOCAL_TAG_DEFINITION)


def nearest_copies(embedder: LocalImageEmbedder, count: int) -> float:
    """Share of resized+recompressed copies whose top-1 neighbour (among all originals and
    all other copies) is their original."""
    scenes = [scene(seed) for seed in range(count)]
    originals = embedder.embed_images([encode(im, "JPEG") for im in scenes])
    copies = embedder.embed_images([resized_recompressed(im) for im in scenes])
    matrix = np.stack(originals + copies)
    hits = 0
    for i, query in enumerate(copies):
        scores = matrix @ query
        scores[count + i] = -np.inf  # not itself
        hits += int(np.argmax(scores)) == i
    return hits / count


def test_resized_recompressed_copy_finds_its_original() -> None:
    assert nearest_copies(LocalImageEmbedder(), 30) == 1.0


@pytest.mark.parametrize("dimension", [64, 1024])
def test_other_dimensions_keep_near_duplicates(dimension: int) -> None:
    embedder = LocalImageEmbedder(dimension=dimension)
    assert nearest_copies(embedder, 30) == 1.0
    [vector] = embedder.embed_images([encode(scene(1))])
    assert vector.shape == (dimension,) and vector.dtype == np.float32


def test_vectors_are_deterministic_unit_float32() -> None:
    image = encode(scene(5), "JPEG")
    first, again = LocalImageEmbedder().embed_images([image, image])
    fresh = LocalImageEmbedder().embed_images([image])[0]
    assert first.dtype == np.float32 and first.shape == (256,)
    assert abs(float(np.linalg.norm(first)) - 1.0) < 1e-5
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, fresh)


def test_different_images_are_not_near_duplicates() -> None:
    a, b = LocalImageEmbedder().embed_images([encode(scene(1)), encode(scene(2))])
    c = LocalImageEmbedder().embed_images([resized_recompressed(scene(1))])[0]
    assert float(a @ c) > float(a @ b) + 0.2


def test_bad_image_is_an_item_error() -> None:
    results = LocalImageEmbedder().embed_images([ImageInput("mem://bad", b"nope"),
                                                 encode(scene(1))])
    assert isinstance(results[0], AdapterError) and results[0].is_input_error
    assert isinstance(results[1], np.ndarray)


def test_text_is_not_supported() -> None:
    embedder = LocalImageEmbedder()
    assert embedder.supports_text is False
    with pytest.raises(NotSupportedError) as info:
        embedder.embed_texts(["a red car"])
    message = str(info.value)
    assert "cannot embed text" in message and "DashScope" in message and "EAS" in message
    assert info.value.is_input_error and not info.value.retriable


def test_too_few_dimensions_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        LocalImageEmbedder(dimension=4)
