"""Builds the OTLP exporters (gRPC or HTTP/protobuf) for one signal from its ``OTLPTarget``.

The target carries every value explicitly, so the exporters never parse ``OTEL_*`` headers
themselves: their parser logs a malformed header verbatim, secret included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._config import OTLPTarget

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricExporter
    from opentelemetry.sdk.trace.export import SpanExporter


def metric_exporter(target: OTLPTarget) -> MetricExporter:
    if target.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as Grpc

        return Grpc(endpoint=target.endpoint, headers=dict(target.headers), timeout=target.timeout)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as Http

    return Http(endpoint=target.endpoint, headers=dict(target.headers), timeout=target.timeout)


def span_exporter(target: OTLPTarget) -> SpanExporter:
    if target.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

        return Grpc(endpoint=target.endpoint, headers=dict(target.headers), timeout=target.timeout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    return Http(endpoint=target.endpoint, headers=dict(target.headers), timeout=target.timeout)
