"""Read what a file's header says about the image, and reject files that would hurt later.

Only the header is decoded (Pillow opens lazily), so probing costs microseconds. Cheap
integrity checks on the file's tail catch the truncated uploads that a header read misses.

A header-only image (a header promising more image data than the file can hold) is refused as
"truncated" too, with checks that never refuse a valid file: no image data at all (a PNG
without IDAT, a JPEG without SOS); a PNG smaller than its pixels deflated at deflate's maximum
ratio (1032:1) at one bit a pixel; a GIF frame smaller than LZW's best case (a code of at least
2 bits yields at most 4096 pixels); an uncompressed BMP whose pixel rows overrun the file. JPEG,
WebP and compressed TIFF or BMP can legitimately be tiny for their size (arithmetic coding,
WebP lossless, RLE skips), so for them only the markers and declared sizes are checked.
"""

from __future__ import annotations

import io
import posixpath
import struct
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

# Pillow format -> (MIME type, the extensions that may carry it)
FORMATS = {
    "JPEG": ("image/jpeg", {".jpg", ".jpeg"}),
    "MPO": ("image/jpeg", {".jpg", ".jpeg"}),  # multi-picture JPEG from some cameras
    "PNG": ("image/png", {".png"}),
    "GIF": ("image/gif", {".gif"}),
    "BMP": ("image/bmp", {".bmp"}),
    "TIFF": ("image/tiff", {".tif", ".tiff"}),
    "WEBP": ("image/webp", {".webp"}),
}
Image.init()  # register TIFF and WebP too (preinit has only the common five)
_PLUGINS = [f for f in FORMATS if f != "MPO"]  # the JPEG plugin itself returns MPO images

HEAD_BYTES = 64 * 1024  # enough for every header we read, EXIF blocks included, as a rule
TAIL_BYTES = 1024


class ProbeError(Exception):
    """A file that is not a usable image. ``reason`` is a stable code, ``detail`` says why."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    mode: str
    format: str
    frames: int
    content_type: str

    def meta_attributes(self) -> dict[str, object]:
        return {"ImageWidth": self.width, "ImageHeight": self.height, "ImageFormat": self.format,
                "ImageMode": self.mode, "ImageFrames": self.frames}


class NeedMoreBytes(Exception):
    """The header did not fit in the bytes given; probe again with the whole file."""


def probe_image(
    name: str, head: bytes, size: int, tail: bytes | None = None, *, max_pixels: int,
    fp: BinaryIO | None = None,
) -> ImageInfo:
    """Identify the image in ``head`` (the first bytes, or all of them when ``len == size``).
    ``fp``: the whole file, open and seekable, read for the header instead of ``head``
    (then ``head`` and ``tail`` are only its first and last bytes, for the integrity checks).

    Raises:
        ProbeError: unreadable, truncated, wrongly named, or more than ``max_pixels`` pixels.
        NeedMoreBytes: ``head`` is a prefix that was too short for the header.
    """
    whole = fp is not None or len(head) >= size
    try:
        # Pillow warns above MAX_IMAGE_PIXELS; the max_pixels check below rejects those files.
        with Image.open(fp or io.BytesIO(head), formats=_PLUGINS) as im:
            fmt = im.format or ""
            width, height = im.size
            mode = im.mode
            tile = list(im.tile)  # before n_frames: seeking to other frames replaces it
            frames = getattr(im, "n_frames", 1) if whole else 1
            strips = _tiff_extent(im) if fmt == "TIFF" else 0
    except Image.DecompressionBombError as exc:
        raise ProbeError("decompression-bomb", str(exc)) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error) as exc:
        if not whole:
            raise NeedMoreBytes from exc
        if size == 0:
            raise ProbeError("empty-file", "the file is empty") from exc
        if isinstance(exc, UnidentifiedImageError):  # its message names a memory address
            raise ProbeError("not-an-image", "cannot identify an image: not a "
                             f"{', '.join(_PLUGINS[:-1])} or {_PLUGINS[-1]} file") from exc
        raise ProbeError("not-an-image", f"cannot identify an image: {exc}") from exc
    if width * height > max_pixels:
        raise ProbeError("decompression-bomb",
                         f"{width}x{height} = {width * height} pixels exceeds {max_pixels}")
    content_type, extensions = FORMATS[fmt]
    ext = posixpath.splitext(name)[1].lower()
    if ext not in extensions:
        raise ProbeError("format-mismatch", f"the content is {fmt} but the name ends in {ext!r}")
    end = head if fp is None and whole else (tail or b"")
    problem = _truncation(fmt, head, end, size, strips)
    if problem:
        raise ProbeError("truncated", problem)
    if not tile and not whole and fmt in _TILED:  # the image data may start past the head
        raise NeedMoreBytes
    problem = _header_only(fmt, tile, size)
    if problem:
        raise ProbeError("truncated", f"header-only image: {problem}")
    return ImageInfo(width, height, mode, "JPEG" if fmt == "MPO" else fmt, frames, content_type)


def _tiff_extent(im: Image.Image) -> int:
    """Where the last strip or tile of a TIFF ends, per its header."""
    tags = im.tag_v2  # type: ignore[attr-defined]
    offsets = tags.get(273) or tags.get(324) or ()
    counts = tags.get(279) or tags.get(325) or ()
    return max((o + c for o, c in zip(offsets, counts)), default=0)


def _truncation(fmt: str, head: bytes, end: bytes, size: int, tiff_extent: int) -> str | None:
    """Why the file looks cut short, or None. ``end`` holds the file's last bytes."""
    if fmt in ("JPEG", "MPO"):
        if end and b"\xff\xd9" not in end[-TAIL_BYTES:]:
            return "no JPEG end-of-image marker"
    elif fmt == "PNG":
        if end and b"IEND" not in end[-64:]:
            return "no PNG IEND chunk"
    elif fmt == "GIF":
        if end and not end.rstrip(b"\x00").endswith(b";"):
            return "no GIF trailer"
    elif fmt == "BMP":
        declared = struct.unpack_from("<I", head, 2)[0]
        if declared > size:
            return f"header declares {declared} bytes, file has {size}"
    elif fmt == "WEBP":
        declared = struct.unpack_from("<I", head, 4)[0] + 8
        if declared > size:
            return f"RIFF header declares {declared} bytes, file has {size}"
    elif fmt == "TIFF" and tiff_extent > size:
        return f"image data runs to byte {tiff_extent}, file has {size}"
    return None


_TILED = ("PNG", "JPEG", "MPO")  # formats whose image data Pillow locates on opening


def _header_only(fmt: str, tile: list, size: int) -> str | None:
    """Why the file cannot hold the image data its header describes, or None. Each bound is
    a floor no encoder can go below, so a valid file always passes (see the module doc)."""
    if not tile:  # Pillow stops at the first IDAT (PNG) or SOS (JPEG) it finds
        return "no image data after the header" if fmt in _TILED else None
    codec, box, offset, args = tile[0][:4]
    width, height = box[2] - box[0], box[3] - box[1]
    if fmt == "PNG":  # filter byte + 1 bit a pixel per row, deflated at most 1032:1
        need = offset + height * (1 + (width + 7) // 8) // 1032
    elif fmt == "GIF":  # >= 2 bits per LZW code, <= 4096 pixels per code
        need = offset + width * height * 2 // (4096 * 8)
    elif fmt == "BMP" and codec == "raw" and isinstance(args, tuple):  # rows of args[1] bytes
        need = offset + abs(args[1]) * height
    else:
        return None
    if need <= size:
        return None
    return (f"its {width}x{height} pixels need at least {need} bytes as {fmt}, "
            f"the file has {size}")
