"""How the ``mmdm`` command prints: records as a table on a terminal (plain tab-separated lines
when piped), or as JSON / JSON lines with ``-o``; job progress as a bar on a terminal and as
plain lines otherwise. Data goes to stdout, progress and notes to stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from mmdm.adapters.progress import Progress, ProgressCallback

FORMATS = ("table", "json", "jsonl", "plain")
_data: TextIO | None = None  # where records go while ``stdout_for_data_only`` holds


@contextmanager
def stdout_for_data_only() -> Iterator[None]:
    """Only records reach stdout; whatever else prints there goes to stderr. Airflow's logging
    prints to stdout once a command reads a connection, which would break ``-o json | jq``."""
    global _data
    saved = _data
    _data, sys.stdout = sys.stdout, sys.stderr
    try:
        yield
    finally:
        sys.stdout, _data = _data, saved


def out(line: str) -> None:
    """One line of data."""
    print(line, file=_data or sys.stdout)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def emit(rows: Sequence[dict[str, Any]], fmt: str | None,
         columns: Sequence[str] | None = None) -> None:
    """Print records; ``columns`` picks and orders what a table shows (JSON keeps all)."""
    fmt = fmt or ("table" if (_data or sys.stdout).isatty() else "plain")
    if fmt == "json":
        out(json.dumps(list(rows), ensure_ascii=False, indent=2))
        return
    if fmt == "jsonl":
        for row in rows:
            out(json.dumps(row, ensure_ascii=False))
        return
    columns = list(columns or (rows[0].keys() if rows else ()))
    if fmt == "plain":
        for row in rows:
            out("\t".join(_cell(row.get(c)) for c in columns))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, show_lines=False)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    Console(file=_data or sys.stdout).print(table)


def emit_one(record: dict[str, Any], fmt: str | None) -> None:
    """One record: ``key  value`` lines (table / plain), or a JSON object."""
    if fmt in ("json", "jsonl"):
        out(json.dumps(record, ensure_ascii=False, indent=2 if fmt == "json" else None))
        return
    width = max((len(k) for k in record), default=0)
    for key, value in record.items():
        out(f"{key:<{width}}  {_cell(value)}")


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def progress(label: str) -> Iterator[ProgressCallback]:
    """A callback for a job's progress: a bar (done/total, rate, ETA) on a terminal, a line
    per report otherwise (logs and CI read those)."""
    if not sys.stderr.isatty():
        yield lambda p: note(f"  … {label}: {p}")
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn,
                               TimeRemainingColumn)

    with Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
             TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
             transient=False) as bar:
        task = bar.add_task(label, total=None, rate="")

        def update(p: Progress) -> None:
            bar.update(task, completed=p.done, total=p.total, rate=f"{p.rate:.0f} files/s")

        yield update
