"""Builds the OTLP exporters (gRPC or HTTP/protobuf) for one signal from its ``OTLPTarget``, and splits
metric exports into requests a backend accepts.

The target carries every value explicitly, so the exporters never parse ``OTEL_*`` headers
themselves: their parser logs a malformed header verbatim, secret included.

A metric export makes one attempt per request: what fails goes out again with the next export
(cumulative points always do; delta baselines move only on success), so the exporters' own retry
back-off would only hold the export thread, and shutdown, for nothing.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

from ._config import OTLPTarget
from ._failsafe import guarded, warn_once

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.sdk._logs.export import LogRecordExporter
    from opentelemetry.sdk.metrics.export import Metric, MetricExporter, MetricsData, ResourceMetrics, ScopeMetrics
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExportResult

SLACK = 64  # bytes for the length prefixes that grow as a request fills


class Backend:
    """What the backend answered to the latest failed metric request (HTTP only: gRPC hides it)."""

    def __init__(self) -> None:
        self.failure: str | None = None
        self.retry_after: float | None = None  # seconds, from a 429/503 Retry-After header

    def clear(self) -> None:
        self.failure, self.retry_after = None, None


def metric_exporter(target: OTLPTarget) -> MetricExporter:
    if target.protocol == "grpc":
        from grpc import StatusCode
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as Grpc

        # OK is never an error: no status is retried inside one export (see the module docstring).
        once = (StatusCode.OK,)
        return Grpc(
            endpoint=target.endpoint, headers=dict(target.headers), timeout=target.timeout, retryable_error_codes=once
        )
    from ._otlp_http import HttpMetricExporter

    return HttpMetricExporter(target)


def backend(exporter: object) -> Backend | None:
    """The answers an exporter built here saw; None for any other exporter."""
    found = getattr(exporter, "llmobs_backend", None)
    return found if isinstance(found, Backend) else None


class SpanSender(Protocol):
    """A span exporter that also sends a request already encoded (``_final_spans``)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult: ...
    def send(self, request: ExportTraceServiceRequest) -> SpanExportResult: ...
    def shutdown(self) -> None: ...
    def force_flush(self, timeout_millis: int = 30_000) -> bool: ...


def span_exporter(target: OTLPTarget) -> SpanSender:
    if target.protocol == "grpc":
        from ._otlp_grpc import GrpcSpanExporter

        return GrpcSpanExporter(endpoint=target.endpoint, headers=dict(target.headers), timeout=target.timeout)
    from ._otlp_http import HttpSpanExporter

    return HttpSpanExporter(endpoint=target.endpoint, headers=dict(target.headers), timeout=target.timeout)


def spans_in(request: ExportTraceServiceRequest) -> int:
    """The number of spans in a trace export request."""
    return sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)


def log_exporter(target: OTLPTarget) -> LogRecordExporter:
    if target.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as Grpc

        return Grpc(endpoint=target.endpoint, headers=dict(target.headers), timeout=target.timeout)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as Http

    return Http(endpoint=target.endpoint, headers=dict(target.headers), timeout=target.timeout)


# The OTLP span and log exporters retry a failed export after a back-off of at least 0.8 s, and only
# while it fits in their timeout: with this timeout an export makes exactly one attempt.
SINGLE_ATTEMPT_TIMEOUT = 0.75


class _Stoppable(Protocol):
    def shutdown(self) -> None: ...


E = TypeVar("E", bound=_Stoppable)


class FinalAttempt(Generic[E]):
    """The exporter ``make`` builds for ``target`` and, after ``closing()``, a second one that makes a
    single attempt, for the batch processor's final flush: a backend that refuses at once must not hold
    ``shutdown()`` for its whole budget while the first one backs off and retries."""

    def __init__(self, target: OTLPTarget, make: Callable[[OTLPTarget], E]) -> None:
        self.target = target
        self._make = make
        self.first = make(target)
        self._final: E | None = None

    @guarded(where="final exporter")
    def closing(self) -> None:
        timeout = min(self.target.timeout, SINGLE_ATTEMPT_TIMEOUT)
        self._final = self._make(dataclasses.replace(self.target, timeout=timeout))

    @property
    def current(self) -> E:
        """The exporter an export goes through now."""
        return self.first if self._final is None else self._final

    def shutdown(self) -> None:
        self.first.shutdown()
        if self._final is not None:
            self._final.shutdown()


def retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delay-seconds or an HTTP date); None if absent or bad."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time()) if when.tzinfo is not None else None


def public_url(url: str) -> str:
    """``url`` fit for a log line: no user, password, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def failure_hint(url: str, reason: str) -> str:
    """The one warning for people when metric export to ``url`` first fails, with the likely causes."""
    return (
        f"llmobs: metric export to {public_url(url)} failed ({reason}); llmobs keeps trying at each export "
        "interval. Likely causes: nothing listens there; a protocol that does not match the port (4317 is "
        "OTLP/gRPC, 4318 OTLP/HTTP: OTEL_EXPORTER_OTLP_PROTOCOL); for OTLP/HTTP a base URL in "
        "OTEL_EXPORTER_OTLP_ENDPOINT gets /v1/metrics appended, while OTEL_EXPORTER_OTLP_METRICS_ENDPOINT "
        "must be the full URL; a Prometheus server accepts OTLP only with its OTLP receiver enabled (2.47+ "
        "--enable-feature=otlp-write-receiver, 3.x --web.enable-otlp-receiver) at /api/v1/otlp/v1/metrics."
    )


Request = tuple["MetricsData", int]
"""One export request and its encoded (uncompressed) size in bytes."""


def split(data: MetricsData, max_bytes: int) -> list[Request]:
    """``data`` as exports whose OTLP requests stay under ``max_bytes`` each, with their sizes, measured with
    the encoder the exporters use (a Collector refuses gRPC messages over 4 MiB by default)."""
    size = _size(data)
    if size is not None and size <= max_bytes:
        return [(data, size)]
    out: list[Request] = []
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            packer = _Packer(rm, sm, max_bytes)
            for metric in sm.metrics:
                packer.add(metric)
            out += packer.done()
    return out


@guarded(where="measuring a metric export")
def _size(data: MetricsData) -> int | None:
    """The encoded size of ``data`` as one request; None when it failed to encode, so that each metric is
    then measured, and dropped, alone."""
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

    return int(encode_metrics(data).ByteSize())


class _Packer:
    """Packs the metrics of one resource and scope into requests under a byte budget, splitting a metric
    by its points when it is larger than one request."""

    def __init__(self, rm: ResourceMetrics, sm: ScopeMetrics, max_bytes: int) -> None:
        self._rm, self._sm = rm, sm
        self._base = self._size([])
        self._budget = max_bytes - self._base - SLACK
        self._requests: list[Request] = []
        self._batch: list[Metric] = []
        self._used = 0

    def _wrap(self, metrics: list[Metric]) -> MetricsData:
        from opentelemetry.sdk.metrics.export import MetricsData, ResourceMetrics, ScopeMetrics

        scope = ScopeMetrics(self._sm.scope, metrics, self._sm.schema_url)
        return MetricsData([ResourceMetrics(self._rm.resource, [scope], self._rm.schema_url)])

    def _size(self, metrics: list[Metric]) -> int:
        from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

        return int(encode_metrics(self._wrap(metrics)).ByteSize())

    @guarded(where="splitting a metric export by size")
    def add(self, metric: Metric) -> None:
        size = self._size([metric]) - self._base
        if size <= self._budget:
            self._put(metric, size)
            return
        header = self._size([_with(metric, [])]) - self._base
        chunk: list[Any] = []
        used = header
        for point in metric.data.data_points:
            cost = self._size([_with(metric, [point])]) - self._base - header
            if header + cost > self._budget:
                warn_once(f"export size:{metric.name}", "llmobs: a point of %s is too large to export", metric.name)
                continue
            if chunk and used + cost > self._budget:
                self._put(_with(metric, chunk), used)
                chunk, used = [], header
            chunk.append(point)
            used += cost
        if chunk:
            self._put(_with(metric, chunk), used)

    def _put(self, metric: Metric, size: int) -> None:
        if self._batch and self._used + size > self._budget:
            self._close_batch()
        self._batch.append(metric)
        self._used += size

    def _close_batch(self) -> None:
        """The batch becomes a request, measured whole: the parts' sizes leave out the length prefixes' growth."""
        self._requests.append((self._wrap(self._batch), self._size(self._batch)))
        self._batch, self._used = [], 0

    def done(self) -> list[Request]:
        if self._batch:
            self._close_batch()
        return self._requests


def _with(metric: Metric, points: list[Any]) -> Metric:
    """``metric`` with only ``points``."""
    from opentelemetry.sdk.metrics.export import Metric

    data: Any = metric.data  # Sum, Gauge or Histogram: each a dataclass with data_points
    return Metric(metric.name, metric.description, metric.unit, dataclasses.replace(data, data_points=points))
