"""The OTLP/HTTP exporters llmobs adapts: the metric exporter with one attempt per request (its session
notes what the backend answered, for the first-failure warning and ``Retry-After``, and turns a failure
the exporter would retry after a back-off into one it does not), and the span exporter that also sends
a request assembled from spans encoded as they ended (``_final_spans``). Imported only when a signal
goes over OTLP/HTTP."""

from __future__ import annotations

from typing import Any

import requests
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export import SpanExportResult

from ._config import OTLPTarget
from ._otlp import Backend, retry_after

RETRIED = frozenset({429, 502, 503, 504})  # the statuses the exporter would retry within one export


class GaveUp(Exception):
    """Ends a failed request without the exporter's retry back-off: the next export sends it again."""


class _OneAttempt(requests.Session):
    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self._backend = backend
        self._unreachable = False

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        try:
            response = super().send(request, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as error:
            self._backend.failure = f"no answer: {type(error).__name__}"
            if self._unreachable:  # the exporter's immediate retry of a stale connection failed too
                raise GaveUp(f"{self._backend.failure}; llmobs sends these points with the next export") from error
            self._unreachable = True
            raise
        self._unreachable = False
        if response.status_code >= 400:
            self._backend.failure = f"HTTP {response.status_code} {response.reason}"
            if response.status_code in (429, 503):
                self._backend.retry_after = retry_after(response.headers.get("Retry-After"))
            if response.status_code in RETRIED:
                raise GaveUp(f"{self._backend.failure}; llmobs sends these points with the next export")
        return response


class HttpMetricExporter(OTLPMetricExporter):
    """The SDK's OTLP/HTTP metric exporter over a one-attempt session."""

    def __init__(self, target: OTLPTarget) -> None:
        self.llmobs_backend = Backend()
        super().__init__(
            endpoint=target.endpoint,
            headers=dict(target.headers),
            timeout=target.timeout,
            session=_OneAttempt(self.llmobs_backend),
        )


class HttpSpanExporter(OTLPSpanExporter):
    """The SDK's OTLP/HTTP span exporter, with ``send`` for a request already encoded: it goes through
    the exporter's own client (compression, retries, TLS), as the exporter's ``export`` sends its own."""

    def send(self, request: ExportTraceServiceRequest) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        sent = self._client.export(request.SerializeToString())
        return SpanExportResult.SUCCESS if sent.success else SpanExportResult.FAILURE
