"""llmobs's own cost and losses, under the SDK self-observability names (``otel.sdk.exporter.*``) and
``llmobs.`` where those define none. Recorded on export threads only: a call pays nothing for it."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import TYPE_CHECKING, TypeVar

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from typing_extensions import override

from . import semconv as names
from ._aggregation import Registry
from ._attributes import Attributes, merge
from ._failsafe import guarded

if TYPE_CHECKING:
    from ._config import OTLPTarget

R = TypeVar("R")
CALLS = 64  # per timed round of the no-op: ~70 µs decorated
ROUNDS = 5  # the fastest round is kept: the others met a thread switch or a collection


class ExportTelemetry:
    """What one exporter's exports cost: items (``exported``, an instrument counted in the exporter's unit)
    and duration by outcome, and the request size where known. Series are made on their first record."""

    def __init__(self, registry: Registry, exported: names.Instrument, component: str) -> None:
        self._registry = registry
        self._exported = exported
        self._component: Attributes = ((names.COMPONENT_TYPE, component),)

    @guarded(where="export self-telemetry")
    def exported(self, items: int, seconds: float, error: str | None, size: int | None = None) -> None:
        """One finished export request of ``items``; ``error``: its ``error.type``, None when accepted."""
        attributes = self._component if error is None else merge(self._component, {names.ERROR_TYPE: error})
        self._registry.series(self._exported, attributes).record(items)
        self._registry.series(names.EXPORT_DURATION, attributes).record(seconds)
        if size is not None:
            self._registry.series(names.EXPORT_SIZE, attributes).record(size)

    def timed(self, items: int, export: Callable[[], R], success: R) -> R:
        """``export()``, counted: an exception is recorded by its type and raised again."""
        began = perf_counter()
        try:
            result = export()
        except Exception as exc:
            self.exported(items, perf_counter() - began, names.error_type(exc))
            raise
        self.exported(items, perf_counter() - began, None if result == success else names.OTHER_ERROR)
        return result


class MetricTelemetry(ExportTelemetry):
    """An OTLP metric exporter's: also the registry lock's longest hold per snapshot, and llmobs's own
    time per call (``CallTiming``), both measured when the snapshot is taken."""

    def __init__(self, registry: Registry, exporter: MetricExporter) -> None:
        grpc = "grpc" in type(exporter).__module__
        super().__init__(
            registry, names.EXPORTED_POINTS, names.GRPC_METRIC_EXPORTER if grpc else names.HTTP_METRIC_EXPORTER
        )
        self._timing = CallTiming()

    @guarded(where="export self-telemetry")
    def collected(self) -> None:
        """The snapshot just taken: how long it held the lock at most; then time a call."""
        self._registry.series(names.LOCK_HOLD, ()).record(self._registry.lock_held)
        overhead = self._timing.measure()
        if overhead is not None:
            self._registry.series(names.CALL_OVERHEAD, ()).record(overhead)


class CountedSpans(SpanExporter):
    """``exporter``, with its exports counted (spans and duration by outcome) on the processor's thread."""

    def __init__(self, exporter: SpanExporter, telemetry: ExportTelemetry) -> None:
        self._exporter = exporter
        self._telemetry = telemetry

    @override
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._telemetry.timed(
            len(spans), functools.partial(self._exporter.export, spans), SpanExportResult.SUCCESS
        )

    @override
    def shutdown(self) -> None:
        self._exporter.shutdown()

    @override
    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._exporter.force_flush(timeout_millis)


class CountedLogs(LogRecordExporter):
    """``exporter``, with its exports counted (log records and duration by outcome) on the processor's thread."""

    def __init__(self, exporter: LogRecordExporter, telemetry: ExportTelemetry) -> None:
        self._exporter = exporter
        self._telemetry = telemetry

    @override
    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        export = functools.partial(self._exporter.export, batch)
        return self._telemetry.timed(len(batch), export, LogRecordExportResult.SUCCESS)

    @override
    def shutdown(self) -> None:
        self._exporter.shutdown()  # type: ignore[no-untyped-call]

    @override
    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._exporter.force_flush(timeout_millis)


def counted_spans(registry: Registry, exporter: SpanExporter, target: OTLPTarget | None) -> SpanExporter:
    """``exporter`` counted; ``target``: the OTLP target of llmobs's own span exporter, which names its type."""
    from ._final_spans import OTLPSpans

    if isinstance(exporter, OTLPSpans) and target is not None:
        component = names.GRPC_SPAN_EXPORTER if target.protocol == "grpc" else names.HTTP_SPAN_EXPORTER
    else:
        component = _type_name(exporter)
    return CountedSpans(exporter, ExportTelemetry(registry, names.EXPORTED_SPANS, component))


def counted_logs(registry: Registry, exporter: LogRecordExporter) -> LogRecordExporter:
    """``exporter`` counted, under its OTLP component type, or its class name for any other exporter."""
    module = type(exporter).__module__
    if module.startswith("opentelemetry.exporter.otlp."):
        component = names.GRPC_LOG_EXPORTER if ".grpc." in module else names.HTTP_LOG_EXPORTER
    else:
        component = _type_name(exporter)
    return CountedLogs(exporter, ExportTelemetry(registry, names.EXPORTED_LOGS, component))


def _type_name(exporter: object) -> str:
    """``otel.component.type`` of an exporter the conventions do not name: its qualified class name."""
    cls = type(exporter)
    return f"{cls.__module__}.{cls.__qualname__}"


class CallTiming:
    """llmobs's own time per metrics-only call: a private decorated no-op, bound to a registry of its own,
    timed against the bare no-op on the export thread, so that no call of the application pays for it."""

    def __init__(self) -> None:
        from ._call import Site
        from ._inference import _wrap_function

        self._site = Site("llmobs.self_timing", "inference", "llmobs", {}, None, None)
        self._decorated = _wrap_function(_noop, self._site)
        self._registry = Registry()

    def measure(self) -> float | None:
        """Seconds per call, the fastest of ``ROUNDS``; None while a profile is armed (it would take the calls)."""
        from ._profiling import PLAN

        if PLAN.armed:
            return None
        self._site.bind_private(self._registry)
        decorated = min(_round(self._decorated) for _ in range(ROUNDS))
        bare = min(_round(_noop) for _ in range(ROUNDS))
        return max(0.0, decorated - bare)


def count_points(data: MetricsData) -> int:
    """The data points in ``data``."""
    return sum(
        len(metric.data.data_points)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    )


def _noop() -> None:
    """What ``CallTiming`` calls: nothing, so that only llmobs's own work is timed."""


def _round(function: Callable[[], None]) -> float:
    began = perf_counter()
    for _ in range(CALLS):
        function()
    return (perf_counter() - began) / CALLS
