"""How an ``ImageInput`` travels to a model service: a signed URL or a base64 data URI."""

from __future__ import annotations

import base64

from ..errors import AdapterError
from .base import ImageInput

# Leading bytes -> the subtype a data URI names, for inputs whose content type is not image/*.
_MAGIC = [
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
]


def image_subtype(image: ImageInput) -> str:
    """``jpeg``, ``png``, ...: from the content type, else sniffed from the bytes."""
    kind, _, subtype = image.content_type.partition("/")
    if kind == "image" and subtype:
        return subtype.split(";")[0].strip().lower()
    data = image.data or b""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for magic, subtype in _MAGIC:
        if data.startswith(magic):
            return subtype
    return "jpeg"


def data_uri(image: ImageInput) -> str:
    """``data:image/<fmt>;base64,<data>``, the inline form every service here accepts.

    Inline data also keeps the DashScope SDK from uploading anything that looks like a local
    path to DashScope's own storage.
    """
    if image.data is None:
        raise AdapterError(f"{image.uri}: no image bytes to send", is_input_error=True)
    encoded = base64.b64encode(image.data).decode("ascii")
    return f"data:image/{image_subtype(image)};base64,{encoded}"


def image_reference(image: ImageInput, *, prefer_url: bool = True) -> str:
    """The value of a request's ``image`` field: the signed URL or the data URI.

    Raises:
        AdapterError: (input error) when the input carries neither bytes nor a URL.
    """
    if image.signed_url and (prefer_url or image.data is None):
        return image.signed_url
    if image.data is not None:
        return data_uri(image)
    raise AdapterError(f"{image.uri}: neither image bytes nor a signed URL", is_input_error=True)
