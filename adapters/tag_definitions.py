"""A tag definition in PAI's prompt form: ``{"GuidePrompt": "...", "TagDefinition": {"tag":
"when it applies", ...}}`` (PAI's console has these two parts; its API leaves the prompt's
``FrameworkContent`` format open, and mmdm uses this one for it)."""

from __future__ import annotations

import json
from typing import Any

from .errors import InvalidParameterError
from .metadata.model import Prompt

FRAMEWORK_TYPE = "IntelligentTag"
FORM = ('{"GuidePrompt": "...", "TagDefinition": {"tag": "when it applies", ...}} with one tag '
        "at least")


def parse_tag_definition(content: str | dict[str, Any],
                         parameter: str = "FrameworkContent") -> tuple[str, dict[str, str]]:
    """(guide prompt, tag definitions); an ``InvalidParameterError`` says what is wrong."""
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except json.JSONDecodeError as err:
            raise InvalidParameterError(parameter, f"{parameter} is not JSON: {err}") from None
    tags = content.get("TagDefinition") if isinstance(content, dict) else None
    if not isinstance(tags, dict) or not tags or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise InvalidParameterError(parameter, f"{parameter} must be {FORM}")
    return str(content.get("GuidePrompt") or ""), tags


def tag_definition_content(prompt: Prompt) -> dict[str, Any]:
    return {"GuidePrompt": prompt.guide_prompt, "TagDefinition": prompt.tag_definitions}
