"""Golden output of the vector-store compilers: ``golden/<backend>/<case>.json``.

They pin the text (review the diff after ``pytest --update-golden``, the only thing that writes
them); ``test_semantics.py`` checks what the output means on Milvus Lite and the fake ES.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mmdm.query import parse
from mmdm.query.compile.es import compile_es
from mmdm.query.compile.milvus import compile_milvus

from .cases import VALID, VECTOR_CASES, Case

GOLDEN = Path(__file__).parent / "golden"
BACKENDS: dict[str, Callable[[Case], Any]] = {
    "milvus": lambda c: {"expr": compile_milvus(parse(c.text)).expr},
    "es": lambda c: compile_es(parse(c.text)).body,
}
GOLDEN_CASES = [c for c in VALID if c.id in VECTOR_CASES]


def _text(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", GOLDEN_CASES, ids=[c.id for c in GOLDEN_CASES])
def test_golden(case: Case, backend: str, request: pytest.FixtureRequest) -> None:
    path = GOLDEN / backend / f"{case.id}.json"
    text = _text(BACKENDS[backend](case))
    if request.config.getoption("--update-golden"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}: run pytest --update-golden"
    assert path.read_text(encoding="utf-8") == text


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_stale_golden_files(backend: str) -> None:
    found = {p.stem for p in (GOLDEN / backend).glob("*.json")}
    assert found == VECTOR_CASES
