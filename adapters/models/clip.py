"""A CLIP-family model run in this process with Hugging Face ``transformers``: image and text
vectors in one space, with no service, no key and no network once the checkpoint is local.

``model`` is a hub name (``openai/clip-vit-base-patch32``) or a folder holding a saved
checkpoint (``config.json``, the weights, the tokenizer and ``preprocessor_config.json``);
``HF_HUB_OFFLINE=1`` keeps ``from_pretrained`` off the network. Needs the ``clip`` extra
(``pip install 'mmdm[clip]'``: torch and transformers); this module imports them only when a
model is opened, so the other model clients work without them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ..errors import AdapterError, ConfigError
from .base import ImageInput, l2_normalise
from .local import decode_rgb
from .usage import Usage

INSTALL_HINT = "pip install 'mmdm[clip]'"


@dataclass(frozen=True)
class _Checkpoint:
    model: Any  # transformers.CLIPModel, in eval mode on its device
    processor: Any  # the checkpoint's own image preprocessing and tokenizer
    # One forward pass at a time: torch already spreads a batch over every core, and a job's
    # concurrent calls would only oversubscribe them (and hold several batches' activations).
    # Tokenizing too: a fast tokenizer shared between threads can fail with "Already borrowed".
    lock: threading.Lock


_loading = threading.Lock()


@lru_cache(maxsize=4)
def _load(model: str, device: str) -> _Checkpoint:
    """Loaded once per process: a job, the API's threads and their searches share one copy."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise ConfigError(f"the CLIP embedder needs torch and transformers ({exc.name} is not "
                          f"installed): {INSTALL_HINT}") from None
    try:
        clip = transformers.CLIPModel.from_pretrained(model).to(torch.device(device)).eval()
        processor = transformers.AutoProcessor.from_pretrained(model)
    except Exception as exc:  # OSError, ValueError, RuntimeError, safetensors' own, ...
        raise ConfigError(f"cannot load the CLIP checkpoint {model!r} on {device!r} (a hub name, "
                          f"or a folder holding a saved checkpoint): {exc}") from None
    return _Checkpoint(clip, processor, threading.Lock())


def _projected(output: Any) -> Any:
    """transformers 5 returns a model output whose ``pooler_output`` is the projected vector;
    4.x returns the tensor itself."""
    return getattr(output, "pooler_output", output)


class ClipEmbedder:
    """Image and text vectors from a CLIP checkpoint (``CLIPModel``), on CPU or a local GPU."""

    supports_text = True

    def __init__(self, model: str, *, device: str = "cpu", batch_size: int = 16):
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size must be at least 1, not {batch_size}")
        with _loading:
            self._checkpoint = _load(model, device)
        self.model, self.device = model, device
        self.max_batch = int(batch_size)  # images per forward pass, and per job unit
        config = self._checkpoint.model.config
        self.dimension = int(config.projection_dim)
        self.max_text_tokens = int(config.text_config.max_position_embeddings)
        # The processor scales the shorter side down to the model's input anyway: decoding at
        # most 4x that keeps panoramas up to 4:1 intact and lets a camera JPEG decode reduced.
        self.decode_side = 4 * int(config.vision_config.image_size)
        self.usage = Usage()

    def __repr__(self) -> str:
        return f"ClipEmbedder(model={self.model!r}, device={self.device!r})"

    @property
    def clip(self) -> Any:
        """The loaded ``transformers.CLIPModel``."""
        return self._checkpoint.model

    def embed_images(self, images: list[ImageInput]) -> list[np.ndarray | Exception]:
        """Batches of ``max_batch``; an image that cannot be decoded is that entry's error."""
        results: dict[int, np.ndarray | Exception] = {}
        decoded = []
        for i, image in enumerate(images):
            if image.data is None:
                results[i] = AdapterError(f"{image.uri}: the CLIP model reads the image bytes "
                                          "in this process; a signed URL alone cannot be read",
                                          is_input_error=True)
                continue
            try:
                decoded.append((i, decode_rgb(image, fit=self.decode_side)[0]))
            except AdapterError as exc:
                results[i] = exc
        for start in range(0, len(decoded), self.max_batch):
            batch = decoded[start:start + self.max_batch]
            pixels = self._checkpoint.processor(images=[im for _, im in batch],
                                                return_tensors="pt")["pixel_values"]
            with self._checkpoint.lock:
                vectors = self._forward(self.clip.get_image_features, pixel_values=pixels)
            self.usage.add(Calls=1, Images=len(batch))
            results.update((i, vector) for (i, _), vector in zip(batch, vectors))
        return [results[i] for i in range(len(images))]

    def embed_texts(self, texts: list[str]) -> list[np.ndarray]:
        """Texts longer than the model's context are truncated to it."""
        if not texts:
            return []
        with self._checkpoint.lock:
            # An explicit length: a tokenizer saved without model_max_length would not truncate.
            tokens = self._checkpoint.processor(text=list(texts), padding=True, truncation=True,
                                                max_length=self.max_text_tokens,
                                                return_tensors="pt")
            vectors = self._forward(self.clip.get_text_features, input_ids=tokens["input_ids"],
                                    attention_mask=tokens["attention_mask"])
        self.usage.add(Calls=1)
        return vectors

    def _forward(self, features: Callable[..., Any], **inputs: Any) -> list[np.ndarray]:
        """Unit vectors from ``features`` (a ``get_*_features``); the caller holds the lock."""
        import torch

        clip = self.clip
        inputs = {name: value.to(clip.device) for name, value in inputs.items()}
        if "pixel_values" in inputs:  # a checkpoint loaded in half precision takes half pixels
            inputs["pixel_values"] = inputs["pixel_values"].to(clip.dtype)
        with torch.inference_mode():
            output = _projected(features(**inputs))
        return [l2_normalise(row) for row in output.float().cpu().numpy()]
