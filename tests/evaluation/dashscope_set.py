"""A small labelled set for the fake DashScope server, and its expected figures.

The fake's vectors are seeded by the content it receives (``fake_vector``), so the expected
Precision@k is computed here from the files and tag texts, with the seed's script.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from tests.fakes.fake_dashscope import fake_vector

from . import seed_script
from .scripted import write_dataset, write_image

PREFIX = "Represent this query for retrieving images: "
TAGS = {"cat": [0, 1, 2, 3, 4, 5], "dog": [6, 7, 8], "tree": [0, 9], "lake": [10],
        "road": [2, 5, 8, 11]}
DIMENSION = 1024  # multimodal-embedding-v1


def _png(n: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (n * 20, 255 - n * 20, 90)).save(buf, "PNG")
    return buf.getvalue()


def build_set(root: Path) -> dict[str, bytes]:
    """12 PNG images ``im00``..``im11`` tagged as TAGS says; returns each one's bytes."""
    write_dataset(root, [{"image_id": f"im{n:02d}.png",
                          "tags": [tag for tag, members in TAGS.items() if n in members]}
                         for n in range(12)])
    return {f"im{n:02d}": write_image(root, f"im{n:02d}.png", _png(n)) for n in range(12)}


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def expected_precision(files: dict[str, bytes],
                       keep: Callable[[str], bool] = lambda key: True) -> dict:
    """The seed script's figures for the images ``keep`` accepts, queries ``PREFIX + tag``."""
    ids = [key for key in files if keep(key)]
    feats = np.stack([_unit(fake_vector(files[key], DIMENSION)) for key in ids])
    tag_dict = {tag: [f"im{n:02d}" for n in members if keep(f"im{n:02d}")]
                for tag, members in TAGS.items()}
    predictions = {tag: seed_script.sorted_predictions(
                       ids, feats, _unit(fake_vector(PREFIX + tag, DIMENSION)))
                   for tag in tag_dict}
    return seed_script.seed_precisions(tag_dict, predictions)[0]
