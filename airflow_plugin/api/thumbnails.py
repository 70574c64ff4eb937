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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from .errors import bad_parameter

DEFAULT_MODE = "w_200"
MAX_SIDE = 16384
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
    """A JPEG thumbnail of the image ``data``."""
    with Image.open(io.BytesIO(data)) as src:
        src.seek(0)  # first frame of an animated GIF/WebP
        im = ImageOps.exif_transpose(src).convert("RGB")
    size = spec.target(im.size)
    if spec.mode == "fill":
        out = ImageOps.fit(im, size, Image.Resampling.LANCZOS)
    elif spec.mode == "pad":
        out = ImageOps.pad(im, size, Image.Resampling.LANCZOS, color=spec.color)
    else:
        out = im.resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=85)
    return buf.getvalue()


class ThumbnailCache:
    """Thumbnails on disk under ``root``, one file per (meta id, fingerprint, mode)."""

    def __init__(self, root: Path):
        self.root = root

    @staticmethod
    def key(file_meta_id: str, fingerprint: str | None, mode: str) -> str:
        return hashlib.sha256(f"{file_meta_id}\0{fingerprint}\0{mode}".encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.jpg"

    def get_or_make(self, key: str, make: Callable[[], bytes]) -> bytes:
        path = self.path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        data = make()
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a concurrent reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return data
