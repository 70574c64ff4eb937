"""Tag definitions as PAI's prompts: Create/Get/List/Update/DeletePrompt (``/api/v1/prompts``).

PAI leaves ``FrameworkContent``'s format open; mmdm's is ``FrameworkType`` ``IntelligentTag``
with the console's two parts as a JSON string: ``{"GuidePrompt": "...", "TagDefinition":
{"tag": "when it applies", ...}}``. An IntelligentTag JobSpec names it by ``promptId``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from mmdm.adapters.metadata.model import Prompt
from mmdm.adapters.timeutil import to_iso

from .. import deps
from ..context import ApiContext
from ..errors import bad_parameter

router = APIRouter(prefix="/api/v1/prompts", tags=["tag definitions (prompts)"])
FRAMEWORK_TYPE = "IntelligentTag"


def prompt_shape(p: Prompt) -> dict[str, Any]:
    content = {"GuidePrompt": p.guide_prompt, "TagDefinition": p.tag_definitions}
    return {"PromptId": p.prompt_id, "PromptName": p.name, "Description": p.description,
            "FrameworkType": FRAMEWORK_TYPE,
            "FrameworkContent": json.dumps(content, ensure_ascii=False),
            "Accessibility": "PRIVATE", "Revision": p.revision,
            "CreateTime": to_iso(p.create_time), "ModifyTime": to_iso(p.modify_time)}


def parse_content(text: str | None) -> tuple[str, dict[str, str]]:
    """(guide prompt, tag definitions) from FrameworkContent; a 400 says what is wrong."""
    try:
        content = json.loads(text or "")
    except json.JSONDecodeError as err:
        raise bad_parameter("FrameworkContent", f"FrameworkContent is not JSON: {err}") from None
    tags = content.get("TagDefinition") if isinstance(content, dict) else None
    if not isinstance(tags, dict) or not tags or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise bad_parameter("FrameworkContent", 'FrameworkContent must be {"GuidePrompt": "...", '
                            '"TagDefinition": {"tag": "when it applies", ...}} with one tag '
                            "at least")
    return str(content.get("GuidePrompt") or ""), tags


def _check_type(framework_type: str | None) -> None:
    if framework_type not in (None, "", FRAMEWORK_TYPE):
        raise bad_parameter("FrameworkType", f"mmdm's prompts are tag definitions: FrameworkType "
                                             f"{FRAMEWORK_TYPE}")


class CreatePromptRequest(BaseModel):
    PromptName: str = Field(min_length=1, max_length=127)
    FrameworkContent: str
    FrameworkType: str | None = None
    Description: str | None = None
    Accessibility: str | None = None
    WorkspaceId: str | None = None


@router.post("")
def create_prompt(body: CreatePromptRequest,
                  ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    _check_type(body.FrameworkType)
    guide, tags = parse_content(body.FrameworkContent)
    prompt = ctx.store().create_prompt(body.PromptName, tags, guide_prompt=guide,
                                       description=body.Description)
    return {"PromptId": prompt.prompt_id}


@router.get("")
def list_prompts(PageNumber: int = 1, PageSize: int = 20, FrameworkType: str | None = None,
                 Order: str = "ASC", WorkspaceId: str | None = None,
                 ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    prompts = ctx.store().list_prompts() if FrameworkType in (None, FRAMEWORK_TYPE) else []
    if Order.upper() == "DESC":
        prompts.reverse()
    page = deps.page_of(prompts, PageNumber, PageSize)
    return {"TotalCount": len(prompts), "Prompts": [prompt_shape(p) for p in page]}


@router.get("/{PromptId}")
def get_prompt(PromptId: str, WorkspaceId: str | None = None,
               ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    return prompt_shape(ctx.store().get_prompt(PromptId))


class UpdatePromptRequest(BaseModel):
    FrameworkContent: str | None = None
    FrameworkType: str | None = None
    Description: str | None = None
    WorkspaceId: str | None = None


@router.put("/{PromptId}")
def update_prompt(PromptId: str, body: UpdatePromptRequest,
                  ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    """A new content raises the revision: Increment tagging re-tags with it."""
    _check_type(body.FrameworkType)
    store = ctx.store()
    prompt = store.get_prompt(PromptId)
    if body.FrameworkContent is not None:
        guide, tags = parse_content(body.FrameworkContent)
        store.update_prompt(prompt.prompt_id, tag_definitions=tags, guide_prompt=guide)
    if body.Description is not None:
        store.describe_prompt(prompt.prompt_id, body.Description)
    return {}


@router.delete("/{PromptId}")
def delete_prompt(PromptId: str, WorkspaceId: str | None = None,
                  ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    ctx.store().delete_prompt(PromptId)
    return {}
