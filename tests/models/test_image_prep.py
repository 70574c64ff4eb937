"""Images leave in a form each provider takes: seven formats (an EXIF-rotated JPEG among them),
small and just over each provider's byte limit, against every row of the limits table; and
through a real client, the request carries the prepared image and the client counts it."""

from __future__ import annotations

import base64
import io
from functools import lru_cache

import numpy as np
import pytest
from PIL import Image

from mmdm.adapters.models import open_embedder
from mmdm.adapters.models.base import ImageInput
from mmdm.adapters.models.image_prep import LIMITS, ImageLimits, prepare_image
from mmdm.adapters.models.usage import usage_of

FORMATS = ["JPEG", "PNG", "BMP", "GIF", "WEBP", "TIFF", "JPEG-ROTATED"]
SUBTYPE = {"JPEG": "jpeg", "PNG": "png", "BMP": "bmp", "GIF": "gif", "WEBP": "webp",
           "TIFF": "tiff", "JPEG-ROTATED": "jpeg"}
ROWS = sorted({limits for limits in LIMITS.values()}, key=lambda x: (x.max_bytes, x.formats))


@lru_cache(maxsize=None)
def _image(fmt: str, min_bytes: int) -> bytes:
    """An image of ``fmt`` at least ``min_bytes`` long (noise does not compress), 4:3, wider
    than tall; the rotated JPEG stores it so with EXIF orientation 6 (turn 90° to view)."""
    side = 64
    while True:
        w, h = side, side * 3 // 4
        rng = np.random.default_rng(side)
        im = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        buf = io.BytesIO()
        if fmt == "JPEG-ROTATED":
            exif = Image.Exif()
            exif[0x0112] = 6
            im.save(buf, "JPEG", quality=95, exif=exif)
        elif fmt == "GIF":
            im.convert("P").save(buf, "GIF")
        elif fmt == "WEBP":
            im.save(buf, "WEBP", lossless=True)
        else:
            im.save(buf, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
        if buf.tell() >= min_bytes:
            return buf.getvalue()
        side = int(side * max(1.3, (min_bytes / buf.tell()) ** 0.5 * 1.05))


@pytest.mark.parametrize("limits", ROWS, ids=lambda x: f"{'+'.join(x.formats)}-"
                         f"{(x.max_bytes or 0) // (1024 * 1024)}MB")
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("size", ["small", "over-limit"])
def test_every_format_and_size_leaves_as_the_provider_takes_it(limits: ImageLimits, fmt: str,
                                                               size: str) -> None:
    data = _image(fmt, 0 if size == "small" else limits.max_bytes + 1)
    original = Image.open(io.BytesIO(data))
    image = ImageInput(f"mem://x.{fmt.lower()}", data, f"image/{SUBTYPE[fmt]}")
    ready, change = prepare_image(image, limits)
    out = Image.open(io.BytesIO(ready.data))
    assert out.format.lower() in limits.formats and ready.content_type == (
        f"image/{out.format.lower()}")
    assert len(ready.data) <= limits.max_bytes
    accepted = SUBTYPE[fmt] in limits.formats and fmt != "JPEG-ROTATED"
    if accepted and size == "small":
        assert change is None and ready is image  # nothing to do: the same bytes
        return
    assert change is not None
    w, h = original.size
    if fmt == "JPEG-ROTATED":  # stored wide, shown tall: the pixels now stand upright
        assert "EXIF-rotated" in change and out.height > out.width
        assert out.size == (h, w) or size == "over-limit"
    elif size == "small":
        assert out.size == (w, h) and f"{SUBTYPE[fmt]} to" in change
    else:
        assert "over the byte limit" in change or f"{SUBTYPE[fmt]} to" in change
        assert out.width / out.height == pytest.approx(w / h, rel=0.02)  # shape kept


def test_a_side_limit_downscales_keeping_the_shape() -> None:
    data = _image("PNG", 0)
    ready, change = prepare_image(ImageInput("mem://a.png", data, "image/png"),
                                  ImageLimits(("png", "jpeg"), max_side=32))
    assert change == "over the side limit" and Image.open(io.BytesIO(ready.data)).size == (
        32, 24)


def test_transparency_stays_png_where_the_provider_takes_png() -> None:
    im = Image.new("RGBA", (40, 30), (255, 0, 0, 0))
    buf = io.BytesIO()
    im.save(buf, "WEBP", lossless=True)
    ready, _ = prepare_image(ImageInput("mem://a.webp", buf.getvalue(), "image/webp"),
                             ImageLimits(("jpeg", "png"), 3 * 1024 * 1024))
    assert Image.open(io.BytesIO(ready.data)).mode == "RGBA" and ready.content_type == (
        "image/png")


def test_the_embedding_request_carries_the_prepared_image(fake_dashscope) -> None:
    """multimodal-embedding-v1 takes JPG, PNG and BMP up to 3 MB: a WEBP goes as JPEG, a 4 MB
    PNG shrinks under 3 MB, a small PNG goes as it is; the client counts two preparations."""
    embedder = open_embedder("dashscope", api_key=fake_dashscope.api_key,
                             base_url=fake_dashscope.base_url, model="multimodal-embedding-v1")
    webp, big = _image("WEBP", 0), _image("PNG", 4 * 1024 * 1024)
    small = _image("PNG", 0)
    vectors = embedder.embed_images([ImageInput("mem://a.webp", webp, "image/webp"),
                                     ImageInput("mem://b.png", big, "image/png"),
                                     ImageInput("mem://c.png", small, "image/png")])
    assert all(isinstance(v, np.ndarray) for v in vectors)
    sent = [r.body["input"]["contents"][0]["image"] for r in fake_dashscope.requests]
    assert sent[0].startswith("data:image/jpeg;base64,")
    assert len(base64.b64decode(sent[1].split(",", 1)[1])) <= 3 * 1024 * 1024
    assert sent[2] == "data:image/png;base64," + base64.b64encode(small).decode()
    assert usage_of(embedder)["PreparedImages"] == 2
