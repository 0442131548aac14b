"""The OTLP span exporter of llmobs's own TracerProvider, with a single-attempt mode for shutdown (a
backend that refuses at once must not hold ``shutdown()`` for its whole budget), and its batch size."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from typing_extensions import override

from ._config import OTLPTarget
from ._otlp import span_exporter

# The OTLP exporters retry a failed export after a back-off of at least 0.8 s, and only while it fits
# in their timeout: with this timeout an export makes exactly one attempt.
SINGLE_ATTEMPT_TIMEOUT = 0.75

EXPORT_BATCH = 64
"""Spans per export. The SDK's 512 take ~14 ms of Python encoding on the export thread, and the request
thread then waits up to the GIL's 5 ms switch interval at each of its I/O calls (uvicorn's p99 doubled);
64 take ~2 ms at the same CPU per span (docs/performance.md, "Tracing under uvicorn")."""


def export_batch() -> int | None:
    """``EXPORT_BATCH``, or None when ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` is set: the SDK then reads the
    user's value, as it would without llmobs."""
    return None if os.environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "").strip() else EXPORT_BATCH


class OTLPSpans(SpanExporter):
    """Exports through the OTLP exporter of ``target``; after ``closing()``, through a second one
    that makes a single attempt (the final flush of the BatchSpanProcessor goes there)."""

    def __init__(self, target: OTLPTarget) -> None:
        self._target = target
        self._exporter = span_exporter(target)
        self._final: SpanExporter | None = None

    def closing(self) -> None:
        timeout = min(self._target.timeout, SINGLE_ATTEMPT_TIMEOUT)
        self._final = span_exporter(dataclasses.replace(self._target, timeout=timeout))

    @override
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return (self._final or self._exporter).export(spans)

    @override
    def shutdown(self) -> None:
        self._exporter.shutdown()
        if self._final is not None:
            self._final.shutdown()

    @override
    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._exporter.force_flush(timeout_millis)
