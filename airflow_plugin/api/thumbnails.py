"""PAI's ``ThumbnailMode`` (OSS image-resize syntax) rendered with Pillow, cached on disk.

Grammar (pai-compat §2.3): ``p_{1-100}``; ``w_{n}``; ``h_{n}``; ``w_{n},h_{n}`` (fit inside,
OSS's default ``m_lfit``); ``m_pad,w_,h_[,color_RRGGBB]`` (fit, then pad, white by default);
``m_fill,w_,h_`` (cover, then centre-crop); ``m_fixed,w_,h_`` (stretch). Sides are 1-16384.
Unlike OSS's default ``limit_1`` we also enlarge small images, so a thumbnail always has the
size its mode asks for (the gallery lays out fixed cells).

The cache key is meta id + file fingerprint + mode: an edited file gets a new key, so cached
files never need invalidating and responses can be cached by the browser.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from .errors import ApiError, bad_parameter

DEFAULT_MODE = "w_200"
MAX_SIDE = 16384
MAX_OUTPUT_PIXELS = 4096 * 4096  # a 16384-wide strip, or a 4096-square view, not more
MAX_SOURCE_PIXELS = 100_000_000  # decoding more costs gigabytes for one request
CACHE_BYTES = 512 * 1024 * 1024
_PART = re.compile(r"([a-z]+)_([0-9a-zA-Z]+)\Z")
_MODES = ("lfit", "pad", "fill", "fixed")


@dataclass(frozen=True)
class ThumbnailSpec:
    mode: str  # lfit | pad | fill | fixed | percent
    width: int | None = None
    height: int | None = None
    percent: int | None = None
    color: tuple[int, int, int] = (255, 255, 255)

    def target(self, size: tuple[int, int]) -> tuple[int, int]:
        """The output size for a source of ``size``."""
        w, h = size
        if self.mode == "percent":
            return max(1, round(w * self.percent / 100)), max(1, round(h * self.percent / 100))
        if self.width and not self.height:
            return self.width, max(1, round(h * self.width / w))
        if self.height and not self.width:
            return max(1, round(w * self.height / h)), self.height
        if self.mode == "lfit":
            scale = min(self.width / w, self.height / h)
            return max(1, round(w * scale)), max(1, round(h * scale))
        return self.width, self.height


def _side(name: str, value: str) -> int:
    n = int(value) if value.isdigit() else 0
    if not 1 <= n <= MAX_SIDE:
        raise bad_parameter("ThumbnailMode", f"{name}_ takes 1-{MAX_SIDE}, not {value!r}")
    return n


def parse_mode(text: str | None) -> ThumbnailSpec:
    """Parse a ThumbnailMode; raises a 400 ``InvalidParameter.ThumbnailMode`` on bad input."""
    parts: dict[str, str] = {}
    for raw in (text or DEFAULT_MODE).replace(" ", "").lower().split(","):
        m = _PART.match(raw)
        if m is None or m.group(1) in parts:
            raise bad_parameter("ThumbnailMode", f"cannot read {raw!r} in ThumbnailMode "
                                f"{text!r}: expected e.g. w_200, p_50 or m_fill,w_100,h_100")
        parts[m.group(1)] = m.group(2)
    unknown = set(parts) - {"m", "w", "h", "p", "color"}
    if unknown:
        raise bad_parameter("ThumbnailMode", f"unknown ThumbnailMode part(s) {sorted(unknown)}")
    if "p" in parts:
        if len(parts) > 1:
            raise bad_parameter("ThumbnailMode", "p_ cannot be combined with other parts")
        p = int(parts["p"]) if parts["p"].isdigit() else 0
        if not 1 <= p <= 100:
            raise bad_parameter("ThumbnailMode", f"p_ takes 1-100, not {parts['p']!r}")
        return ThumbnailSpec("percent", percent=p)
    mode = parts.get("m", "lfit")
    if mode not in _MODES:
        raise bad_parameter("ThumbnailMode", f"m_{mode} is not one of m_{', m_'.join(_MODES)}")
    width = _side("w", parts["w"]) if "w" in parts else None
    height = _side("h", parts["h"]) if "h" in parts else None
    if width is None and height is None:
        raise bad_parameter("ThumbnailMode", "ThumbnailMode needs w_, h_ or p_")
    if mode != "lfit" and (width is None or height is None):
        raise bad_parameter("ThumbnailMode", f"m_{mode} needs both w_ and h_")
    color = (255, 255, 255)
    if "color" in parts:
        if mode != "pad" or not re.fullmatch(r"[0-9a-f]{6}", parts["color"]):
            raise bad_parameter("ThumbnailMode", "color_ takes RRGGBB hex, with m_pad only")
        hexes = parts["color"]
        color = (int(hexes[0:2], 16), int(hexes[2:4], 16), int(hexes[4:6], 16))
    return ThumbnailSpec(mode, width, height, color=color)


def render(data: bytes, spec: ThumbnailSpec) -> bytes:
    """A JPEG thumbnail of the image ``data``; 400 for a mode whose output would exceed
    ``MAX_OUTPUT_PIXELS``, 422 for a source over ``MAX_SOURCE_PIXELS`` (both checked from the
    header, before anything is decoded)."""
    with Image.open(io.BytesIO(data)) as src:
        if src.width * src.height > MAX_SOURCE_PIXELS:
            raise ApiError(422, "InvalidImage.TooLarge", f"the image has {src.width}x"
                           f"{src.height} pixels; thumbnails are made of images up to "
                           f"{MAX_SOURCE_PIXELS:,} pixels")
        size = spec.target((src.height, src.width) if _rotated(src) else src.size)
        if size[0] * size[1] > MAX_OUTPUT_PIXELS:
            raise bad_parameter("ThumbnailMode", f"a {size[0]}x{size[1]} thumbnail is larger "
                                f"than {MAX_OUTPUT_PIXELS:,} pixels")
        src.seek(0)  # first frame of an animated GIF/WebP
        src.draft("RGB", size)  # JPEG: decode at a fraction of the size when that suffices
        im = ImageOps.exif_transpose(src).convert("RGB")
    if spec.mode == "fill":
        out = ImageOps.fit(im, size, Image.Resampling.LANCZOS)
    elif spec.mode == "pad":
        out = ImageOps.pad(im, size, Image.Resampling.LANCZOS, color=spec.color)
    else:
        out = im.resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _rotated(src: Image.Image) -> bool:
    """EXIF orientation swaps width and height (5-8)."""
    return src.getexif().get(0x0112, 1) in (5, 6, 7, 8)


class ThumbnailCache:
    """Thumbnails on disk under ``root``, one file per (meta id, fingerprint, mode), at most
    about ``max_bytes``: past it the least recently used go (a hit renews a file's time)."""

    def __init__(self, root: Path, max_bytes: int = CACHE_BYTES):
        self.root = root
        self.max_bytes = max_bytes
        self._bytes: int | None = None  # counted on the first write, then kept up to date
        self._lock = threading.Lock()

    @staticmethod
    def key(file_meta_id: str, fingerprint: str | None, mode: str) -> str:
        return hashlib.sha256(f"{file_meta_id}\0{fingerprint}\0{mode}".encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.jpg"

    def get_or_make(self, key: str, make: Callable[[], bytes]) -> bytes:
        path = self.path(key)
        try:
            data = path.read_bytes()
            os.utime(path)
            return data
        except FileNotFoundError:
            pass
        data = make()
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a concurrent reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        self._added(len(data))
        return data

    def _files(self) -> list[tuple[float, int, Path]]:
        out = []
        for path in self.root.glob("*/*.jpg"):
            try:
                st = path.stat()
            except FileNotFoundError:  # another process pruned it
                continue
            out.append((st.st_mtime, st.st_size, path))
        return out

    def _added(self, size: int) -> None:
        with self._lock:
            if self._bytes is None:
                self._bytes = sum(s for _, s, _ in self._files())
            else:
                self._bytes += size
            if self._bytes <= self.max_bytes:
                return
            files = sorted(self._files())  # oldest first
            self._bytes = sum(s for _, s, _ in files)
            for _, s, path in files:
                if self._bytes <= self.max_bytes * 0.8:  # room for a while
                    break
                path.unlink(missing_ok=True)
                self._bytes -= s
