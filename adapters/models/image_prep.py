"""Images as each model service accepts them: formats, bytes and sides, one row per model.

A service refuses what it does not read (DashScope's embedding models take JPG, PNG and BMP up
to 3 MB), so a GIF, WEBP or TIFF, a camera's 8 MB JPEG or a 12,000-pixel scan would fail on
the first real run. Before an image leaves, its client converts a format the service does not
take, downscales past its byte or side limit, and bakes EXIF orientation into the pixels (a
service that ignores the tag would see the photo on its side). Each change counts in the
client's usage (``PreparedImages``), so a job says how many images it had to convert.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps

from ..errors import AdapterError
from .base import ImageInput
from .imagedata import image_subtype

MB = 1024 * 1024
_ALIASES = {"jpg": "jpeg", "tif": "tiff", "x-ms-bmp": "bmp"}


@dataclass(frozen=True)
class ImageLimits:
    formats: tuple[str, ...]  # subtypes the service reads: "jpeg", "png", ...
    max_bytes: int | None = None
    max_side: int | None = None  # the longest side, in pixels


# (client kind, model name or its prefix) -> limits; the longest matching prefix wins.
LIMITS: dict[tuple[str, str], ImageLimits] = {
    # pai-compat §7.3: JPG/PNG/BMP up to 3 MB; qwen3-vl-embedding up to 5 MB.
    ("dashscope", "multimodal-embedding-v1"): ImageLimits(("jpeg", "png", "bmp"), 3 * MB),
    ("dashscope", "tongyi-embedding-vision"): ImageLimits(("jpeg", "png", "bmp"), 3 * MB),
    ("dashscope", "qwen3-vl-embedding"): ImageLimits(("jpeg", "png", "bmp"), 5 * MB),
    # §7.4: bmp/jpg/jpeg/png/tiff up to 5 MB (resized to 256x256 by the service).
    ("dashscope", "multimodal-embedding-one-peace"): ImageLimits(
        ("jpeg", "png", "bmp", "tiff"), 5 * MB),
    # §7.2: Qwen-VL files up to 10 MB; the common web formats.
    ("dashscope", "qwen-vl"): ImageLimits(("jpeg", "png", "bmp", "webp"), 10 * MB),
    # The OpenAI image input: PNG, JPEG, WEBP and non-animated GIF up to 20 MB; self-hosted
    # servers decode with PIL but share the same request size habits.
    ("openai", ""): ImageLimits(("jpeg", "png", "webp"), 20 * MB),
    # The EAS GME samples send JPEG; a sample-sized request keeps to the gateway's limits.
    ("eas", ""): ImageLimits(("jpeg", "png", "bmp"), 10 * MB),
}


def limits_for(kind: str, model: str) -> ImageLimits | None:
    rows = [(prefix, limits) for (k, prefix), limits in LIMITS.items()
            if k == kind and model.startswith(prefix)]
    return max(rows, key=lambda row: len(row[0]))[1] if rows else None


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(0x0112, 1))
    except (AttributeError, ValueError, TypeError):
        return 1


def prepare_image(image: ImageInput, limits: ImageLimits | None) -> tuple[ImageInput, str | None]:
    """The image as the service takes it, and what was changed (None when nothing was)."""
    if limits is None or image.data is None:
        return image, None
    subtype = _ALIASES.get(image_subtype(image), image_subtype(image))
    try:
        im = Image.open(io.BytesIO(image.data))
        size = im.size
    except Exception as exc:  # what the service would have refused anyway, said here
        raise AdapterError(f"{image.uri}: not a readable image ({type(exc).__name__})",
                           is_input_error=True) from None
    too_big = limits.max_bytes is not None and len(image.data) > limits.max_bytes
    too_wide = limits.max_side is not None and max(size) > limits.max_side
    rotated = _orientation(im) != 1
    if subtype in limits.formats and not (too_big or too_wide or rotated):
        return image, None
    try:
        im = ImageOps.exif_transpose(im)  # the first frame of an animation, upright
        # A format the service takes stays, unless bytes are the problem: JPEG shrinks best.
        keep = subtype if subtype in limits.formats and not too_big else None
        data, out = _encode(im, limits, keep)
    except AdapterError:
        raise
    except Exception as exc:
        raise AdapterError(f"{image.uri}: could not be converted for the model service "
                           f"({type(exc).__name__}: {exc})", is_input_error=True) from None
    why = [f"{subtype} to {out}" if subtype != out else "",
           "over the byte limit" if too_big else "", "over the side limit" if too_wide else "",
           "EXIF-rotated" if rotated else ""]
    return (ImageInput(image.uri, data, f"image/{out}"),
            "; ".join(w for w in why if w) or "re-encoded")


def _encode(im: Image.Image, limits: ImageLimits, keep: str | None) -> tuple[bytes, str]:
    """``keep`` (the source's format) when given; else PNG for images with transparency where
    the service takes PNG, else JPEG. Smaller and smaller (quality, then size) until it fits
    the byte limit."""
    alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    out = keep or ("png" if alpha and "png" in limits.formats else "jpeg")
    if out == "jpeg" and "jpeg" not in limits.formats:
        out = limits.formats[0]
    im = im.convert("RGBA" if alpha and out in ("png", "webp", "tiff") else "RGB")
    if limits.max_side and max(im.size) > limits.max_side:
        im.thumbnail((limits.max_side, limits.max_side), Image.Resampling.LANCZOS)
    for _ in range(12):
        for quality in (90, 80, 70) if out == "jpeg" else (None,):
            buf = io.BytesIO()
            im.save(buf, format=out.upper(), **({"quality": quality} if quality else {}))
            if limits.max_bytes is None or buf.tell() <= limits.max_bytes:
                return buf.getvalue(), out
        im = im.resize((max(1, im.width * 3 // 4), max(1, im.height * 3 // 4)),
                       Image.Resampling.LANCZOS)
    raise AdapterError("could not make the image small enough for the model service",
                       is_input_error=True)


def prepared(client: object, image: ImageInput, *, prefer_url: bool = True) -> ImageInput:
    """``image`` prepared for ``client``'s limits, counted in its usage when changed. A signed
    URL the client sends instead of the bytes goes as it is: the service fetches the object."""
    if prefer_url and image.signed_url:
        return image
    ready, change = prepare_image(image, getattr(client, "image_limits", None))
    if change is not None:
        usage = getattr(client, "usage", None)
        if usage is not None:
            usage.add(PreparedImages=1)
    return ready
