"""llmobs's own cost and losses, under the SDK self-observability names (``otel.sdk.exporter.*``) and
``llmobs.`` where those define none. Recorded on the export thread only: a call pays nothing for it."""

from __future__ import annotations

from opentelemetry.sdk.metrics.export import MetricExporter, MetricsData

from . import semconv as names
from ._aggregation import Registry
from ._attributes import Attributes, merge


class ExportTelemetry:
    """What one OTLP metric exporter's exports cost: points and duration by outcome, and the longest
    hold of the registry lock while the snapshot was taken. Series are made on their first record."""

    def __init__(self, registry: Registry, exporter: MetricExporter) -> None:
        self._registry = registry
        grpc = "grpc" in type(exporter).__module__
        self._component: Attributes = (
            (names.COMPONENT_TYPE, names.GRPC_METRIC_EXPORTER if grpc else names.HTTP_METRIC_EXPORTER),
        )

    def collected(self) -> None:
        """The snapshot just taken: how long it held the lock at most."""
        self._registry.series(names.LOCK_HOLD, ()).record(self._registry.lock_held)

    def exported(self, data: MetricsData, seconds: float, error: str | None) -> None:
        """One finished export request of ``data``; ``error``: its ``error.type``, None when accepted."""
        attributes = self._component if error is None else merge(self._component, {names.ERROR_TYPE: error})
        self._registry.series(names.EXPORTED_POINTS, attributes).record(count_points(data))
        self._registry.series(names.EXPORT_DURATION, attributes).record(seconds)


def count_points(data: MetricsData) -> int:
    """The data points in ``data``."""
    return sum(
        len(metric.data.data_points)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    )
