"""A labelled set whose rankings are fixed by construction, so Precision@k can be worked out by
hand (test_evaluate.py does).

125 images ``img000``..``img124``; tag queries are the axes of the vector space and every image
vector is unit length by construction (a padding axis takes up the rest), so an image's score
for a tag is exactly the value put on that tag's axis: the rank the test gives it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .scripted import ScriptedEmbedder, write_dataset, write_image

TAGS = ["sky", "red", "dog", "car", "snow", "fog"]
IDS = [f"img{n:03d}" for n in range(125)]
PREFIX = "Find an image of: "


def ids(start: int, stop: int) -> list[str]:
    return [f"img{n:03d}" for n in range(start, stop)]


SKY = ids(10, 70)  # each written twice on its line: n = 120
SNOW = ids(10, 65)
RED = ids(70, 77) + ["img001", "img002"]  # img001 has no file, img002 fails to embed
DOG = ["img090"]
CAR = ids(100, 112)
FOG = ["img115", "img116"]  # its text fails to embed

# Each tag's ranking starts with these, in this order; every other image follows in id order.
HEADS = {
    "sky": SKY,
    "red": ["img080", "img070", "img002", "img071", "img081", "img082", "img072", "img083",
            "img073", "img074"],
    "dog": ["img091", "img090"],
    "car": ["img100", "img120", "img101", "img102", "img121", "img103", "img104", "img105",
            "img122", "img106", "img107", "img123", "img108"],
    "snow": ["img069", "img068", "img067", "img066", "img065", *SNOW],
    "fog": FOG,
}
# Stored under other extensions: the lookup must find them (img006 has a .jpg and a .png).
OTHER_FILES = {"img003": "png", "img004": "webp", "img005": "JPEG", "img007": "tiff"}


def _vectors() -> dict[str, np.ndarray]:
    n, scale = len(IDS), 1.0 / math.sqrt(len(TAGS))
    vectors = {key: np.zeros(len(TAGS) + 1) for key in IDS}
    for axis, tag in enumerate(TAGS):
        order = HEADS[tag] + [key for key in IDS if key not in HEADS[tag]]
        for rank, key in enumerate(order):
            vectors[key][axis] = (n - rank) / n * scale
    for vector in vectors.values():
        vector[-1] = math.sqrt(max(0.0, 1.0 - float(vector[:-1] @ vector[:-1])))
    return vectors


def _lines() -> list[dict | str]:
    tags: dict[str, list[str]] = {key: [] for key in IDS}
    for key in SKY:
        tags[key] += ["sky", "sky"]
    for tag, truth in (("snow", SNOW), ("red", RED), ("dog", DOG), ("car", CAR),
                       ("fog", FOG)):
        for key in truth:
            tags[key].append(f"  {tag} ")  # the seed strips tags
    lines: list[dict | str] = []
    for n, key in enumerate(IDS[:124]):  # img124 appears only on a malformed line
        # the seed strips everything from the first dot: all three forms name the same image
        image_id = [key, f"{key}.jpg", f"{key}.v2.jpeg"][n % 3]
        lines.append({"image_id": image_id, "tags": tags[key]})
    lines[12:12] = [
        "this is not json {",
        {"image_id": 5, "tags": ["sky"]},
        {"image_id": "img124.jpg", "tags": "sky"},
        ["not", "an", "object"],
        {"image_id": "/etc/passwd", "tags": ["sky"]},
        "",
        {"image_id": "img112", "tags": []},  # listed twice: still one image
    ]
    lines.append({"image_id": "img123.jpg", "tags": ["", 7]})
    return lines


def build(root: Path, *, model: str = "scripted-v1") -> tuple[ScriptedEmbedder, dict[str, bytes]]:
    """Write the set under ``root``; return its embedder and each image's file bytes."""
    write_dataset(root, _lines())
    vectors = _vectors()
    files: dict[str, bytes] = {}
    image_vectors: dict[bytes, np.ndarray] = {}
    for key in IDS:
        if key == "img001":
            continue  # listed, but no file
        files[key] = write_image(root, f"{key}.{OTHER_FILES.get(key, 'jpg')}")
        image_vectors[files[key]] = vectors[key]
    # A .png beside img006's .jpg, with a vector that would top every ranking if it were used.
    decoy = write_image(root, "img006.png")
    image_vectors[decoy] = np.ones(len(TAGS) + 1)
    text_vectors = {PREFIX + tag: np.eye(len(TAGS) + 1)[axis] for axis, tag in enumerate(TAGS)}
    embedder = ScriptedEmbedder(image_vectors, text_vectors, model=model,
                                failing_images=[files["img002"]],
                                failing_texts=[PREFIX + "fog"])
    return embedder, files
