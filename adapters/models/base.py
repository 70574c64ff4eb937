"""What the tagging and indexing jobs need from a model, whatever serves it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..errors import AdapterError


@dataclass(frozen=True)
class ImageInput:
    """One image to send to a model: its bytes (sent as a base64 data URI) or a signed URL."""

    uri: str
    data: bytes | None
    content_type: str = "image/jpeg"
    signed_url: str | None = None  # when set (OSS), sent instead of the bytes


@dataclass(frozen=True)
class TagDefinition:
    """A guide prompt plus ``{tag name: when it applies}``: PAI's intelligent tag definition."""

    guide_prompt: str
    tags: dict[str, str]
    prompt_id: str | None = None
    revision: int | None = None


@dataclass(frozen=True)
class TagResult:
    tags: list[str]  # names exactly as in the definition, deduplicated, in definition order
    description: str | None = None
    keywords: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # names the model gave that are unknown
    raw: str = ""  # the model's raw answer, kept for debugging


class Tagger(Protocol):
    """Raises ``AdapterError`` (``retriable`` for 429/5xx/timeouts, with ``retry_after`` when
    the service says) or ``TagParseError`` when the answer cannot be read after one repair try."""

    model: str

    def tag(self, image: ImageInput, definition: TagDefinition, *, describe: bool = False
            ) -> TagResult: ...


class Embedder(Protocol):
    """Vectors are float32 and L2-normalised, so a dot product is a cosine similarity."""

    model: str
    dimension: int
    max_batch: int  # images per request the service accepts
    supports_text: bool

    def embed_images(self, images: list[ImageInput]) -> list[np.ndarray | Exception]:
        """One entry per image: its vector, or the per-item error of a partial success."""
        ...

    def embed_texts(self, texts: list[str]) -> list[np.ndarray]:
        """Query texts; raises ``NotSupportedError`` for an image-only model."""
        ...


def l2_normalise(vector: np.ndarray | list[float]) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


class TagParseError(AdapterError):
    """The model's answer could not be read as the requested JSON, even after one repair try.

    ``raw`` is the last answer; ``answers`` holds every answer in order, for the job log.
    Not retriable by default: the same prompt tends to fail the same way.
    """

    def __init__(self, message: str, *, raw: str, answers: tuple[str, ...] = ()):
        super().__init__(message, retriable=False, is_input_error=False)
        self.raw = raw
        self.answers = answers or (raw,)
