"""Assert on your own telemetry: run llmobs in memory for a block of code, as httpx ships
``MockTransport``::

    with llmobs.testing.capture() as telemetry:
        predict("hi")
    assert telemetry.points("gen_ai.server.request.duration")[0].count == 1
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from typing_extensions import override

from . import _config, _lifecycle
from ._periodic import InProcessExporter


class _LastExport(InProcessExporter):
    """Keeps the newest (cumulative) export."""

    def __init__(self) -> None:
        super().__init__()
        self.data: MetricsData | None = None

    @override
    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        self.data = metrics_data
        return MetricExportResult.SUCCESS


class Telemetry:
    """What the code inside ``capture()`` recorded; every read exports first."""

    def __init__(self, metrics: _LastExport, spans: InMemorySpanExporter) -> None:
        self._metrics = metrics
        self._spans = spans

    def points(self, name: str, attributes: Mapping[str, Any] | None = None) -> list[Any]:
        """Data points (``HistogramDataPoint``/``NumberDataPoint``) of metric ``name`` whose
        attributes include every item of ``attributes``."""
        _lifecycle.force_flush()
        data = self._metrics.data
        want = (attributes or {}).items()
        return [
            point
            for rm in (data.resource_metrics if data else [])
            for sm in rm.scope_metrics
            for metric in sm.metrics
            if metric.name == name
            for point in metric.data.data_points
            if all((point.attributes or {}).get(k) == v for k, v in want)
        ]

    def spans(self) -> list[ReadableSpan]:
        """Finished spans, oldest first."""
        _lifecycle.force_flush()
        return list(self._spans.get_finished_spans())


@contextmanager
def capture(traces: bool = True) -> Iterator[Telemetry]:
    """Start llmobs with in-memory exporters only (no summary, no collector, no network), and
    shut it down afterwards. llmobs must not be running already."""
    # traces=None: spans go to the in-memory exporter only (True would add the default OTLP target).
    settings = _config.load(
        summary=False, gpu=False, host=False, export_interval=3600, traces=None if traces else False, env={}
    )
    metrics, spans = _LastExport(), InMemorySpanExporter()
    # Only what happens inside the block: calls made before it are not captured.
    _lifecycle.start(settings, [metrics], [spans] if traces else [], fresh=True)
    try:
        yield Telemetry(metrics, spans)
    finally:
        _lifecycle.shutdown()
