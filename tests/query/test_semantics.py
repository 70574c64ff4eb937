"""Every valid case on every backend: returned ids == the case's ids == the oracle's ids."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mmdm.query import Node, Query, UnsupportedFeatureError, parse
from mmdm.query.compile.es import compile_es
from mmdm.query.compile.milvus import compile_milvus

from .cases import VALID, VECTOR_CASES, Case
from .conftest import oracle

VECTOR_VALID = [c for c in VALID if c.id in VECTOR_CASES]


@pytest.mark.parametrize("case", VALID, ids=[c.id for c in VALID])
def test_case(case: Case, backend, request: pytest.FixtureRequest) -> None:
    name, run = backend
    gap = case.gaps.get(name)
    if gap is not None:
        request.applymarker(pytest.mark.xfail(raises=gap.raises, strict=True, reason=gap.kind))
    query = parse(case.text)
    assert oracle(query) == case.ids, "the oracle disagrees with the hand-written ids"
    assert run(query) == case.ids


@pytest.mark.parametrize("case", VECTOR_VALID, ids=[c.id for c in VECTOR_VALID])
def test_vector_case(case: Case, vector_backend) -> None:
    _name, run = vector_backend
    query = parse(case.text)
    assert oracle(query) == case.ids, "the oracle disagrees with the hand-written ids"
    assert run(query) == case.ids


@pytest.mark.parametrize(("backend", "compile_"), [("milvus", compile_milvus),
                                                  ("elasticsearch", compile_es)])
def test_vector_compilers_refuse_every_other_case(
        backend: str, compile_: Callable[[Query | Node], object]) -> None:
    """The declared gap, both ways: VECTOR_CASES compile, every other valid case is refused."""
    compiled = set()
    for case in VALID:
        try:
            compile_(parse(case.text))
        except UnsupportedFeatureError as exc:
            assert exc.backend == backend and exc.code == "unsupported-construct", case.id
        else:
            compiled.add(case.id)
    assert compiled == VECTOR_CASES
