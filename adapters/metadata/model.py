"""Plain records the metadata store reads and writes, with PAI's field names at the edges."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..timeutil import to_iso

TAG_GROUPS = ("ai", "user", "user-delete-ai-tags")


def effective_tags(ai: list[str], user: list[str], deleted: list[str]) -> list[str]:
    """PAI's ``Tags.all``: (ai ∪ user) minus ``user-delete-ai-tags``, in first-seen order."""
    removed = set(deleted)
    return [t for t in dict.fromkeys([*ai, *user]) if t not in removed]


@dataclass(frozen=True)
class Dataset:
    dataset_id: str
    name: str
    uri: str
    edition: str
    description: str | None
    create_time: int
    update_time: int

    def to_pai(self) -> dict[str, Any]:
        return {
            "DatasetId": self.dataset_id,
            "Name": self.name,
            "Uri": self.uri,
            "Edition": self.edition,
            "Description": self.description,
            "GmtCreateTime": to_iso(self.create_time),
            "GmtModifiedTime": to_iso(self.update_time),
        }


@dataclass(frozen=True)
class DatasetVersion:
    dataset_id: str
    version_name: str
    version_number: int
    uri: str | None
    source_type: str  # STORAGE: scanned from ``uri``; LOGICAL: fed by import
    description: str | None
    create_time: int
    update_time: int

    def to_pai(self) -> dict[str, Any]:
        return {
            "DatasetId": self.dataset_id,
            "VersionName": self.version_name,
            "Uri": self.uri,
            "SourceType": self.source_type,
            "Description": self.description,
            "GmtCreateTime": to_iso(self.create_time),
            "GmtModifiedTime": to_iso(self.update_time),
        }


@dataclass(frozen=True)
class FileMeta:
    """One file of a dataset version. Times are UTC epoch milliseconds."""

    file_meta_id: str
    dataset_id: str
    dataset_version: str
    uri: str
    file_name: str
    file_dir: str
    data_size: int | None = None
    file_fingerprint: str | None = None
    file_create_time: int | None = None
    file_update_time: int | None = None
    file_type: str | None = None
    content_type: str | None = None
    meta_attributes: dict[str, Any] = field(default_factory=dict)
    comment: str | None = None
    description: str | None = None
    tags_ai: list[str] = field(default_factory=list)
    tags_user: list[str] = field(default_factory=list)
    tags_user_delete_ai: list[str] = field(default_factory=list)
    tag_job_id: str | None = None
    tag_update_time: int | None = None
    semantic_index_job_id: str | None = None
    semantic_index_update_time: int | None = None
    sync_time: int | None = None
    status: str = "ACTIVE"
    pk: int | None = None

    @property
    def tags_all(self) -> list[str]:
        return effective_tags(self.tags_ai, self.tags_user, self.tags_user_delete_ai)

    @property
    def tags(self) -> dict[str, list[str]]:
        return {
            "ai": list(self.tags_ai),
            "user": list(self.tags_user),
            "user-delete-ai-tags": list(self.tags_user_delete_ai),
        }

    def to_record(self) -> dict[str, Any]:
        """The row shape the query engine's reference evaluator reads (PAI keys, epoch ms)."""
        return {
            "DatasetFileMetaId": self.file_meta_id,
            "Uri": self.uri,
            "FileName": self.file_name,
            "FileDir": self.file_dir,
            "DataSize": self.data_size,
            "FileFingerPrint": self.file_fingerprint,
            "FileCreateTime": self.file_create_time,
            "FileUpdateTime": self.file_update_time,
            "FileType": self.file_type,
            "ContentType": self.content_type,
            "MetaAttributes": dict(self.meta_attributes),
            "Comment": self.comment,
            "Description": self.description,
            "Tags": self.tags,
            "TagUpdateTime": self.tag_update_time,
            "SemanticIndexJobId": self.semantic_index_job_id,
            "SemanticIndexUpdateTime": self.semantic_index_update_time,
            "SyncTime": self.sync_time,
            "Status": self.status,
        }

    @classmethod
    def from_record(
        cls, record: dict[str, Any], *, dataset_id: str, dataset_version: str
    ) -> FileMeta:
        tags = record.get("Tags") or {}
        uri = record["Uri"]
        name = record.get("FileName") or uri.rstrip("/").rsplit("/", 1)[-1]
        return cls(
            file_meta_id=record["DatasetFileMetaId"],
            dataset_id=dataset_id,
            dataset_version=dataset_version,
            uri=uri,
            file_name=name,
            file_dir=record.get("FileDir") or "",
            data_size=record.get("DataSize"),
            file_fingerprint=record.get("FileFingerPrint"),
            file_create_time=record.get("FileCreateTime"),
            file_update_time=record.get("FileUpdateTime"),
            file_type=record.get("FileType"),
            content_type=record.get("ContentType"),
            meta_attributes=dict(record.get("MetaAttributes") or {}),
            comment=record.get("Comment"),
            description=record.get("Description"),
            tags_ai=list(tags.get("ai") or []),
            tags_user=list(tags.get("user") or []),
            tags_user_delete_ai=list(tags.get("user-delete-ai-tags") or []),
            tag_update_time=record.get("TagUpdateTime"),
            semantic_index_job_id=record.get("SemanticIndexJobId"),
            semantic_index_update_time=record.get("SemanticIndexUpdateTime"),
            sync_time=record.get("SyncTime"),
            status=record.get("Status") or "ACTIVE",
        )

    def to_pai(self) -> dict[str, Any]:
        """The DatasetFileMeta shape of PAI's API: ISO times, Tags and MetaAttributes as JSON."""
        rec = self.to_record()
        for key in ("FileCreateTime", "FileUpdateTime", "TagUpdateTime",
                    "SemanticIndexUpdateTime", "SyncTime"):
            rec[key] = to_iso(rec[key])
        rec["Tags"] = json.dumps(rec["Tags"], ensure_ascii=False)
        rec["MetaAttributes"] = json.dumps(rec["MetaAttributes"], ensure_ascii=False)
        return rec


@dataclass(frozen=True)
class Job:
    job_id: str
    dataset_id: str
    dataset_version: str
    job_action: str
    job_mode: str
    job_spec: dict[str, Any]
    description: str | None
    status: str
    total_file_count: int
    completed_file_count: int
    failed_file_count: int
    result: dict[str, Any]
    create_time: int
    start_time: int | None
    finish_time: int | None

    def to_pai(self, logs: list[str] | None = None) -> dict[str, Any]:
        out = {
            "DatasetJobId": self.job_id,
            "DatasetVersion": self.dataset_version,
            "JobAction": self.job_action,
            "JobMode": self.job_mode,
            "JobSpec": json.dumps(self.job_spec, ensure_ascii=False),
            "Description": self.description,
            "Status": self.status,
            "TotalFileCount": self.total_file_count,
            "CompletedFileCount": self.completed_file_count,
            "FailedFileCount": self.failed_file_count,
            "CreateTime": to_iso(self.create_time),
            "FinishTime": to_iso(self.finish_time),
        }
        if logs is not None:
            out["Logs"] = logs
        return out


@dataclass(frozen=True)
class Prompt:
    """A tag definition: PAI's guide prompt plus a ``{tag: description}`` object."""

    prompt_id: str
    name: str
    guide_prompt: str
    tag_definitions: dict[str, str]
    description: str | None
    revision: int
    create_time: int
    modify_time: int


FILE_META_COLUMNS = tuple(f.name for f in fields(FileMeta) if f.name != "pk")


def as_dict(obj: Any) -> dict[str, Any]:
    return asdict(obj)
