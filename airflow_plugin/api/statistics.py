"""GetDatasetFileMetasStatistics as SQL GROUP BY over the ACTIVE metas of a version.

Tag groups: SQLite stores tag lists as JSON text, so it counts from the ``file_tags`` side
table (one indexed row per file, group and tag, kept by triggers); PostgreSQL stores ``text[]``
and ``unnest``s the group's column. ``tags.all`` is the stored effective set (ai + user minus
user-delete-ai-tags).
"""

from __future__ import annotations

from mmdm.adapters.metadata import MetadataStore

from .errors import bad_parameter

# AggregateBy (lower-cased) -> a scalar column, or a tag group. ``contenttype`` (the image
# formats) is mmdm's beside PAI's list.
COLUMNS = {"filedir": "file_dir", "filetype": "file_type", "contenttype": "content_type"}
TAG_GROUPS = {"tags.ai": ("ai", "tags_ai"), "tags.user": ("user", "tags_user"),
              "tags.user-delete-ai-tags": ("user-delete-ai-tags", "tags_user_delete_ai"),
              "tags.all": ("all", "tags_all")}
AGGREGATES = (*COLUMNS, *TAG_GROUPS)
_SCOPE = "f.dataset_id = ? AND f.dataset_version = ? AND f.status = 'ACTIVE'"


def _sql(dialect: str, aggregate: str) -> tuple[str, tuple[str, ...]]:
    """SQL text (``?`` placeholders: the store adapts them) and the extra leading params.
    Only table names from the dicts above are formatted in; values are bound."""
    if aggregate in COLUMNS:
        col = COLUMNS[aggregate]
        return (f"SELECT f.{col}, COUNT(*) AS n FROM file_metas f WHERE {_SCOPE} "
                f"GROUP BY f.{col} ORDER BY n DESC, f.{col} LIMIT ?"), ()
    group, column = TAG_GROUPS[aggregate]
    if dialect == "postgres":
        return (f"SELECT t.tag, COUNT(*) AS n FROM file_metas f, unnest(f.{column}) AS t(tag) "
                f"WHERE {_SCOPE} GROUP BY t.tag ORDER BY n DESC, t.tag LIMIT ?"), ()
    return ("SELECT t.tag, COUNT(*) AS n FROM file_tags t JOIN file_metas f ON f.pk = t.file_pk "
            f"WHERE t.grp = ? AND {_SCOPE} GROUP BY t.tag ORDER BY n DESC, t.tag LIMIT ?"), (group,)


def file_meta_stats(store: MetadataStore, dataset_id: str, version: str,
                    aggregate_by: str | None, max_results: int = 10) -> dict:
    """``{TotalCount, DatasetFileMetasStats: [{Key, Count}]}``, Count descending.

    ``TotalCount`` is the version's ACTIVE meta count; without ``AggregateBy`` it is all
    that comes back (pai-compat §2.9).
    """
    total = store.count_file_metas(dataset_id, version)
    if not aggregate_by:
        return {"TotalCount": total}
    aggregate = aggregate_by.strip().lower()  # PAI: case-insensitive
    if aggregate not in AGGREGATES:
        raise bad_parameter("AggregateBy", f"AggregateBy {aggregate_by!r} is not one of "
                            f"{', '.join(AGGREGATES)}")
    if not 1 <= max_results <= 100:
        raise bad_parameter("MaxResults", "MaxResults takes 1-100")
    sql, lead = _sql(store.dialect, aggregate)
    rows = store.fetchall(sql, (*lead, dataset_id, version, max_results))
    return {"TotalCount": total,
            "DatasetFileMetasStats": [{"Key": key, "Count": int(n)} for key, n in rows]}
