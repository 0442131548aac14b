"""Shared fixtures: a real OTLP receiver, and llmobs started and stopped around each test."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import llmobs
from llmobs import safety
from tests.otlp_receiver import OTLPReceiver


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with no OTEL_*/LLMOBS_* variables and no warnings given, and ends with
    llmobs shut down."""
    for key in list(os.environ):
        if key.startswith(("OTEL_", "LLMOBS_")):
            monkeypatch.delenv(key)
    safety._reported.clear()  # "warn once" starts over in each test
    yield
    llmobs.shutdown(timeout=2)


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as r:
        yield r


@pytest.fixture
def otlp(receiver: OTLPReceiver) -> Iterator[Callable[..., OTLPReceiver]]:
    """Start llmobs exporting to the receiver over gRPC (or HTTP): ``otlp(protocol="http/protobuf")``."""

    def start(protocol: str = "grpc", **options: Any) -> OTLPReceiver:
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


BASE = {"gen_ai.request.model": "m", "gen_ai.operation.name": "chat", "gen_ai.provider.name": "llmobs"}


def exported(receiver: OTLPReceiver, name: str, attributes: dict[str, Any] | None = None) -> list[Any]:
    """Force an export and return the points of ``name`` whose attributes equal ``attributes`` exactly."""
    assert llmobs.force_flush(timeout=5)
    points = receiver.latest(name)
    if attributes is None:
        return points
    return [p for p in points if p.attributes == attributes]


def one(receiver: OTLPReceiver, name: str, attributes: dict[str, Any]) -> Any:
    """The single exported point of ``name`` with exactly ``attributes``."""
    points = exported(receiver, name, attributes)
    assert len(points) == 1, f"{name} {attributes}: {[p.attributes for p in receiver.latest(name)]}"
    return points[0]
