"""``mmdm search``: a QueryExpression, or ListDatasetFileMetas' request parameters, over a
version; one page (``--next-token`` for the next), or every match with ``--all``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mmdm.adapters.errors import InvalidParameterError
from mmdm.adapters.metadata import FileMeta
from mmdm.query import parse_params

from . import context
from .output import emit, note

COLUMNS = ("DatasetFileMetaId", "FileName", "FileDir", "Tags.all", "Score")


def _params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in args.param or []:
        name, sep, value = pair.partition("=")
        if not sep:
            raise InvalidParameterError("param", f"--param takes NAME=VALUE, not {pair!r}")
        params[name.strip()] = value
    if args.query and args.query_option:
        raise InvalidParameterError("query", "give the QueryExpression once")
    if args.query or args.query_option:
        params["QueryExpression"] = args.query or args.query_option
    for name, value in (("MaxResults", args.max_results), ("NextToken", args.next_token)):
        if value is not None:
            params[name] = value
    return params


def _row(meta: FileMeta, score: float | None, full: bool) -> dict[str, Any]:
    if full:
        return {**meta.to_pai(), "FileDir": meta.file_dir, "Score": score}
    return {"DatasetFileMetaId": meta.file_meta_id, "FileName": meta.file_name,
            "FileDir": meta.file_dir, "Tags.all": ", ".join(meta.tags_all),
            "Score": None if score is None else round(score, 4)}


def cmd_search(args: argparse.Namespace) -> int:
    search = context.search(args)
    ds, version = context.dataset_version(args)
    query = parse_params(_params(args))
    image = Path(args.image).read_bytes() if args.image else None
    full = args.output in ("json", "jsonl")
    if args.all:
        rows = [_row(m, s, full) for m, s in search.iter_matches(
            ds.dataset_id, version, query, query_image=image)]
        emit(rows, args.output, COLUMNS)
        note(f"{len(rows)} matches")
        return 0
    page = search.search(ds.dataset_id, version, query, query_image=image,
                         exact_count=args.exact_count)
    emit([_row(m, s, full) for m, s in page.items], args.output, COLUMNS)
    more = f"; next page: --next-token {page.next_token}" if page.next_token else ""
    about = "about " if page.total_is_estimate else ""
    note(f"{about}{page.total_count} matches{more}")
    if args.explain:
        note(page.plan)
    return 0
