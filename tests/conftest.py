"""Shared fixtures: a real OTLP receiver, and llmobs started and stopped around each test."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import llmobs
from llmobs import _failsafe
from llmobs._config import Protocol
from tests.otlp_receiver import OTLPReceiver


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each test starts with no OTEL_*/LLMOBS_* variables and no warnings given, and ends with
    llmobs shut down. The embedded default's history goes to a data directory of the test's own."""
    for key in list(os.environ):
        if key.startswith(("OTEL_", "LLMOBS_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))
    _failsafe.reset()  # "warn once" starts over in each test
    yield
    llmobs.shutdown(timeout=2)


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as r:
        yield r


@pytest.fixture
def otlp(receiver: OTLPReceiver) -> Iterator[Callable[..., OTLPReceiver]]:
    """Start llmobs exporting to the receiver over gRPC (or HTTP): ``otlp(protocol="http/protobuf")``."""

    def start(protocol: Protocol = "grpc", **options: Any) -> OTLPReceiver:
        endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
        options.setdefault("export_interval", 3600)
        llmobs.init(service_name="test", endpoint=endpoint, protocol=protocol, **options)
        return receiver

    yield start
    llmobs.shutdown(timeout=2)  # while the receiver still listens


@pytest.fixture
def llmobs_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog
