"""Proves tests/otlp_receiver.py decodes exactly what the real OTLP exporters (gRPC and HTTP) send."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc import MetricsServiceStub
from opentelemetry.proto.metrics.v1.metrics_pb2 import ResourceMetrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.otlp_receiver import OTLPReceiver, blackhole, free_port

RESOURCE = Resource.create({"service.name": "receiver-test"})
TRANSPORTS = ["grpc", "http"]
ATTRS: dict[str, Any] = {"gen_ai.request.model": "m", "stream": True, "n": 2, "ratio": 0.5, "tags": ["a", "b"]}


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as r:
        yield r


def metric_exporter(r: OTLPReceiver, transport: str, **kw: Any) -> MetricExporter:
    if transport == "grpc":
        return GrpcMetricExporter(endpoint=r.grpc_endpoint, insecure=True, **kw)
    return HttpMetricExporter(endpoint=r.http_endpoint + "/v1/metrics", compression=Compression.Gzip, **kw)


def span_exporter(r: OTLPReceiver, transport: str, **kw: Any) -> SpanExporter:
    if transport == "grpc":
        return GrpcSpanExporter(endpoint=r.grpc_endpoint, insecure=True, **kw)
    return HttpSpanExporter(endpoint=r.http_endpoint + "/v1/traces", **kw)


def meter_provider(exporter: MetricExporter) -> MeterProvider:
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    exp_view = View(instrument_name="exp", aggregation=ExponentialBucketHistogramAggregation())
    return MeterProvider(metric_readers=[reader], resource=RESOURCE, views=[exp_view])


def one_span() -> Any:
    span = TracerProvider(resource=RESOURCE).get_tracer("t").start_span("s")
    span.end()
    return span


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_metrics_decoded_with_exact_values(receiver: OTLPReceiver, transport: str) -> None:
    provider = meter_provider(metric_exporter(receiver, transport))
    meter = provider.get_meter("llmobs.test", "1.0")
    meter.create_counter("calls", unit="{call}", description="calls made").add(3, ATTRS)
    updown = meter.create_up_down_counter("inflight")
    updown.add(5, {"gen_ai.request.model": "a"})
    updown.add(-2, {"gen_ai.request.model": "b"})
    hist = meter.create_histogram("latency", unit="s")
    exp = meter.create_histogram("exp")
    for v in (1, 7, 30):
        hist.record(v, {"k": "v"})
        exp.record(v)

    def gauge_cb(_: CallbackOptions) -> list[Observation]:
        return [Observation(1.5, {"g": 1})]

    meter.create_observable_gauge("temp", callbacks=[gauge_cb])
    try:
        assert provider.force_flush()
        [calls] = receiver.latest("calls")
        assert (calls.kind, calls.value, calls.monotonic, calls.temporality) == ("sum", 3, True, "cumulative")
        assert (calls.unit, calls.description, calls.scope) == ("{call}", "calls made", "llmobs.test")
        assert calls.transport == transport
        assert calls.attributes == ATTRS
        assert calls.resource["service.name"] == "receiver-test"
        assert 0 < calls.start_time_unix_nano <= calls.time_unix_nano

        assert [p.value for p in receiver.latest("inflight", attributes={"gen_ai.request.model": "b"})] == [-2]
        assert {p.monotonic for p in receiver.latest("inflight")} == {False}
        assert receiver.latest("inflight", attributes={"gen_ai.request.model": "zzz"}) == []
        assert receiver.latest("nope") == []

        [lat] = receiver.latest("latency")
        assert (lat.kind, lat.count, lat.sum, lat.min, lat.max) == ("histogram", 3, 38, 1, 30)
        assert lat.attributes == {"k": "v"}
        assert lat.explicit_bounds == [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000]
        assert lat.bucket_counts == [0, 1, 1, 0, 1] + [0] * 11
        assert lat.value is None

        [e] = receiver.latest("exp")
        assert (e.kind, e.temporality) == ("exponential_histogram", "cumulative")
        assert (e.count, e.sum, e.min, e.max, e.bucket_counts) == (3, 38, 1, 30, [])

        [g] = receiver.latest("temp")
        assert (g.kind, g.value, g.temporality, g.monotonic, g.attributes) == ("gauge", 1.5, None, None, {"g": 1})
        assert {r.transport for r in receiver.requests} == {transport}
    finally:
        provider.shutdown()
    # shutdown exported once more; latest() follows the newest request while metrics() keeps every point.
    assert len(receiver.requests) == 2
    assert [p.value for p in receiver.metrics() if p.name == "calls"] == [3, 3]
    if transport == "http":
        assert receiver.headers[0]["content-encoding"] == "gzip"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_spans_decoded_with_parent_link(receiver: OTLPReceiver, transport: str) -> None:
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(span_exporter(receiver, transport)))
    tracer = provider.get_tracer("llmobs.test")
    try:
        with tracer.start_as_current_span("parent", kind=SpanKind.SERVER) as parent:
            parent.set_status(Status(StatusCode.OK))
            with tracer.start_as_current_span("child", attributes=ATTRS) as child:
                child.add_event("evt", {"k": 1})
                child.set_status(Status(StatusCode.ERROR, "boom"))
        receiver.wait_for(lambda r: len(r.spans()) == 2)
    finally:
        provider.shutdown()
    c, p = receiver.spans()  # SimpleSpanProcessor exports each span as it ends: child first
    assert (c.name, p.name) == ("child", "parent")
    assert c.trace_id == p.trace_id and len(c.trace_id) == 32
    assert c.parent_span_id == p.span_id and len(p.span_id) == 16
    assert p.parent_span_id == ""
    assert (p.kind, c.kind) == ("SPAN_KIND_SERVER", "SPAN_KIND_INTERNAL")
    assert (p.status_code, c.status_code, c.status_message) == ("STATUS_CODE_OK", "STATUS_CODE_ERROR", "boom")
    assert c.attributes == ATTRS and p.attributes == {}
    assert c.events == [("evt", {"k": 1})]
    assert p.start_time_unix_nano <= c.start_time_unix_nano < c.end_time_unix_nano <= p.end_time_unix_nano
    assert (c.resource["service.name"], c.scope, c.transport) == ("receiver-test", "llmobs.test", transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_headers_captured(receiver: OTLPReceiver, transport: str) -> None:
    exporter = span_exporter(receiver, transport, headers={"x-api-key": "k"})
    try:
        assert exporter.export([one_span()]) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    [headers] = receiver.headers
    assert headers["x-api-key"] == "k"
    assert "otel-otlp-exporter-python" in headers["user-agent"].lower()
    if transport == "http":
        assert headers["content-type"] == "application/x-protobuf"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_refuse_mode_fails_export_quickly(receiver: OTLPReceiver, transport: str) -> None:
    receiver.mode = "refuse"
    exporter = span_exporter(receiver, transport, timeout=1)
    try:
        start = time.monotonic()
        assert exporter.export([one_span()]) == SpanExportResult.FAILURE
        assert time.monotonic() - start < 2
        assert receiver.attempts >= 1 and receiver.requests == []
        receiver.mode = "ok"  # the same exporter instance recovers once the backend does
        assert exporter.export([one_span()]) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert [s.name for s in receiver.spans()] == ["s"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_hang_mode_blocks_until_stop_and_stop_is_bounded(receiver: OTLPReceiver, transport: str) -> None:
    receiver.mode = "hang"
    exporter = span_exporter(receiver, transport, timeout=1)
    results: list[SpanExportResult] = []
    worker = threading.Thread(target=lambda: results.append(exporter.export([one_span()])))
    worker.start()
    try:
        receiver.wait_for(lambda r: r.attempts, timeout=2)
        assert results == []  # still blocked: the receiver never answered
        start = time.monotonic()
        receiver.stop()
        assert time.monotonic() - start < 1
        worker.join(3)
        assert results == [SpanExportResult.FAILURE]
    finally:
        exporter.shutdown()


def test_wait_for_and_clear(receiver: OTLPReceiver) -> None:
    with pytest.raises(AssertionError, match=r"metrics=\[\] spans=\[\]"):
        receiver.wait_for(lambda r: r.spans(), timeout=0.05)
    exporter = span_exporter(receiver, "grpc")
    try:
        assert exporter.export([one_span()]) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert receiver.wait_for(lambda r: [s.name for s in r.spans()]) == ["s"]
    receiver.clear()
    assert (receiver.requests, receiver.spans(), receiver.attempts) == ([], [], 0)


def test_free_port_and_blackhole() -> None:
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", free_port()))
    with blackhole() as endpoint:
        host, port = endpoint.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=1) as s:
            s.sendall(b"POST /v1/traces HTTP/1.1\r\n\r\n")
            s.settimeout(0.1)
            with pytest.raises(TimeoutError):
                s.recv(1)


def post(r: OTLPReceiver, body: bytes) -> tuple[int, str | None]:
    """POST ``body`` to the receiver's /v1/metrics: (status, Retry-After)."""
    request = urllib.request.Request(
        r.http_endpoint + "/v1/metrics", body, {"Content-Type": "application/x-protobuf"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers.get("Retry-After")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Retry-After")


def grpc_export(r: OTLPReceiver, request: ExportMetricsServiceRequest) -> grpc.RpcError:
    with grpc.insecure_channel(r.grpc_endpoint.removeprefix("http://")) as channel:
        stub: Any = MetricsServiceStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.RpcError) as failed:
            stub.Export(request, timeout=5)
    return failed.value


@pytest.mark.parametrize(("status", "code"), [(429, "RESOURCE_EXHAUSTED"), (503, "UNAVAILABLE")])
def test_throttle_mode_asks_to_retry_after(receiver: OTLPReceiver, status: int, code: str) -> None:
    receiver.mode, receiver.throttle_status, receiver.retry_after = "throttle", status, 7
    assert post(receiver, b"") == (status, "7")
    error: Any = grpc_export(receiver, ExportMetricsServiceRequest())
    assert error.code().name == code
    info = RetryInfo.FromString(dict(error.trailing_metadata())["google.rpc.retryinfo-bin"])
    assert info.retry_delay.seconds == 7
    assert receiver.attempts == 2 and receiver.requests == []


def test_max_receive_bytes_refuses_larger_requests() -> None:
    big = ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(schema_url="x" * 2000)])
    with OTLPReceiver(max_receive_bytes=1000) as receiver:
        assert post(receiver, big.SerializeToString())[0] == 413
        error: Any = grpc_export(receiver, big)
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert post(receiver, ExportMetricsServiceRequest().SerializeToString())[0] == 200
        assert [r.size for r in receiver.requests] == [0]
