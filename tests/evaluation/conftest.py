"""A fresh fake DashScope server per test that asks for one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.fake_dashscope import FakeDashScope


@pytest.fixture
def fake_dashscope() -> Iterator[FakeDashScope]:
    server = FakeDashScope().start()
    yield server
    server.stop()
