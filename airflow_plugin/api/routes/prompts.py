"""Tag definitions as PAI's prompts: Create/Get/List/Update/DeletePrompt (``/api/v1/prompts``).

``FrameworkType`` is ``IntelligentTag`` and ``FrameworkContent`` the tag definition as a JSON
string (see ``mmdm.adapters.tag_definitions``). An IntelligentTag JobSpec names it by
``promptId``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from mmdm.adapters.metadata.model import Prompt
from mmdm.adapters.tag_definitions import (FRAMEWORK_TYPE, parse_tag_definition,
                                           tag_definition_content)
from mmdm.adapters.timeutil import to_iso

from .. import deps
from ..context import ApiContext
from ..errors import bad_parameter

router = APIRouter(prefix="/api/v1/prompts", tags=["tag definitions (prompts)"])


def prompt_shape(p: Prompt) -> dict[str, Any]:
    return {"PromptId": p.prompt_id, "PromptName": p.name, "Description": p.description,
            "FrameworkType": FRAMEWORK_TYPE,
            "FrameworkContent": json.dumps(tag_definition_content(p), ensure_ascii=False),
            "Accessibility": "PRIVATE", "Revision": p.revision,
            "CreateTime": to_iso(p.create_time), "ModifyTime": to_iso(p.modify_time)}


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
    guide, tags = parse_tag_definition(body.FrameworkContent)
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
        guide, tags = parse_tag_definition(body.FrameworkContent)
        store.update_prompt(prompt.prompt_id, tag_definitions=tags, guide_prompt=guide)
    if body.Description is not None:
        store.describe_prompt(prompt.prompt_id, body.Description)
    return {}


@router.delete("/{PromptId}")
def delete_prompt(PromptId: str, WorkspaceId: str | None = None,
                  ctx: ApiContext = Depends(deps.context)) -> dict[str, Any]:
    ctx.store().delete_prompt(PromptId)
    return {}
