"""The HTTP client instrumentation patches classes process-wide: undone after these tests, so that
the tests that follow call their servers through unpatched clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llmobs._clients import uninstrument_http_clients


@pytest.fixture(scope="package", autouse=True)
def unpatched_clients_afterwards() -> Iterator[None]:
    yield
    uninstrument_http_clients()
