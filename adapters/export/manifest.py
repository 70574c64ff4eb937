"""The export folder's manifest: ``pai_dataset_filemeta_manifest.yaml``.

PAI leaves its schema open; mmdm's records what a consumer needs to read the rows (the JSONL
files, their row counts and checksums) and what it needs to replay or trust the export: the
query (DSL text, AST JSON, request parameters), the index set and embedding model behind a
vector query, the tag definitions and the jobs that produced the data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from ..errors import AdapterError

MANIFEST_NAME = "pai_dataset_filemeta_manifest.yaml"
MANIFEST_FORMAT = "mmdm-filemeta-export"
MANIFEST_VERSION = 1


@dataclass
class PartFile:
    path: str  # relative to the export folder
    rows: int
    sha256: str


@dataclass
class Manifest:
    dataset_id: str
    dataset_version: str
    create_time: str
    filtered_attributes: list[str]
    files: list[PartFile] = field(default_factory=list)
    row_count: int = 0
    export_job_id: str | None = None
    query: dict[str, Any] = field(default_factory=dict)  # dsl / ast / params
    index_set_id: str | None = None
    embedding_model: str | None = None
    tag_definitions: list[dict[str, Any]] = field(default_factory=list)
    source_jobs: list[str] = field(default_factory=list)

    def to_yaml(self) -> str:
        body = {"format": MANIFEST_FORMAT, "formatVersion": MANIFEST_VERSION,
                **{_camel(k): v for k, v in asdict(self).items()}}
        return yaml.safe_dump(body, sort_keys=False, allow_unicode=True)

    @classmethod
    def from_yaml(cls, text: str) -> Manifest:
        data = yaml.safe_load(text)
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise AdapterError("not an mmdm export manifest", is_input_error=True)
        if data.get("formatVersion") != MANIFEST_VERSION:
            raise AdapterError(f"unsupported manifest version {data.get('formatVersion')!r}",
                               is_input_error=True)
        fields_ = {_snake(k): v for k, v in data.items() if k not in ("format", "formatVersion")}
        fields_["files"] = [PartFile(**f) for f in fields_.get("files", [])]
        return cls(**fields_)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)
