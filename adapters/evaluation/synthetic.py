"""A generated labelled set whose tags are things pixels show: a hue name and dark/bright.

Lets anyone try the evaluation without data, and gives the offline local model (which sees
colour and brightness, not meaning) a set it can be judged on. Each image is mostly one hue,
jittered in hue, saturation and brightness, with a few shapes of random other colours and
sensor-like noise on top, so the tags are visible but not trivially separable.
"""

from __future__ import annotations

import colorsys
import json
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .labelled_set import DATASET_FILE, IMAGES_DIR

HUES = {"red": 0, "orange": 30, "yellow": 55, "green": 120, "cyan": 180, "blue": 225,
        "purple": 275, "pink": 320}  # degrees
BRIGHTNESS = {"dark": (0.25, 0.45), "bright": (0.75, 1.0)}  # HSV value range
_FORMATS = [("jpg", "JPEG"), ("png", "PNG"), ("webp", "WEBP")]  # not only the seed's .jpg


def _rgb(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb((hue % 360) / 360.0, saturation, value)
    return int(r * 255), int(g * 255), int(b * 255)


def make_image(rng: random.Random, hue: float, value_range: tuple[float, float]) -> Image.Image:
    size = (rng.randint(48, 96), rng.randint(48, 96))
    im = Image.new("RGB", size, _rgb(hue + rng.uniform(-8, 8), rng.uniform(0.55, 1.0),
                                     rng.uniform(*value_range)))
    draw = ImageDraw.Draw(im)
    for _ in range(rng.randint(1, 3)):  # distractors: up to about a quarter of the area
        w, h = rng.randint(6, size[0] // 2), rng.randint(6, size[1] // 2)
        x, y = rng.randint(0, size[0] - w), rng.randint(0, size[1] - h)
        colour = _rgb(rng.uniform(0, 360), rng.uniform(0, 1), rng.uniform(0.1, 1))
        (draw.rectangle if rng.random() < 0.5 else draw.ellipse)([x, y, x + w, y + h],
                                                                   fill=colour)
    noise = np.random.default_rng(rng.getrandbits(32)).integers(-10, 11, (size[1], size[0], 3))
    pixels = np.clip(np.asarray(im, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def write_synthetic_set(root: str | Path, *, per_hue: int = 26, seed: int = 0) -> dict[str, int]:
    """``per_hue`` images of each of HUES, alternately dark and bright, as ``dataset.jsonl``
    (lines shuffled, ids given with their extension) plus ``images/``. Tags: the hue's name and
    ``dark`` or ``bright``."""
    rng = random.Random(seed)
    root = Path(root)
    (root / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    lines = []
    for h, (name, hue) in enumerate(HUES.items()):
        for i in range(per_hue):
            brightness = "dark" if i % 2 == 0 else "bright"
            ext, fmt = _FORMATS[(h + i) % len(_FORMATS)]
            key = f"{name}-{i:03d}"
            options = {} if fmt == "PNG" else {"quality": 90}
            make_image(rng, hue, BRIGHTNESS[brightness]).save(
                root / IMAGES_DIR / f"{key}.{ext}", fmt, **options)
            lines.append({"image_id": f"{key}.{ext}", "tags": [name, brightness]})
    rng.shuffle(lines)  # so a tag's first ground-truth images are not all alike
    with (root / DATASET_FILE).open("w", encoding="utf-8") as out:
        for line in lines:
            out.write(json.dumps(line) + "\n")
    return {"images": len(lines), "tags": len(HUES) + len(BRIGHTNESS)}
