"""Compile a bound query to SQL over ``file_metas`` with sqlglot builders: the only sqlglot import.

No SQL strings are assembled: every node becomes a sqlglot expression, every user value a named
parameter (``:p0`` for SQLite, ``%(p0)s`` for PostgreSQL), identifiers come only from
``mmdm.query.schema``. Logic is two-valued as in SEMANTICS.md: ``NOT x`` is compiled as
``NOT COALESCE(x, FALSE)`` so a NULL never matches. Dialect differences (tags, JSON) are the
rows of ``DIALECTS``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp, select
from sqlglot.dialects.dialect import Dialect as SqlglotDialect

from .. import schema
from ..ast import And, Compare, Const, Has, Node, Not, Op, Or, Query, depth
from ..errors import UnsupportedFeatureError
from ..schema import Attribute, Type

TABLE = "file_metas"
ALIAS = "f"
TAGS_TABLE = "file_tags"  # SQLite only: (file_pk, grp, tag), kept in sync by triggers
DEFAULT_STATUS = "ACTIVE"
NULL_SORT_KEY = -(2**63 - 1)  # NULL sort columns sort as the smallest value
CMP_SQL: dict[Op, type[exp.Expression]] = {
    Op.EQ: exp.EQ, Op.GT: exp.GT, Op.GE: exp.GTE, Op.LT: exp.LT, Op.LE: exp.LTE,
}


@dataclass(frozen=True)
class CompiledSql:
    """SQL text with named placeholders, its parameters and the dialect it is written in.

    ``params`` is a plain dict so it can go straight to ``sqlite3`` / ``psycopg``; treat it as
    read-only.
    """

    sql: str
    params: dict[str, Any]
    dialect: str


@dataclass
class SqlContext:
    """Collects parameters while compiling; ``param(v)`` returns the next placeholder."""

    dialect: str
    params: dict[str, Any] = field(default_factory=dict)
    count: int = 0

    def param(self, value: Any, name: str | None = None) -> exp.Placeholder:
        if name is None:
            name, self.count = f"p{self.count}", self.count + 1
        self.params[name] = value
        return exp.Placeholder(this=name)

    def unsupported(self, node: Node) -> UnsupportedFeatureError:
        return UnsupportedFeatureError("unsupported-construct",
                                       f"{node!r} cannot be compiled to SQL",
                                       backend=self.dialect)


def col(name: str) -> exp.Column:
    return exp.column(name, table=ALIAS)


def _coalesce(value: exp.Expression, default: exp.Expression) -> exp.Expression:
    return exp.Coalesce(this=value, expressions=[default])  # exp.func looks names up: slower


def fn(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def like_escape(text: str) -> str:
    """Escape LIKE's wildcards with a backslash (used with ``ESCAPE '\\'``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _one_of(expr: exp.Expression, names: Sequence[str]) -> exp.Expression:
    return exp.In(this=expr, expressions=[exp.Literal.string(n) for n in names])


# ---------------------------------------------------------------------------------------------
# dialect rows


@dataclass(frozen=True)
class Dialect:
    """What differs between engines: tag-group tests and JSON access to MetaAttributes."""

    tags_any: Callable[[SqlContext, Attribute, list[str]], exp.Expression]  # group has any
    tag_count: str  # function giving a tag column's length
    meta_type: Callable[[SqlContext, tuple[str, ...]], exp.Expression]
    meta_value: Callable[[SqlContext, tuple[str, ...], bool], exp.Expression]
    number_types: tuple[str, ...]
    string_type: str
    in_list: Callable[[exp.Expression, exp.Expression], exp.Expression]  # column, list param
    list_param: Callable[[Sequence[str]], Any]  # the list as the driver wants it bound


def _pg_tags_any(ctx: SqlContext, row: Attribute, values: list[str]) -> exp.Expression:
    # "@>" (one value) and "&&" (any of several) with a text[] parameter use the GIN index.
    column = col(row.column or "")
    if len(values) == 1:
        return exp.ArrayContainsAll(this=column, expression=ctx.param(values))
    return exp.ArrayOverlaps(this=column, expression=ctx.param(values))


def _pg_path(ctx: SqlContext, path: tuple[str, ...]) -> list[exp.Expression]:
    return [col("meta_attributes"), *(ctx.param(k) for k in path)]


def _pg_meta_type(ctx: SqlContext, path: tuple[str, ...]) -> exp.Expression:
    return fn("jsonb_typeof", fn("jsonb_extract_path", *_pg_path(ctx, path)))


def _pg_meta_value(ctx: SqlContext, path: tuple[str, ...], numeric: bool) -> exp.Expression:
    text = fn("jsonb_extract_path_text", *_pg_path(ctx, path))
    return exp.Cast(this=text, to=exp.DataType.build("numeric")) if numeric else text


def _pg_in_list(column: exp.Expression, values: exp.Expression) -> exp.Expression:
    # "= ANY(array)" is one parameter whatever the length, and uses the column's index.
    return exp.EQ(this=column, expression=exp.Any(this=exp.Paren(this=values)))


def _lite_tags_any(ctx: SqlContext, row: Attribute, values: list[str]) -> exp.Expression:
    # The side table has PRIMARY KEY (grp, tag, file_pk): an index lookup, not a json_each scan.
    t, tag = exp.to_table(TAGS_TABLE, alias="t"), exp.column("tag", table="t")
    match = (tag.eq(ctx.param(values[0])) if len(values) == 1
             else _lite_in_list(tag, ctx.param(json.dumps(values, ensure_ascii=False))))
    sub = select(exp.column("file_pk", table="t")).from_(t).where(
        exp.column("grp", table="t").eq(exp.Literal.string(row.tag_group or "")), match)
    return col("pk").isin(query=sub)


def _lite_path(ctx: SqlContext, path: tuple[str, ...]) -> exp.Expression:
    return ctx.param("$" + "".join(f'."{k}"' for k in path))


def _lite_meta_type(ctx: SqlContext, path: tuple[str, ...]) -> exp.Expression:
    return fn("json_type", col("meta_attributes"), _lite_path(ctx, path))


def _lite_meta_value(ctx: SqlContext, path: tuple[str, ...], numeric: bool) -> exp.Expression:
    return fn("json_extract", col("meta_attributes"), _lite_path(ctx, path))


def _lite_in_list(column: exp.Expression, values: exp.Expression) -> exp.Expression:
    # One JSON-array parameter: SQLite caps the number of bound variables per statement.
    return column.isin(query=select(exp.column("value")).from_(fn("json_each", values)))


# sqlglot's dialect objects, built once (naming a dialect by string builds one per call).
_SQLGLOT = {name: SqlglotDialect.get_or_raise(name) for name in ("postgres", "sqlite")}

DIALECTS: dict[str, Dialect] = {
    "postgres": Dialect(_pg_tags_any, "cardinality", _pg_meta_type, _pg_meta_value,
                        ("number",), "string", _pg_in_list, list),
    "sqlite": Dialect(_lite_tags_any, "json_array_length", _lite_meta_type, _lite_meta_value,
                      ("integer", "real"), "text", _lite_in_list,
                      lambda v: json.dumps(list(v), ensure_ascii=False)),
}


# ---------------------------------------------------------------------------------------------
# filter


def _row(name: str) -> Attribute:
    found = schema.lookup(name)
    if found is None or found[1] != name or found[0].column is None:
        raise ValueError(f"unbound attribute {name!r}: analyze the query first")
    return found[0]


def _meta_compare(node: Compare, ctx: SqlContext, d: Dialect) -> exp.Expression:
    path = schema.meta_path(node.attr)
    numeric = not isinstance(node.value, str)
    types = d.number_types if numeric else (d.string_type,)
    # CASE keeps the value NULL unless the JSON type fits: a string never fails a number cast.
    guarded = exp.Case(ifs=[exp.If(this=_one_of(d.meta_type(ctx, path), types),
                                   true=d.meta_value(ctx, path, numeric))])
    return CMP_SQL[node.op](this=guarded, expression=ctx.param(node.value))


def _compare(node: Compare, ctx: SqlContext) -> exp.Expression:
    row, d = _row(node.attr), DIALECTS[ctx.dialect]
    if row.tag_group is not None:
        return d.tags_any(ctx, row, [str(node.value)])
    if row.type is Type.META:
        return _meta_compare(node, ctx, d)
    if node.op is Op.MATCH:  # *_folded is written whenever the column is, '' included
        pattern = "%" + like_escape(str(node.value).casefold()) + "%"
        if row.values_table is None:
            return _like(col(row.folded or ""), ctx.param(pattern))
        values = exp.Subquery(this=_values_matching(row, ctx.param(pattern)))
        return exp.In(this=col(row.folded or ""), query=values)
    value = schema.date_ms(str(node.value)) if row.type is Type.DATE else node.value
    return CMP_SQL[node.op](this=col(row.column or ""), expression=ctx.param(value))


def _like(column: exp.Expression, pattern: exp.Expression) -> exp.Expression:
    like = exp.Like(this=column, expression=pattern)
    return exp.Escape(this=like, expression=exp.Literal.string("\\"))


def _values_matching(row: Attribute, pattern: exp.Expression) -> exp.Select:
    """``SELECT v.<folded> FROM <values_table> AS v WHERE <the scope> AND v.<folded> LIKE ..``
    (the scope's parameters are the outer query's: ``_where`` names them)."""
    value = exp.column(row.folded or "", table="v")
    where = exp.and_(
        exp.column("dataset_id", table="v").eq(exp.Placeholder(this="dataset_id")),
        exp.column("dataset_version", table="v").eq(exp.Placeholder(this="dataset_version")),
        _like(value, pattern), copy=False)
    return select(value, copy=False).from_(
        exp.to_table(row.values_table or "", alias="v"), copy=False).where(where, copy=False)


def _has(node: Has, ctx: SqlContext) -> exp.Expression:
    row, d = _row(node.attr), DIALECTS[ctx.dialect]
    if row.tag_group is not None:
        return exp.GT(this=fn(d.tag_count, col(row.column or "")),
                      expression=exp.Literal.number(0))
    if row.type is Type.META:
        kind = _coalesce(d.meta_type(ctx, schema.meta_path(node.attr)),
                         exp.Literal.string("null"))
        return exp.NEQ(this=kind, expression=exp.Literal.string("null"))
    return _present(row)


def _present(row: Attribute) -> exp.Expression:
    return exp.Not(this=exp.Is(this=col(row.column or ""), expression=exp.Null()))


def _combine(join: Callable[..., exp.Expression], parts: list[exp.Expression]) -> exp.Expression:
    """``a AND b AND ...`` in parenthesised groups of at most 32: SQLite refuses expression
    trees deeper than 1000, and an unparenthesised chain is that deep. (``copy=False``: the
    parts are fresh; sqlglot's default deep copy made compiling quadratic.)"""
    if len(parts) <= 32:
        return join(*parts, copy=False)
    half = len(parts) // 2
    return join(_combine(join, parts[:half]), _combine(join, parts[half:]), copy=False)


def _listable(node: Node) -> str | None:
    """The attribute of ``Attr = 'string'`` on a column or tag group, else None."""
    if not (isinstance(node, Compare) and node.op is Op.EQ and isinstance(node.value, str)):
        return None
    return node.attr if _row(node.attr).type in (Type.KEYWORD, Type.TEXT) else None


def _or_parts(items: tuple[Node, ...], ctx: SqlContext) -> list[exp.Expression]:
    """An OR's parts, with the equalities on one attribute merged into one list test: one
    parameter and one index probe (``= ANY``, ``&&``, ``IN (json_each)``) however long."""
    lists: dict[str, list[str]] = {}
    for item in items:
        if (attr := _listable(item)) is not None:
            lists.setdefault(attr, []).append(str(item.value))  # type: ignore[union-attr]
    parts, merged = [], set()
    for item in items:
        attr = _listable(item)
        if attr is None or len(lists[attr]) < 2:
            parts.append(compile_filter(item, ctx))
        elif attr not in merged:  # at the first one's place; the others are in its list
            merged.add(attr)
            parts.append(_any_of(attr, list(dict.fromkeys(lists[attr])), ctx))
    return parts


def _any_of(attr: str, values: list[str], ctx: SqlContext) -> exp.Expression:
    row, d = _row(attr), DIALECTS[ctx.dialect]
    if row.tag_group is not None:
        return d.tags_any(ctx, row, values)
    return d.in_list(col(row.column or ""), ctx.param(d.list_param(values)))


def compile_filter(node: Node, ctx: SqlContext) -> exp.Expression:
    """The SQL condition of a bound filter tree."""
    match node:
        case And(items=items):
            return _combine(exp.and_, [compile_filter(i, ctx) for i in items])
        case Or(items=items):
            return _combine(exp.or_, _or_parts(items, ctx))
        case Not(item=item):  # NULL must read as "no match": SEMANTICS.md
            return exp.not_(_coalesce(compile_filter(item, ctx), exp.false()), copy=False)
        case Has():
            return _has(node, ctx)
        case Compare():
            return _compare(node, ctx)
        case Const(value=value):
            return exp.true() if value else exp.false()
    raise ctx.unsupported(node)


# ---------------------------------------------------------------------------------------------
# statements


def _context(dialect: str) -> SqlContext:
    if dialect not in DIALECTS:
        raise UnsupportedFeatureError("unknown-dialect", f"no SQL dialect {dialect!r}; "
                                      f"choose one of {', '.join(DIALECTS)}", backend=dialect)
    return SqlContext(dialect)


def _as_query(query: Query | Node) -> Query:
    return query if isinstance(query, Query) else Query(query)


def _where(query: Query, ctx: SqlContext, dataset_id: str, dataset_version: str,
           status: str | None, file_meta_ids: Sequence[str] | None = None) -> exp.Expression:
    status = status or str(query.option("Status", DEFAULT_STATUS))
    scope = [col("dataset_id").eq(ctx.param(dataset_id, "dataset_id")),
             col("dataset_version").eq(ctx.param(dataset_version, "dataset_version"))]
    if status != "ALL":
        scope.append(col("status").eq(ctx.param(status, "status")))
    if file_meta_ids is not None:
        d = DIALECTS[ctx.dialect]
        scope.append(d.in_list(col("file_meta_id"),
                               ctx.param(d.list_param(file_meta_ids), "file_meta_ids")))
    if query.filter == Const(True):
        return exp.and_(*scope, copy=False)
    return exp.and_(*scope, compile_filter(shallow(query.filter), ctx), copy=False)


def shallow(node: Node, negate: bool = False) -> Node:
    """The same condition, nested as little as it can be: SQLite's parser overflows its stack
    on a few dozen levels of ``NOT COALESCE(...)`` or of groups opened on the right, far
    below the DSL's 64. NOTs are pushed down to the conditions (De Morgan, exact because NOT
    is two-valued here), runs of AND or OR are merged, and each group lists its deepest part
    first, so what nesting is left opens on the left, which costs SQLite's parser least."""
    match node:
        case Not(item=item):
            return shallow(item, not negate)
        case And(items=items) | Or(items=items):
            kind = Or if isinstance(node, And) == negate else And
            parts: list[Node] = []
            for part in (shallow(i, negate) for i in items):
                parts.extend(part.items if isinstance(part, kind) else [part])
            parts.sort(key=depth, reverse=True)  # stable: equal depths keep their order
            return kind(tuple(parts), span=node.span)
        case Const(value=value):
            return Const(value != negate, span=node.span)
    return Not(node, span=node.span) if negate else node


def compile_where(query: Query | Node, dialect: str, dataset_id: str, dataset_version: str,
                  *, status: str | None = None) -> tuple[exp.Expression, dict[str, Any]]:
    """The WHERE condition (a sqlglot expression over ``file_metas AS f``) and its parameters.

    Args:
        query: a bound ``Query`` (its Status option applies) or a bound filter tree.
        dialect: ``"postgres"`` or ``"sqlite"``.
        dataset_id, dataset_version: the scope, passed as parameters.
        status: overrides the query's Status (``ACTIVE`` default, ``DELETED``, ``ALL``).
    """
    ctx = _context(dialect)
    where = _where(_as_query(query), ctx, dataset_id, dataset_version, status)
    return where, ctx.params


def sort_column(query: Query) -> tuple[str, bool] | None:
    """``(column, descending)`` for the query's SortBy/Order (Order defaults to DESC)."""
    sort_by = query.option("SortBy")
    if sort_by is None:
        return None
    return schema.BY_NAME[str(sort_by)].column or "", query.option("Order", "DESC") == "DESC"


def compile_sql(query: Query | Node, dialect: str, dataset_id: str, dataset_version: str, *,
                status: str | None = None, count: bool = False, limit: int | None = None,
                after: int | tuple[int, int] | None = None,
                file_meta_ids: Sequence[str] | None = None,
                columns: Sequence[str | exp.Expression] = ("file_meta_id",),
                sort_matches: bool = False) -> CompiledSql:
    """Compile a bound query to one SQL statement over the metadata table.

    Without ``count``: ``SELECT f.pk, f.file_meta_id[, sort_key] FROM file_metas AS f WHERE
    ... ORDER BY ...``, ordered by ``f.pk``, or by the query's ``SortBy``/``Order`` then ``pk``
    (the last column is the sort key, NULL times coalesced to the smallest value). With
    ``count``: ``SELECT COUNT(*)``. The semantic part and the other options are not SQL's job.

    Args:
        columns: what is selected after ``pk``: column names, or expressions over the table
            ``f`` (never user input): exports select rendered lines and read nothing twice.
        count: ``SELECT COUNT(*)``; with ``limit``, counting stops at ``limit`` rows (enough to
            choose a plan without scanning every match).
        limit: page size (a parameter).
        after: keyset cursor: the last row's ``pk`` (pk order) or ``(sort_key, pk)`` (SortBy).
        file_meta_ids: only these files (one list parameter): the planner's post-filter.
        sort_matches: order by keys no index serves (``key + 0``), so the engine collects every
            match through the filter's indexes and sorts them, instead of walking an index in
            key order and testing rows until the page is full. Same rows, same order; right
            when the matches are few, which engines misjudge for rare tags and substrings.

    Raises:
        UnsupportedFeatureError: unknown dialect.
    """
    q, ctx = _as_query(query), _context(dialect)
    where = _where(q, ctx, dataset_id, dataset_version, status, file_meta_ids)
    table = exp.to_table(TABLE, alias=ALIAS)
    if count:
        return _count(table, where, limit, ctx)
    sort = sort_column(q)
    keys: list[exp.Expression] = [col("pk")]
    desc = False
    if sort is not None:
        keys.insert(0, _coalesce(col(sort[0]), exp.Literal.number(NULL_SORT_KEY)))
        desc = sort[1]
    if after is not None:
        where = exp.and_(where, _after(keys, after, desc, ctx), copy=False)
    selected = [col("pk"), *map(_column, columns)] + (
        [exp.alias_(keys[0], "sort_key")] if sort else [])
    # copy=False throughout: every node here is fresh, and sqlglot's default deep copies were
    # most of the compile time.
    stmt = select(*selected, copy=False).from_(table, copy=False).where(where, copy=False)
    # The keys are never NULL; saying the engine's own NULL order prints no NULLS clause,
    # which PostgreSQL needs to walk an index instead of sorting every match.
    nulls_first = desc == (_SQLGLOT[dialect].NULL_ORDERING == "nulls_are_large")
    order = [exp.Add(this=k.copy(), expression=exp.Literal.number(0)) if sort_matches
             else k.copy() for k in keys]
    stmt = stmt.order_by(*(exp.Ordered(this=k, desc=desc, nulls_first=nulls_first)
                           for k in order), copy=False)
    if limit is not None:
        stmt = stmt.limit(ctx.param(int(limit), "limit"), copy=False)
    return CompiledSql(stmt.sql(dialect=_SQLGLOT[dialect], copy=False), ctx.params, dialect)


def select_columns(columns: Sequence[str | exp.Expression], dialect: str) -> str:
    """``columns`` as a select list over ``file_metas AS f``, in the dialect."""
    return ", ".join(_column(c).sql(dialect=_SQLGLOT[dialect]) for c in columns)


def _column(column: str | exp.Expression) -> exp.Expression:
    return col(column) if isinstance(column, str) else column.copy()


def _count(table: exp.Table, where: exp.Expression, limit: int | None,
           ctx: SqlContext) -> CompiledSql:
    count = exp.Count(this=exp.Star())
    if limit is None:
        stmt = select(count, copy=False).from_(table, copy=False).where(where, copy=False)
    else:
        inner = select(exp.Literal.number(1), copy=False).from_(table, copy=False).where(
            where, copy=False).limit(ctx.param(int(limit), "limit"), copy=False)
        stmt = select(count, copy=False).from_(inner.subquery("c", copy=False), copy=False)
    return CompiledSql(stmt.sql(dialect=_SQLGLOT[ctx.dialect], copy=False), ctx.params,
                       ctx.dialect)


def with_cursor(compiled: CompiledSql, after: int | tuple[int, int]) -> CompiledSql:
    """``compiled`` (compiled with some ``after``) for another keyset cursor: paging binds new
    values instead of compiling again, which for an export's wide select cost ~3 us a row."""
    values = (after,) if isinstance(after, int) else tuple(after)
    names = ("after_pk",) if len(values) == 1 else ("after_key", "after_pk")
    if not set(names) <= compiled.params.keys() or len(values) != len(names):
        raise ValueError("the statement was compiled without a matching keyset cursor")
    return CompiledSql(compiled.sql, {**compiled.params, **dict(zip(names, values))},
                       compiled.dialect)


def _after(keys: list[exp.Expression], after: int | tuple[int, int], desc: bool,
           ctx: SqlContext) -> exp.Expression:
    values = (after,) if isinstance(after, int) else tuple(after)
    if len(values) != len(keys):
        raise ValueError(f"the cursor needs {len(keys)} value(s), got {len(values)}")
    cmp = exp.LT if desc else exp.GT
    if len(keys) == 1:
        return cmp(this=keys[0].copy(), expression=ctx.param(values[0], "after_pk"))
    left = exp.Tuple(expressions=[k.copy() for k in keys])
    right = exp.Tuple(expressions=[ctx.param(values[0], "after_key"),
                                   ctx.param(values[1], "after_pk")])
    return cmp(this=left, expression=right)
