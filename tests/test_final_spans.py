"""The span pipeline: spans encoded as they end, so that the batch processor's queue holds two objects
per span and the export thread only sends; what arrives is exactly what the SDK's own encoder makes of
the same spans, over gRPC and HTTP, including spans left unencoded while the encoder's logger is off; a
span the encoder rejects is left out alone; exports of at most ``EXPORT_BATCH`` spans unless the user
set the SDK's ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE``, and no span lost to the smaller batches."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator, Sequence

import pytest
from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import _encode_span as sdk_encode
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import llmobs
from llmobs import _final_spans, _lifecycle
from llmobs._final_spans import EXPORT_BATCH, SIGNALS
from llmobs._otlp import spans_in
from tests.otlp_receiver import OTLPReceiver

Otlp = Callable[..., OTLPReceiver]
PROTOCOLS = ["grpc", "http/protobuf"]


@llmobs.monitor_inference(model="m", operation="chat")
def predict() -> None:
    pass


@llmobs.monitor_inference(model="m", operation="chat")
def fail() -> None:
    raise ValueError("a prompt the span must not carry")


@pytest.fixture
def encoder_logger_off() -> Iterator[None]:
    """The SDK encoder's logger silenced, as ``logging.getLogger("opentelemetry").setLevel(CRITICAL)`` would."""
    SIGNALS.logger.setLevel(logging.CRITICAL)
    yield
    SIGNALS.logger.setLevel(logging.NOTSET)


def _batches(receiver: OTLPReceiver, calls: int) -> list[int]:
    """Spans per trace export after ``calls`` calls and a flush."""
    for _ in range(calls):
        predict()
    assert llmobs.force_flush(timeout=10)
    receiver.wait_for(lambda r: len(r.spans()) >= calls)
    return [spans_in(r.message) for r in receiver.requests if r.signal == "traces"]


def _serialized(request: ExportTraceServiceRequest) -> list[tuple[bytes, bytes, bytes]]:
    """Each span of an export request with its resource and scope, serialized, in a stable order."""
    return sorted(
        (res.resource.SerializeToString(deterministic=True), scope.scope.SerializeToString(deterministic=True),
         span.SerializeToString(deterministic=True))
        for res in request.resource_spans for scope in res.scope_spans for span in scope.spans
    )  # fmt: skip


def _same_as_the_sdk_encoder(receiver: OTLPReceiver) -> None:
    """A user span with an event in a scope of its own, a call and a failed call: received as the SDK's
    encoder encodes the same spans, kept beside llmobs's pipeline as they end."""
    provider = _lifecycle.state.tracer_provider
    assert provider is not None
    kept = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("user.code", schema_url="https://opentelemetry.io/schemas/1.26.0")
    with tracer.start_as_current_span("user span", attributes={"k": "v", "n": 3}) as span:
        span.add_event("e", {"x": 1.5})
        predict()
    with pytest.raises(ValueError):
        fail()
    assert llmobs.force_flush(timeout=10)
    receiver.wait_for(lambda r: len(r.spans()) >= 3)
    ours = sorted(s for r in receiver.requests if r.signal == "traces" for s in _serialized(r.message))
    sdk = _serialized(encode_spans(kept.get_finished_spans()))
    assert len(sdk) == 3 and ours == sdk  # the same bytes: attributes, events, status, ids, times, scopes
    assert sorted(s.name for s in receiver.spans()) == ["chat m", "chat m", "user span"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_what_arrives_is_what_the_sdk_encoder_makes_of_the_same_spans(otlp: Otlp, protocol: str) -> None:
    _same_as_the_sdk_encoder(otlp(protocol, traces=True))


@pytest.mark.usefixtures("encoder_logger_off")
def test_with_the_encoder_logger_off_spans_are_encoded_at_export(otlp: Otlp) -> None:
    receiver = otlp(traces=True)
    assert not SIGNALS.passes()
    _same_as_the_sdk_encoder(receiver)


def test_the_queue_holds_two_objects_per_span(otlp: Otlp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2048")  # nothing exported while counting
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")
    receiver = otlp(traces=True)
    predict()  # the first call's one-off objects (instruments, attribute sets) before counting
    gc.collect()
    before = len(gc.get_objects())
    for _ in range(500):
        predict()
    gc.collect()
    held = (len(gc.get_objects()) - before) / 500
    # The SDK's ended span is eleven objects for the collector to walk (1.45); encoded, the span and
    # its message (the resource, the scope and the sampled context are shared).
    assert held <= 2.5, held
    assert llmobs.force_flush(timeout=10)
    assert receiver.wait_for(lambda r: len(r.spans()) == 501)


def test_without_the_sdk_encoder_the_sdk_exporter_encodes(otlp: Otlp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_final_spans, "ENCODES", False)  # a later SDK that moved its internal encoder
    assembled: list[int] = []
    real = _final_spans.request

    def request(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
        assembled.append(len(spans))
        return real(spans)

    monkeypatch.setattr(_final_spans, "request", request)
    assert sum(_batches(otlp(traces=True), 70)) == 70
    assert assembled == []


@pytest.mark.parametrize("where", ["as it ends", "at export"])
def test_a_span_the_encoder_rejects_is_left_out_with_one_warning(
    request: pytest.FixtureRequest,
    otlp: Otlp,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    receiver = otlp(traces=True)
    if where == "at export":
        request.getfixturevalue("encoder_logger_off")

    def encode(span: ReadableSpan) -> object:
        if span.status.status_code is StatusCode.ERROR:
            raise TypeError("unencodable")
        return sdk_encode(span)

    monkeypatch.setattr(_final_spans, "_encode_span", encode)
    with caplog.at_level(logging.WARNING, logger="llmobs"):
        predict()
        for _ in range(2):
            with pytest.raises(ValueError):  # the caller's own exception, nothing of the encoder's
                fail()
        predict()
        assert llmobs.force_flush(timeout=10)
    assert [s.name for s in receiver.wait_for(lambda r: r.spans())] == ["chat m", "chat m"]  # the batch's others
    assert [s.status_code for s in receiver.spans()] == ["STATUS_CODE_UNSET"] * 2
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings.count("llmobs: internal error in span encoding; telemetry for it is skipped") == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_spans_are_exported_in_small_batches_and_none_is_lost(otlp: Otlp, protocol: str) -> None:
    batches = _batches(otlp(protocol, traces=True), 200)
    assert sum(batches) == 200
    assert max(batches) == EXPORT_BATCH == 64


def test_the_sdk_batch_size_variable_wins(monkeypatch: pytest.MonkeyPatch, otlp: Otlp) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "150")
    batches = _batches(otlp(traces=True), 200)
    assert sum(batches) == 200
    assert max(batches) == 150
