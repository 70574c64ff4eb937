"""A deterministic Embedder whose vectors each test chooses, and labelled-set writers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from mmdm.adapters.errors import AdapterError
from mmdm.adapters.models.base import ImageInput, l2_normalise


class ScriptedEmbedder:
    """Follows ``mmdm.adapters.models.base.Embedder``: an image's vector is looked up by its bytes,
    a text's by the text; listed items fail the way a service refuses one item."""

    supports_text = True

    def __init__(self, image_vectors: dict[bytes, np.ndarray],
                 text_vectors: dict[str, np.ndarray], *, model: str = "scripted-v1",
                 max_batch: int = 4, failing_images: Iterable[bytes] = (),
                 failing_texts: Iterable[str] = ()):
        self.image_vectors = image_vectors
        self.text_vectors = text_vectors
        self.model = model
        self.dimension = len(next(iter(image_vectors.values())))
        self.max_batch = max_batch
        self.failing_images = set(failing_images)
        self.failing_texts = set(failing_texts)
        self.images_sent: list[bytes] = []
        self.texts_sent: list[str] = []
        self.batch_sizes: list[int] = []

    def embed_images(self, images: list[ImageInput]) -> list[np.ndarray | Exception]:
        self.batch_sizes.append(len(images))
        out: list[np.ndarray | Exception] = []
        for image in images:
            assert image.data is not None
            self.images_sent.append(image.data)
            if image.data in self.failing_images:
                out.append(AdapterError(f"{image.uri}: refused by the model",
                                        is_input_error=True))
            else:
                out.append(l2_normalise(self.image_vectors[image.data]))
        return out

    def embed_texts(self, texts: list[str]) -> list[np.ndarray]:
        vectors = []
        for text in texts:
            self.texts_sent.append(text)
            if text in self.failing_texts:
                raise AdapterError(f"text {text!r} refused by the model", is_input_error=True)
            vectors.append(l2_normalise(self.text_vectors[text]))
        return vectors


def write_dataset(root: Path, lines: Iterable[dict | str]) -> None:
    """``dataset.jsonl``: dicts as JSON, strings written as they are (for malformed lines)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "dataset.jsonl").open("w", encoding="utf-8") as out:
        for line in lines:
            out.write((line if isinstance(line, str) else json.dumps(line)) + "\n")


def write_image(root: Path, file_name: str, data: bytes | None = None) -> bytes:
    """A file under ``images/``; its bytes (by default ``image:<file name>``) are returned."""
    data = data if data is not None else f"image:{file_name}".encode()
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "images" / file_name).write_bytes(data)
    return data
