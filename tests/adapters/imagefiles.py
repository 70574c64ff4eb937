"""Image bytes for scan tests: every supported format, and the files a scan must refuse."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

FORMATS = {  # extension -> (Pillow format, MIME type)
    "jpg": ("JPEG", "image/jpeg"), "jpeg": ("JPEG", "image/jpeg"), "png": ("PNG", "image/png"),
    "gif": ("GIF", "image/gif"), "bmp": ("BMP", "image/bmp"), "tiff": ("TIFF", "image/tiff"),
    "webp": ("WEBP", "image/webp"),
}


def image_bytes(ext: str, size=(40, 30), colour=(200, 30, 30)) -> bytes:
    fmt = FORMATS[ext][0]
    im = Image.new("RGB", size, colour)
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def animated_gif(frames: int = 3) -> bytes:
    ims = [Image.new("RGB", (20, 20), (i * 60, 0, 0)) for i in range(frames)]
    buf = io.BytesIO()
    ims[0].save(buf, "GIF", save_all=True, append_images=ims[1:])
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny file whose header claims an enormous image."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0"))
            + _chunk(b"IEND", b""))
