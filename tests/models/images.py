"""Generated test images: flat colours, busy scenes, and the copies a dataset picks up."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mmdm.adapters.models.base import ImageInput


def encode(im: Image.Image, fmt: str = "PNG", uri: str = "mem://image", quality: int = 90
           ) -> ImageInput:
    buf = io.BytesIO()
    im.save(buf, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return ImageInput(uri, buf.getvalue(), f"image/{fmt.lower()}")


def flat(colour: tuple[int, int, int], size: tuple[int, int] = (120, 90)) -> Image.Image:
    return Image.new("RGB", size, colour)


def scene(seed: int, size: tuple[int, int] = (256, 256), noise: int = 12) -> Image.Image:
    """Random filled rectangles and ellipses on a random background, plus sensor-like noise."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(3, 9))):
        x, y = int(rng.integers(0, size[0] - 20)), int(rng.integers(0, size[1] - 20))
        w, h = (int(v) for v in rng.integers(15, size[0] // 2, 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = draw.rectangle if rng.random() < 0.5 else draw.ellipse
        shape([x, y, x + w, y + h], fill=colour)
    pixels = np.asarray(im, dtype=np.int16) + rng.integers(-noise, noise + 1, (size[1], size[0], 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def blurred(im: Image.Image, radius: float = 3.0) -> Image.Image:
    return im.filter(ImageFilter.GaussianBlur(radius))


def resized_recompressed(im: Image.Image, scale: float = 0.6, quality: int = 60) -> ImageInput:
    """What a re-upload does to a photo: smaller, and JPEG-compressed again."""
    small = im.resize((int(im.width * scale), int(im.height * scale)), Image.Resampling.BILINEAR)
    return encode(small, "JPEG", uri="mem://copy", quality=quality)
