"""The attribute/operator table: ONE data table read by the analyzer, evaluator and compilers.

Each row of ``ATTRIBUTES`` says what a DSL attribute is (its type), which operators it allows,
whether it may be negated or OR-ed (only plain filter attributes may), where its value lives in
a row (``row_key``) and in SQL (``column`` / ``folded``). Search options and the semantic part
(``Content``, ``TopK``, ...) are rows too, with a ``role`` saying where the analyzer lifts them.
``OPERATOR_DOCS`` and :func:`describe` render the table for documentation.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from .ast import Op

RANGE = frozenset({Op.GT, Op.GE, Op.LT, Op.LE})
MAX_DEPTH = 64
MAX_VALUE_LENGTH = 4096  # characters of one compared value (a path is at most 4096 bytes)
INT64 = (-(2**63), 2**63 - 1)
META_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
META_PREFIX = "MetaAttributes"


class Type(enum.Enum):
    """Attribute types of PAI's DSL plus ``META`` (mmdm: typed by the value written)."""

    KEYWORD = "KEYWORD"
    TEXT = "TEXT"
    NUMBER = "NUMBER"
    DATE = "DATE"
    META = "META"


class Role(enum.Enum):
    FILTER = "filter"  # a condition on file metas: anywhere in the expression
    SEMANTIC = "semantic"  # vector query input: top-level AND only, lifted to Query.semantic
    OPTION = "option"  # search/paging option: top-level AND only, lifted to Query.options
    SCOPE = "scope"  # Status: top-level AND only, lifted to Query.options


# What each type allows at most (PAI §1.4); a row may allow less.
TYPE_OPS: dict[Type, frozenset[Op]] = {
    Type.KEYWORD: frozenset({Op.EQ}),
    Type.TEXT: frozenset({Op.MATCH, Op.EQ}),
    Type.NUMBER: frozenset({Op.EQ}) | RANGE,
    Type.DATE: RANGE,
    Type.META: frozenset({Op.EQ}) | RANGE,
}


@dataclass(frozen=True)
class Attribute:
    """One row of the table.

    Attributes:
        name: canonical DSL name (attribute names are matched case-insensitively).
        type: value type; decides the operators allowed and how values are checked.
        ops: comparison operators allowed.
        has: whether ``HAS`` / ``NOT HAS`` is allowed.
        role: filter condition, or something the analyzer lifts out of the filter.
        row_key: key in the evaluator's row dict (``FileMeta.to_record()``).
        column: SQL column of ``file_metas`` (``None`` for lifted rows).
        folded: SQL column holding ``casefold(column)`` for ``:``.
        values_table: SQL table of the distinct ``folded`` values per dataset version: ``:``
            matches those, then the rows holding one of them (few values, many rows).
        tag_group: for ``Tags.*``: the group, as named in the row's Tags dict.
        pai: documented by PAI (``False``: an mmdm extension).
        choices: allowed values of an enumerated option, canonical spelling.
        bounds: inclusive numeric bounds of an option.
        pattern: regular expression an option's string value must match.
    """

    name: str
    type: Type
    ops: frozenset[Op]
    has: bool = True
    role: Role = Role.FILTER
    row_key: str | None = None
    column: str | None = None
    folded: str | None = None
    values_table: str | None = None
    tag_group: str | None = None
    pai: bool = True
    choices: tuple[str, ...] = ()
    bounds: tuple[float, float] | None = None
    pattern: str | None = None

    @property
    def negatable(self) -> bool:
        return self.role is Role.FILTER

    @property
    def in_or(self) -> bool:
        return self.role is Role.FILTER


def _kw(name: str, column: str, *, pai: bool = True) -> Attribute:
    return Attribute(name, Type.KEYWORD, TYPE_OPS[Type.KEYWORD], row_key=name, column=column,
                     pai=pai)


def _text(name: str, column: str, *, pai: bool = True,
          values_table: str | None = None) -> Attribute:
    return Attribute(name, Type.TEXT, TYPE_OPS[Type.TEXT], row_key=name, column=column,
                     folded=f"{column}_folded", values_table=values_table, pai=pai)


def _date(name: str, column: str, *, pai: bool = True) -> Attribute:
    return Attribute(name, Type.DATE, RANGE, row_key=name, column=column, pai=pai)


def _tags(group: str, column: str) -> Attribute:
    return Attribute(f"Tags.{group}", Type.KEYWORD, frozenset({Op.EQ}), row_key="Tags",
                     column=column, tag_group=group)


def _opt(name: str, type_: Type, role: Role = Role.OPTION, **kw: object) -> Attribute:
    ops = frozenset({Op.MATCH}) if name == "Content" else frozenset({Op.EQ})
    return Attribute(name, type_, ops, has=False, role=role, **kw)  # type: ignore[arg-type]


ATTRIBUTES: tuple[Attribute, ...] = (
    _kw("DatasetFileMetaId", "file_meta_id"),
    _text("FileName", "file_name"),
    _text("FileDir", "file_dir", values_table="file_dirs"),
    _kw("FileType", "file_type"),
    _kw("ContentType", "content_type"),
    Attribute("DataSize", Type.NUMBER, TYPE_OPS[Type.NUMBER], row_key="DataSize",
              column="data_size"),
    _date("FileUpdateTime", "file_update_time"),
    _date("FileCreateTime", "file_create_time", pai=False),
    _date("SyncTime", "sync_time"),
    _date("TagUpdateTime", "tag_update_time"),
    _date("SemanticIndexUpdateTime", "semantic_index_update_time"),
    _kw("SemanticIndexJobId", "semantic_index_job_id"),
    _tags("ai", "tags_ai"),
    _tags("user", "tags_user"),
    _tags("all", "tags_all"),
    _text("Description", "description", pai=False),
    Attribute(META_PREFIX, Type.META, TYPE_OPS[Type.META], row_key="MetaAttributes",
              column="meta_attributes", pai=False),
    _opt("Status", Type.KEYWORD, Role.SCOPE, choices=("ACTIVE", "DELETED", "ALL")),
    _opt("Content", Type.TEXT, Role.SEMANTIC),
    _opt("QueryImage", Type.KEYWORD, Role.SEMANTIC, pai=False),
    _opt("QueryAudio", Type.KEYWORD, Role.SEMANTIC, pai=False),
    # Which vectors a VECTOR/MIX query ranks: the images', or their descriptions' (a second
    # index set per version, see SemanticIndex contentList).
    _opt("IndexContent", Type.KEYWORD, choices=("file", "description"), pai=False),
    # How much the text, the image and the audio weigh in a fused query (ONE-PEACE's "factor").
    _opt("TextFactor", Type.NUMBER, bounds=(0.01, 100), pai=False),
    _opt("ImageFactor", Type.NUMBER, bounds=(0.01, 100), pai=False),
    _opt("AudioFactor", Type.NUMBER, bounds=(0.01, 100), pai=False),
    _opt("TopK", Type.NUMBER, bounds=(1, 5000)),
    _opt("ScoreThreshold", Type.NUMBER),
    _opt("QueryType", Type.KEYWORD, choices=("MIX", "TAG", "VECTOR")),
    _opt("SortBy", Type.KEYWORD, choices=("FileCreateTime", "FileUpdateTime")),
    _opt("Order", Type.KEYWORD, choices=("ASC", "DESC")),
    _opt("MaxResults", Type.NUMBER, bounds=(1, 100)),
    _opt("NextToken", Type.KEYWORD),
    _opt("ThumbnailMode", Type.KEYWORD,
         pattern=r"(p|w|h)_\d+|m_(pad|fill|fixed),w_\d+,h_\d+(,color_[0-9A-Fa-f]{6})?"),
    _opt("SignMode", Type.KEYWORD, choices=("PUBLIC",)),
)

BY_NAME: dict[str, Attribute] = {a.name: a for a in ATTRIBUTES}
_BY_FOLDED: dict[str, Attribute] = {a.name.casefold(): a for a in ATTRIBUTES}

# Integer-valued options (a float value is rejected); the rest of NUMBER options are floats.
INT_OPTIONS = frozenset({"TopK", "MaxResults"})

# Known PAI fields that the DSL cannot query, with the reason given in the error.
NOT_QUERYABLE: dict[str, str] = {
    "Tags.user-delete-ai-tags": "it exists for statistics and export only",
    "Uri": "PAI does not index it; use FileDir or FileName",
    "FileFingerPrint": "PAI does not index it",
    "Comment": "PAI does not index it; use Description",
}

OPERATOR_DOCS: dict[Op, str] = {
    Op.MATCH: "the case-folded text contains the case-folded term",
    Op.EQ: "exact equality (a tag group: the list contains exactly the value)",
    Op.GT: "greater than",
    Op.GE: "greater than or equal",
    Op.LT: "less than",
    Op.LE: "less than or equal",
}


def lookup(name: str) -> tuple[Attribute, str] | None:
    """The row for a DSL attribute name and its canonical spelling, or ``None``.

    ``MetaAttributes.<key>[.<key>...]`` keeps its keys' case; other names are case-insensitive.
    """
    row = _BY_FOLDED.get(name.casefold())
    if row is not None and row.type is not Type.META:
        return row, row.name
    head, dot, path = name.partition(".")
    if dot and head.casefold() == META_PREFIX.casefold():
        return BY_NAME[META_PREFIX], f"{META_PREFIX}.{path}"
    return None


def meta_path(name: str) -> tuple[str, ...]:
    """``'MetaAttributes.Image.Width'`` -> ``('Image', 'Width')``."""
    return tuple(name.split(".")[1:])


def op_names(ops: frozenset[Op]) -> str:
    return ", ".join(f"'{op.value}'" for op in Op if op in ops)


_VALUE_DOCS = {
    Type.KEYWORD: "quoted string", Type.TEXT: "quoted string", Type.NUMBER: "number",
    Type.DATE: "quoted ISO-8601 date", Type.META: "number, or quoted string for '='",
}


def _values(a: Attribute) -> str:
    if a.choices:
        return " / ".join(a.choices)
    if a.bounds:
        kind = "integer" if a.name in INT_OPTIONS else "number"
        return f"{kind} {a.bounds[0]:g}-{a.bounds[1]:g}"
    if a.pattern:
        return "OSS resize spec (`w_100`, `m_fill,w_100,h_100`, ...)"
    return _VALUE_DOCS[a.type]


def describe() -> str:
    """The table as Markdown (SEMANTICS.md embeds it; a test keeps the two in sync)."""
    lines = ["| Attribute | Type | Operators | HAS | Under NOT / OR | Values | Origin |",
             "|---|---|---|---|---|---|---|"]
    for a in ATTRIBUTES:
        name = f"{a.name}.<key>" if a.type is Type.META else a.name
        logic = "yes" if a.negatable else "no: top-level AND only"
        lines.append(f"| `{name}` | {a.type.value} | {op_names(a.ops)} | "
                     f"{'yes' if a.has else 'no'} | {logic} | {_values(a)} | "
                     f"{'PAI' if a.pai else 'mmdm'} |")
    return "\n".join(lines)


_DATE_RE = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})(?P<time>[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?"
    r"(?P<offset>Z|[+-]\d{2}:?\d{2})?\Z",
    re.ASCII,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_date(text: str) -> int | None:
    """An ISO-8601 date or instant as UTC epoch milliseconds; ``None`` if it is not one.

    Without an offset the value is read as UTC; a date alone means its midnight UTC. Values
    finer than a millisecond are refused (``None``): stored times have millisecond precision.
    """
    m = _DATE_RE.match(text)
    if m is None:
        return None
    # A date alone with an offset is that day's midnight there (Python would read the
    # offset's sign as the date-time separator and its digits as a time).
    offset = m["offset"] or ""
    text = m["date"] + (m["time"] or "T00:00") + ("+00:00" if offset == "Z" else offset)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.microsecond % 1000:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def format_date(ms: int) -> str:
    """UTC epoch milliseconds -> canonical ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    # Exports run this twice per row: integer arithmetic and a cached date beat datetime.
    day, ms = divmod(ms, 86_400_000)
    seconds, ms = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{_iso_day(day)}T{hours:02d}:{minutes:02d}:{seconds:02d}.{ms:03d}Z"


@functools.lru_cache(maxsize=4096)
def _iso_day(days_since_epoch: int) -> str:
    d = date.fromordinal(_EPOCH.toordinal() + days_since_epoch)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


@functools.lru_cache(maxsize=4096)
def date_ms(canonical: str) -> int:
    """Epoch milliseconds of a (canonical) date value of the AST."""
    ms = parse_date(canonical)
    if ms is None:
        raise ValueError(f"not an ISO-8601 date: {canonical!r}")
    return ms
