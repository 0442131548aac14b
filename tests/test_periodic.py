"""The periodic export against a real OTLP receiver that refuses, hangs, throttles or sits at a wrong
path: nothing is lost across an outage, waits are bounded, Retry-After is honoured, people get one
warning that says what to check."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.resources import Resource

from llmobs import semconv as names
from llmobs._aggregation import Registry
from llmobs._config import OTLPTarget
from llmobs._otlp import metric_exporter
from llmobs._periodic import PeriodicExport
from llmobs._points import Points
from tests.otlp_receiver import OTLPReceiver, blackhole

TRANSPORTS = ["grpc", "http/protobuf"]
ATTRS = (("gen_ai.request.model", "m"),)
TOKENS = names.BATCH_TOKENS.name


def url(receiver: OTLPReceiver, protocol: str) -> str:
    return receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint + "/v1/metrics"


@pytest.fixture
def exports() -> Iterator[list[PeriodicExport]]:
    """Started exports, shut down after the test."""
    started: list[PeriodicExport] = []
    yield started
    for export in started:
        export.shutdown(time.monotonic() + 2)


def start(
    exports: list[PeriodicExport],
    endpoint: str,
    protocol: str,
    registry: Registry,
    *,
    delta: bool = False,
    interval: float = 3600,
    timeout: float = 5,
) -> PeriodicExport:
    exporter = metric_exporter(OTLPTarget(protocol, endpoint, {}, 10))
    export = PeriodicExport(
        registry, exporter, Points(Resource({}), delta), interval, timeout, endpoint=endpoint, max_bytes=4_000_000
    )
    exports.append(export)
    return export


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "llmobs" and r.levelno >= logging.WARNING]


@pytest.mark.parametrize("protocol", TRANSPORTS)
def test_delta_sums_add_up_to_the_calls_across_an_outage(
    receiver: OTLPReceiver, exports: list[PeriodicExport], protocol: str
) -> None:
    registry = Registry()
    export = start(exports, url(receiver, protocol), protocol, registry, delta=True)
    series = registry.series(names.BATCH_TOKENS, ATTRS)
    series.record(2)
    assert export.export_once()
    receiver.mode = "refuse"
    for _ in range(3):
        series.record(5)
        assert not export.export_once()
    receiver.mode = "ok"
    series.record(1)
    assert export.export_once()
    assert export.export_once()  # nothing new: no point
    sent = [p for p in receiver.metrics() if p.name == TOKENS]
    assert [p.value for p in sent] == [2, 16] and {p.temporality for p in sent} == {"delta"}
    assert sent[0].time_unix_nano == sent[1].start_time_unix_nano  # the second covers the outage


@pytest.mark.parametrize("protocol", TRANSPORTS)
def test_one_export_returns_within_the_export_timeout_against_a_hung_backend(
    exports: list[PeriodicExport], protocol: str
) -> None:
    registry = Registry()
    registry.series(names.BATCH_TOKENS, ATTRS).record(1)
    with blackhole() as endpoint:
        export = start(exports, endpoint, protocol, registry, timeout=0.3)  # the exporter's own is 10 s
        before = time.monotonic()
        for _ in range(3):
            assert not export.export_once()
        elapsed = time.monotonic() - before
        senders = [t for t in threading.enumerate() if t.name == "llmobs-export-send"]
        assert elapsed < 5 and len(senders) == 1  # the hung request holds one thread, not one per export
        export.shutdown(time.monotonic() + 1)


@pytest.mark.parametrize("protocol", TRANSPORTS)
def test_shutdown_against_a_refusing_backend_makes_one_attempt(
    receiver: OTLPReceiver, exports: list[PeriodicExport], protocol: str
) -> None:
    registry = Registry()
    registry.series(names.BATCH_TOKENS, ATTRS).record(1)
    export = start(exports, url(receiver, protocol), protocol, registry)
    receiver.mode = "refuse"
    before = time.monotonic()
    assert export.shutdown(before + 5)
    assert receiver.attempts == 1 and time.monotonic() - before < 4  # no retry back-off


@pytest.mark.parametrize("protocol", TRANSPORTS)
def test_shutdown_sends_what_was_recorded(receiver: OTLPReceiver, exports: list[PeriodicExport], protocol: str) -> None:
    registry = Registry()
    export = start(exports, url(receiver, protocol), protocol, registry)
    registry.series(names.BATCH_TOKENS, ATTRS).record(7)
    assert export.shutdown(time.monotonic() + 5)
    assert [p.value for p in receiver.latest(TOKENS)] == [7]


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_skips_exports_until_then(
    receiver: OTLPReceiver, exports: list[PeriodicExport], status: int
) -> None:
    registry = Registry()
    registry.series(names.BATCH_TOKENS, ATTRS).record(1)
    export = start(exports, url(receiver, "http/protobuf"), "http/protobuf", registry)
    receiver.mode, receiver.throttle_status, receiver.retry_after = "throttle", status, 1
    assert not export.export_once()
    assert not export.export_once() and receiver.attempts == 1  # skipped: the backend asked to wait
    receiver.mode = "ok"
    receiver.wait_for(lambda _: export.export_once(), timeout=5)
    assert receiver.attempts == 2 and [p.value for p in receiver.latest(TOKENS)] == [1]


def test_retry_after_is_bounded_by_a_few_intervals(receiver: OTLPReceiver, exports: list[PeriodicExport]) -> None:
    registry = Registry()
    registry.series(names.BATCH_TOKENS, ATTRS).record(1)
    receiver.mode, receiver.retry_after = "throttle", 3600
    start(exports, url(receiver, "http/protobuf"), "http/protobuf", registry, interval=0.2, timeout=0.2)
    receiver.wait_for(lambda r: r.attempts, timeout=5)
    receiver.mode = "ok"
    receiver.wait_for(lambda r: r.latest(TOKENS), timeout=5)  # at most 3 intervals later, not an hour


def test_the_first_failure_logs_one_warning_with_the_likely_causes(
    receiver: OTLPReceiver, exports: list[PeriodicExport], caplog: pytest.LogCaptureFixture
) -> None:
    export = start(exports, receiver.grpc_endpoint, "grpc", Registry())
    receiver.mode = "refuse"
    for _ in range(3):
        assert not export.export_once()
    [warning] = warnings(caplog)
    assert receiver.grpc_endpoint in warning
    assert all(hint in warning for hint in ("4317", "4318", "/v1/metrics", "Prometheus"))


def test_a_wrong_path_is_named_in_the_warning_without_credentials(
    receiver: OTLPReceiver, exports: list[PeriodicExport], caplog: pytest.LogCaptureFixture
) -> None:
    base = receiver.http_endpoint
    endpoint = base.replace("http://", "http://user:s3cret@") + "/otlp/v1/metrics?token=s3cret"
    export = start(exports, endpoint, "http/protobuf", Registry())
    for _ in range(2):
        assert not export.export_once()
    [warning] = warnings(caplog)
    assert f"{base}/otlp/v1/metrics failed (HTTP 404 Not Found)" in warning
    assert all("s3cret" not in r.getMessage() for r in caplog.records)
