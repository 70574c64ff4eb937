"""Zero-shot tagging with a multimodal embedding model, alone or as a VLM's cheap first pass.

A CLIP-like model puts images and texts in one space: a tag applies where the image's vector
is close to the tag's text ("name: when it applies", from the tag definition). Alone, that is
a tagger with no VLM at all (free and offline with a local model). In front of a VLM it picks
the candidate images: an image no tag comes near is answered "no tags" without a VLM call,
and the others go to the VLM, which decides their tags. The job's usage counts both passes.
"""

from __future__ import annotations

import json
import threading

import numpy as np

from ..errors import AdapterError, NotSupportedError
from .base import Embedder, ImageInput, TagDefinition, Tagger, TagResult, l2_normalise
from .usage import Usage, usage_of


class ZeroShotTagger:
    """Tags whose text scores above ``threshold`` (cosine similarity) against the image."""

    def __init__(self, embedder: Embedder, threshold: float = 0.25):
        if not getattr(embedder, "supports_text", True):
            raise NotSupportedError(f"zero-shot tagging needs a model that embeds text too; "
                                    f"{embedder.model!r} embeds images only")
        self.embedder, self.threshold = embedder, float(threshold)
        self.model = f"zero-shot:{embedder.model}"
        self._texts: dict[tuple, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def usage(self) -> Usage:
        return self.embedder.usage if isinstance(getattr(self.embedder, "usage", None),
                                                 Usage) else Usage()

    def _tag_vectors(self, definition: TagDefinition) -> np.ndarray:
        """One unit vector per tag, embedded once per definition revision."""
        key = (definition.prompt_id, definition.revision, tuple(definition.tags.items()))
        with self._lock:
            if key not in self._texts:
                texts = [f"{name}: {text}" for name, text in definition.tags.items()]
                self._texts[key] = np.stack([l2_normalise(v)
                                             for v in self.embedder.embed_texts(texts)])
            return self._texts[key]

    def scores(self, image: ImageInput, definition: TagDefinition) -> dict[str, float]:
        [vector] = self.embedder.embed_images([image])
        if isinstance(vector, Exception):
            raise vector
        sims = self._tag_vectors(definition) @ l2_normalise(vector)
        return {name: float(s) for name, s in zip(definition.tags, sims)}

    def tag(self, image: ImageInput, definition: TagDefinition, *, describe: bool = False
            ) -> TagResult:
        if describe:
            raise AdapterError("zero-shot tagging cannot describe images: describe with a VLM",
                               is_input_error=True)
        scores = self.scores(image, definition)
        return TagResult(tags=[n for n in definition.tags if scores[n] > self.threshold],
                         raw=json.dumps({n: round(s, 4) for n, s in scores.items()}))


class _Passes(Usage):
    """The cascade's own counters plus what each pass's client spent."""

    def __init__(self, *clients: object):
        super().__init__()
        self.clients = clients

    def snapshot(self) -> dict[str, int]:
        total = super().snapshot()
        for client in self.clients:
            for name, n in usage_of(client).items():
                total[name] = total.get(name, 0) + n
        return total


class FirstPassTagger:
    """``first`` (zero-shot) screens every image; only its candidates go to ``then``."""

    def __init__(self, first: ZeroShotTagger, then: Tagger):
        self.first, self.then = first, then
        self.model = then.model
        self.usage = _Passes(first, then)

    def tag(self, image: ImageInput, definition: TagDefinition, *, describe: bool = False
            ) -> TagResult:
        self.usage.add(FirstPassImages=1)
        if not self.first.tag(image, definition).tags:
            return TagResult(tags=[], raw="first pass: no candidate tag")
        self.usage.add(SentToModel=1)
        return self.then.tag(image, definition, describe=describe)
