"""Fake model servers for the model-client tests; each test gets fresh ones."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.fake_dashscope import FakeDashScope
from tests.fakes.fake_eas import FakeEas


@pytest.fixture
def fake_dashscope() -> Iterator[FakeDashScope]:
    server = FakeDashScope().start()
    yield server
    server.stop()


@pytest.fixture
def fake_eas() -> Iterator[FakeEas]:
    server = FakeEas().start()
    yield server
    server.stop()
