"""The feature file: embeddings already made, so a re-run does not pay for them again.

One JSON object per line, appended (and flushed) as each vector arrives, so an interrupted run
keeps what it paid for:

* images: ``{"image_id", "feature", "model"}``, the seed's ``{"image_id", "feature"}`` line
  plus the model it came from, so the seed's loader still reads the file;
* tag texts: ``{"text", "prefix", "model", "feature"}``, keyed by the tag, the prefix sent
  before it and the model.

``model`` is the model name and dimension, plus the service endpoint when the client has one:
an original and a fine-tuned GME deployment often carry the same model name. Lines of another
model, of another dimension, or unreadable are ignored (and counted), never used. A changed
image file is not noticed: delete the feature file to embed again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..models.base import Embedder


def model_key(embedder: Embedder) -> str:
    """What a feature line records as its model (see the module's docstring)."""
    key = f"{embedder.model}@{embedder.dimension}"
    endpoint = getattr(embedder, "endpoint", None)
    return f"{key} {endpoint}" if isinstance(endpoint, str) and endpoint else key


class FeatureCache:
    """Vectors by image id and by (tag, prefix), for one model; in memory when ``path`` is None.
    """

    def __init__(self, path: str | Path | None, model: str, dimension: int):
        self.path = Path(path) if path is not None else None
        self.model = model
        self.dimension = dimension
        self.ignored_lines = 0
        self._images: dict[str, np.ndarray] = {}
        self._texts: dict[tuple[str, str], np.ndarray] = {}
        self._out: TextIO | None = None
        if self.path is not None and self.path.is_file():
            self._load(self.path)

    def image(self, image_id: str) -> np.ndarray | None:
        return self._images.get(image_id)

    def text(self, text: str, prefix: str) -> np.ndarray | None:
        return self._texts.get((text, prefix))

    def add_image(self, image_id: str, vector: np.ndarray) -> None:
        self._images[image_id] = vector
        self._append({"image_id": image_id, "feature": _floats(vector), "model": self.model})

    def add_text(self, text: str, prefix: str, vector: np.ndarray) -> None:
        self._texts[(text, prefix)] = vector
        self._append({"text": text, "prefix": prefix, "model": self.model,
                      "feature": _floats(vector)})

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def __enter__(self) -> FeatureCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _append(self, line: dict[str, Any]) -> None:
        if self.path is None:
            return
        if self._out is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            torn = _ends_mid_line(self.path)
            self._out = self.path.open("a", encoding="utf-8")
            if torn:  # an interrupted run's last line: do not glue the next one onto it
                self._out.write("\n")
        self._out.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._out.flush()

    def _load(self, path: Path) -> None:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for raw in handle:
                if not raw.strip():
                    continue
                if not self._take(raw):
                    self.ignored_lines += 1

    def _take(self, raw: str) -> bool:
        """Keep one line's vector if it is this model's and well formed."""
        try:
            line = json.loads(raw)
        except ValueError:
            return False
        if not isinstance(line, dict) or line.get("model") != self.model:
            return False
        vector = _vector(line.get("feature"), self.dimension)
        if vector is None:
            return False
        if isinstance(line.get("image_id"), str):
            self._images[line["image_id"]] = vector
            return True
        if isinstance(line.get("text"), str) and isinstance(line.get("prefix"), str):
            self._texts[(line["text"], line["prefix"])] = vector
            return True
        return False


def _ends_mid_line(path: Path) -> bool:
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with path.open("rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) != b"\n"


def _floats(vector: np.ndarray) -> list[float]:
    # float32 -> float is exact, so a vector read back is the vector written.
    return np.asarray(vector, dtype=np.float32).tolist()


def _vector(values: Any, dimension: int) -> np.ndarray | None:
    if not isinstance(values, list) or len(values) != dimension:
        return None
    try:
        vector = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        return None
    return vector if bool(np.isfinite(vector).all()) else None
