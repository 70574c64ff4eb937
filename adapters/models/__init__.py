"""Model clients: VLM taggers and multimodal embedders (DashScope, PAI-EAS GME, OpenAI-compatible
servers, an in-process CLIP model, offline local).

``open_tagger`` / ``open_embedder`` build one from a connection's plain settings. Settings are
read by name with a type, so a URI-form connection (every value a string) works, and a key this
module does not know is ignored rather than passed on to a client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError
from .base import (
    Embedder,
    ImageInput,
    TagDefinition,
    TagParseError,
    Tagger,
    TagResult,
    l2_normalise,
)
from .clip import ClipEmbedder
from .dashscope import DashScopeEmbedder, DashScopeTagger
from .eas import EasGmeEmbedder
from .local import LOCAL_TAG_DEFINITION, LocalImageEmbedder, LocalPixelTagger
from .openai_compat import OpenAIEmbedder, OpenAITagger

KINDS = ("dashscope", "eas", "openai", "clip", "local")

__all__ = [
    "KINDS", "LOCAL_TAG_DEFINITION", "ClipEmbedder", "DashScopeEmbedder", "DashScopeTagger",
    "EasGmeEmbedder", "Embedder", "ImageInput", "LocalImageEmbedder", "LocalPixelTagger",
    "OpenAIEmbedder", "OpenAITagger", "TagDefinition",
    "TagParseError", "TagResult", "Tagger", "l2_normalise", "open_embedder", "open_tagger",
]


def _read(settings: Mapping[str, Any], spec: dict[str, Callable[[Any], Any]],
          required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The known settings that are set (not None or ""), converted to their types."""
    missing = [name for name in required if settings.get(name) in (None, "")]
    if missing:
        raise ConfigError(f"missing setting(s): {', '.join(missing)}")
    out: dict[str, Any] = {}
    for name, convert in spec.items():
        value = settings.get(name)
        if value is None or value == "":
            continue
        try:
            out[name] = convert(value)
        except (TypeError, ValueError):
            raise ConfigError(f"setting {name!r} has an unusable value") from None
    return out


def _flag(value: Any) -> bool:
    """A yes/no setting, from a bool or from a connection's text ("false" is False)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def _kind(kind: str) -> str:
    normalised = (kind or "").strip().lower()
    if normalised not in KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; expected one of {', '.join(KINDS)}")
    return normalised


def open_tagger(kind: str, **settings: Any) -> Tagger:
    """A tagger: ``dashscope`` (``api_key``, ``model``, ``base_url``, ``workspace``,
    ``timeout``, ``temperature``), ``openai`` (``base_url``, ``model``, ``api_key``,
    ``timeout``, ``temperature``, ``max_tokens``) or ``local`` (no settings).

    Raises:
        ConfigError: an unknown kind, a kind that cannot tag (``eas``, ``clip``), or bad
            settings.
    """
    kind = _kind(kind)
    if kind == "dashscope":
        return DashScopeTagger(**_read(settings, {
            "api_key": str, "model": str, "base_url": str, "workspace": str,
            "timeout": float, "temperature": float}, required=("api_key",)))
    if kind == "openai":
        return OpenAITagger(**_read(settings, {
            "base_url": str, "model": str, "api_key": str, "timeout": float,
            "temperature": float, "max_tokens": int}, required=("base_url", "model")))
    if kind == "local":
        return LocalPixelTagger()
    if kind == "clip":
        raise ConfigError("a CLIP model makes embeddings only; tag with 'dashscope', 'openai' "
                          "or 'local', or zero-shot over its embeddings")
    raise ConfigError("an EAS GME service makes embeddings only; tag with 'dashscope' or "
                      "'local'")


def open_embedder(kind: str, **settings: Any) -> Embedder:
    """An embedder: ``dashscope`` (``api_key``, ``model``, ``base_url``, ``workspace``,
    ``dimension``, ``timeout``), ``eas`` (``endpoint``, ``token``, ``model``, ``dimension``,
    ``timeout``, ``max_batch``), ``openai`` (``base_url``, ``model``, ``dimension``,
    ``api_key``, ``image_input``, ``supports_text``, ``max_batch``, ``timeout``), ``clip``
    (``model``: a hub name or a checkpoint folder, ``device``, ``batch_size``; in this process,
    needs ``pip install 'mmdm[clip]'``) or ``local`` (``dimension``).

    Raises:
        ConfigError: an unknown kind, bad settings, or a CLIP checkpoint that cannot be loaded.
    """
    kind = _kind(kind)
    if kind == "dashscope":
        return DashScopeEmbedder(**_read(settings, {
            "api_key": str, "model": str, "base_url": str, "workspace": str,
            "dimension": int, "timeout": float}, required=("api_key",)))
    if kind == "eas":
        return EasGmeEmbedder(**_read(settings, {
            "endpoint": str, "token": str, "model": str, "dimension": int,
            "timeout": float, "max_batch": int}, required=("endpoint", "token")))
    if kind == "openai":
        return OpenAIEmbedder(**_read(settings, {
            "base_url": str, "model": str, "dimension": int, "api_key": str,
            "image_input": str, "supports_text": _flag, "max_batch": int, "timeout": float},
            required=("base_url", "model", "dimension")))
    if kind == "clip":
        return ClipEmbedder(**_read(settings, {"model": str, "device": str, "batch_size": int},
                                    required=("model",)))
    return LocalImageEmbedder(**_read(settings, {"dimension": int}))
