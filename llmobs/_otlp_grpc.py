"""The OTLP/gRPC span exporter that also sends a request llmobs assembled from spans encoded as they
ended (``_final_spans``), with the SDK's own retries. Imported only when spans go over OTLP/gRPC."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from typing_extensions import override

from ._otlp import spans_in


class GrpcSpanExporter(OTLPSpanExporter):
    """The SDK's OTLP/gRPC span exporter, with ``send`` for a request already encoded."""

    def send(self, request: ExportTraceServiceRequest) -> SpanExportResult:
        return self._export(request)

    @override
    def _translate_data(self, data: Sequence[ReadableSpan] | ExportTraceServiceRequest) -> ExportTraceServiceRequest:
        return data if isinstance(data, ExportTraceServiceRequest) else super()._translate_data(data)

    @override
    def _count_data(self, data: Sequence[ReadableSpan] | ExportTraceServiceRequest) -> int:
        return spans_in(data) if isinstance(data, ExportTraceServiceRequest) else len(data)
