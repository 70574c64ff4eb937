"""Export rows: a file meta in PAI's field names, restricted to ``filteredAttributes``."""

from __future__ import annotations

from typing import Any

from ..errors import AdapterError
from ..metadata import FileMeta
from ..timeutil import from_iso, to_iso

# PAI's FileMetaExport ``filteredAttributes`` (Uri is always included), plus FileDir and
# Description, which mmdm adds.
EXPORT_ATTRIBUTES = (
    "Uri", "DatasetFileMetaId", "FileName", "FileDir", "DataSize", "FileType", "ContentType",
    "Comment", "Description", "MetaAttributes", "FileFingerPrint", "FileCreateTime",
    "FileUpdateTime", "Tags.user", "Tags.user-delete-ai-tags", "Tags.ai", "Tags.all",
)
_TIMES = ("FileCreateTime", "FileUpdateTime")
_TAG_FIELDS = {"Tags.ai": "ai", "Tags.user": "user", "Tags.user-delete-ai-tags":
               "user-delete-ai-tags", "Tags.all": "all"}


def parse_attributes(value: str | list[str] | None) -> tuple[str, ...]:
    """``"FileName,Uri"`` or a list -> the attributes to keep, Uri first; None: all of them."""
    if not value:
        return EXPORT_ATTRIBUTES
    names = [v.strip() for v in (value.split(",") if isinstance(value, str) else value)]
    unknown = [n for n in names if n and n not in EXPORT_ATTRIBUTES]
    if unknown:
        raise AdapterError(f"unknown filteredAttributes {unknown}; allowed: "
                           f"{', '.join(EXPORT_ATTRIBUTES)}", is_input_error=True)
    return tuple(dict.fromkeys(["Uri", *[n for n in names if n]]))


# How each exported attribute is read off a meta (one lookup per attribute: this runs per row).
_GETTERS: dict[str, Any] = {
    "Uri": lambda m: m.uri, "DatasetFileMetaId": lambda m: m.file_meta_id,
    "FileName": lambda m: m.file_name, "FileDir": lambda m: m.file_dir,
    "DataSize": lambda m: m.data_size, "FileType": lambda m: m.file_type,
    "ContentType": lambda m: m.content_type, "Comment": lambda m: m.comment,
    "Description": lambda m: m.description, "MetaAttributes": lambda m: m.meta_attributes,
    "FileFingerPrint": lambda m: m.file_fingerprint,
    "FileCreateTime": lambda m: to_iso(m.file_create_time),
    "FileUpdateTime": lambda m: to_iso(m.file_update_time),
}
_TAG_GETTERS: dict[str, Any] = {
    "ai": lambda m: m.tags_ai, "user": lambda m: m.tags_user,
    "user-delete-ai-tags": lambda m: m.tags_user_delete_ai, "all": lambda m: m.tags_all,
}


def export_row(meta: FileMeta, attributes: tuple[str, ...]) -> dict[str, Any]:
    """One JSONL line. Tags become an object of the kept groups; times ISO-8601 UTC."""
    row: dict[str, Any] = {}
    for name in attributes:
        group = _TAG_FIELDS.get(name)
        if group is None:
            row[name] = _GETTERS[name](meta)
        else:
            row.setdefault("Tags", {})[group] = _TAG_GETTERS[group](meta)
    return row


def meta_from_row(row: dict[str, Any], *, dataset_id: str, dataset_version: str,
                  file_meta_id: str, attributes: tuple[str, ...]) -> FileMeta:
    """The inverse of :func:`export_row` for import, keeping only ``attributes``."""
    record = {k: v for k, v in row.items() if k in attributes or k == "Uri"}
    for name in _TIMES:
        if isinstance(record.get(name), str):
            record[name] = from_iso(record[name])
    tags = row.get("Tags") or {}
    record["Tags"] = {g: tags.get(g) or [] for g in ("ai", "user", "user-delete-ai-tags")
                      if f"Tags.{g}" in attributes}
    record["DatasetFileMetaId"] = file_meta_id
    uri = record["Uri"]
    record.setdefault("FileName", uri.rstrip("/").rsplit("/", 1)[-1])
    return FileMeta.from_record(record, dataset_id=dataset_id, dataset_version=dataset_version)
