"""Export rows: a file meta in PAI's field names, restricted to ``filteredAttributes``."""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from mmdm.query.compile.sql import col, fn

from ..errors import AdapterError
from ..metadata import FileMeta
from ..timeutil import from_iso

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


# The column behind each exported attribute.
_COLUMNS = {
    "Uri": "uri", "DatasetFileMetaId": "file_meta_id", "FileName": "file_name",
    "FileDir": "file_dir", "DataSize": "data_size", "FileType": "file_type",
    "ContentType": "content_type", "Comment": "comment", "Description": "description",
    "MetaAttributes": "meta_attributes", "FileFingerPrint": "file_fingerprint",
    "FileCreateTime": "file_create_time", "FileUpdateTime": "file_update_time",
    "Tags.ai": "tags_ai", "Tags.user": "tags_user",
    "Tags.user-delete-ai-tags": "tags_user_delete_ai", "Tags.all": "tags_all",
}
_JSON_COLUMNS = ("meta_attributes", "tags_ai", "tags_user", "tags_user_delete_ai", "tags_all")


def export_columns(attributes: tuple[str, ...], dialect: str) -> list[exp.Expression]:
    """What an export selects per file: its JSONL line, then the tag and index job ids.

    The database renders the line (``json_object`` on SQLite, ``json_build_object`` on
    PostgreSQL): one text column per row instead of decoding every column into Python and
    encoding it again made exports ~3x faster (``bench/export.py``). The kept attributes
    appear in order, the tag groups as one ``Tags`` object where the first of them is, times
    as PAI's ISO-8601 UTC strings.
    """
    build = "json_build_object" if dialect == "postgres" else "json_object"
    groups = [arg for name in attributes if name in _TAG_FIELDS
              for arg in (exp.Literal.string(_TAG_FIELDS[name]), _value(name, dialect))]
    names = list(dict.fromkeys("Tags" if a in _TAG_FIELDS else a for a in attributes))
    pairs = [arg for name in names for arg in (
        exp.Literal.string(name),
        fn(build, *groups) if name == "Tags" else _value(name, dialect))]
    line = fn(build, *pairs)
    if dialect == "postgres":  # as text: psycopg would parse json into a dict
        line = exp.Cast(this=line, to=exp.DataType.build("text"))
    return [line, col("tag_job_id"), col("semantic_index_job_id")]


def _value(attribute: str, dialect: str) -> exp.Expression:
    column = _COLUMNS[attribute]
    if attribute in _TIMES:
        return _iso_time(col(column), dialect)
    if dialect == "sqlite" and column in _JSON_COLUMNS:
        return fn("json", col(column))  # stored as JSON text
    return col(column)


def _iso_time(ms: exp.Column, dialect: str) -> exp.Expression:
    """Epoch milliseconds -> ``YYYY-MM-DDTHH:MM:SS.mmmZ``, exactly as ``to_iso`` writes it."""
    if dialect == "sqlite":
        return fn("strftime", exp.Literal.string("%Y-%m-%dT%H:%M:%fZ"),
                  exp.Div(this=ms, expression=exp.Literal.number("1000.0")),
                  exp.Literal.string("unixepoch"))
    # Whole days, then milliseconds: one interval product loses milliseconds past year 4000.
    days = exp.Floor(this=exp.Div(this=ms.copy(), expression=exp.Literal.number("86400000.0")))
    rest = exp.Sub(this=ms.copy(), expression=exp.Mul(
        this=exp.Cast(this=days.copy(), to=exp.DataType.build("bigint")),
        expression=exp.Literal.number(86_400_000)))
    epoch = exp.Cast(this=exp.Literal.string("epoch"), to=exp.DataType.build("timestamp"))
    instant = exp.Add(
        this=exp.Add(this=epoch, expression=exp.Mul(this=days, expression=_interval("1 day"))),
        expression=exp.Mul(this=exp.Paren(this=rest), expression=_interval("1 millisecond")))
    return fn("to_char", instant, exp.Literal.string('YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))


def _interval(text: str) -> exp.Interval:
    return exp.Interval(this=exp.Literal.string(text))


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
