"""The OTLP span pipeline of llmobs's own TracerProvider: spans encoded as they end, a single-attempt
mode for shutdown (``_otlp.FinalAttempt``), and its batch size."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from opentelemetry.context import Context
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanContext, TraceFlags
from typing_extensions import override

from ._config import OTLPTarget
from ._failsafe import PassSignals, internal_error
from ._otlp import FinalAttempt, SpanSender, span_exporter

if TYPE_CHECKING:
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanMessage
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

try:  # the SDK's own encoder, one span at a time; with a later SDK that moved it, the exporter encodes
    from opentelemetry.exporter.otlp.proto.common._internal import _encode_instrumentation_scope, _encode_resource
    from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import _encode_span
except ImportError:  # pragma: no cover - the installed SDK has them; test_final_spans covers the fallback
    ENCODES = False
else:
    ENCODES = True
    # That encoder logs and swallows any exception from an attribute's encoding, a signal handler's too.
    SIGNALS = PassSignals(_encode_resource.__module__)

EXPORT_BATCH = 64
"""Spans per export. The SDK's 512 take ~14 ms of Python encoding on the export thread, and the request
thread then waits up to the GIL's 5 ms switch interval at each of its I/O calls (uvicorn's p99 doubled);
64 take ~2 ms at the same CPU per span (docs/performance.md, "Tracing under uvicorn")."""


class EncodedSpan:
    """An ended span as its OTLP message, with what the request's grouping reads (its resource and
    scope, shared) and what the batch processor reads (``context.trace_flags.sampled``, true of every
    span encoded): two objects for the garbage collector to walk while it waits in the queue, where the
    SDK's span is eleven."""

    __slots__ = ("message", "resource", "scope")
    context = SpanContext(0, 0, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))

    def __init__(self, span: ReadableSpan) -> None:
        self.message: SpanMessage = _encode_span(span)
        self.resource: Resource = span.resource
        self.scope: InstrumentationScope | None = span.instrumentation_scope or None


class EncodingSpanProcessor(SpanProcessor):
    """Hands ``batch`` each sampled span encoded, on the thread that ended it (24 µs a span), so that
    fewer objects wait in its queue and its export thread only sends. A span goes unencoded, to be
    encoded at export, while the encoder's logger is off: a signal handler's exception could not then
    be passed through it (``PassSignals``)."""

    def __init__(self, batch: BatchSpanProcessor) -> None:
        self._batch = batch
        SIGNALS.install()

    @override
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._batch.on_start(span, parent_context)

    @override
    def on_end(self, span: ReadableSpan) -> None:
        if not (span.context and span.context.trace_flags.sampled):
            return
        if not SIGNALS.passes():
            self._batch.on_end(span)
            return
        try:
            encoded = EncodedSpan(span)
        except Exception:  # noqa: BLE001 - the span is lost, not the request; a signal's exception goes on
            internal_error("span encoding")
            return
        self._batch.on_end(cast(ReadableSpan, encoded))  # the batch processor reads only its context

    @override
    def shutdown(self) -> None:
        SIGNALS.remove()
        self._batch.shutdown()  # type: ignore[no-untyped-call]

    @override
    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._batch.force_flush(timeout_millis)


def request(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    """The OTLP request for a batch, grouped by resource and scope as the SDK's encoder groups it: spans
    encoded as they ended as they are, any other encoded now. A span the encoder rejects is left out
    with one warning, where the SDK's export would fail the whole batch."""
    grouped: defaultdict[Resource, defaultdict[InstrumentationScope | None, list[SpanMessage]]]
    grouped = defaultdict(lambda: defaultdict(list))
    for span in spans:
        try:
            encoded = span if isinstance(span, EncodedSpan) else EncodedSpan(span)
        except Exception:  # noqa: BLE001 - one bad span must not lose the batch
            internal_error("span encoding")
            continue
        grouped[encoded.resource][encoded.scope].append(encoded.message)
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=_encode_resource(resource),
                scope_spans=[
                    ScopeSpans(
                        scope=_encode_instrumentation_scope(scope),  # type: ignore[arg-type]
                        spans=messages,
                        schema_url=(scope and scope.schema_url) or "",
                    )
                    for scope, messages in scopes.items()
                ],
                schema_url=resource.schema_url,
            )
            for resource, scopes in grouped.items()
        ]
    )


def export_batch() -> int | None:
    """``EXPORT_BATCH``, or None when ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` is set: the SDK then reads the
    user's value, as it would without llmobs."""
    return None if os.environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "").strip() else EXPORT_BATCH


class OTLPSpans(FinalAttempt[SpanSender], SpanExporter):
    """Exports through the OTLP span exporter of ``target``, a single attempt once ``closing()``."""

    def __init__(self, target: OTLPTarget) -> None:
        super().__init__(target, span_exporter)

    @override
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        exporter = self.current
        return exporter.send(request(spans)) if ENCODES else exporter.export(spans)

    @override
    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.first.force_flush(timeout_millis)
