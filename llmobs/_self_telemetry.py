"""llmobs's own cost and losses, under the SDK self-observability names (``otel.sdk.exporter.*``, and the
SDK processors' ``otel.sdk.processor.*`` when the user turns them on) and ``llmobs.`` where those define
none. Recorded on export and processor threads: a call pays nothing for it (the losses a call meets are
counted lock-free in ``_aggregation``)."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import TYPE_CHECKING, TypeVar

from opentelemetry.context import Context
from opentelemetry.metrics import (
    CallbackOptions,
    CallbackT,
    Counter,
    Meter,
    NoOpCounter,
    NoOpMeter,
    NoOpMeterProvider,
    NoOpUpDownCounter,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from typing_extensions import override

from . import semconv as names
from ._aggregation import Registry
from ._attributes import Attributes, freeze, merge
from ._failsafe import guarded
from ._otlp import FinalAttempt

if TYPE_CHECKING:
    from opentelemetry.util.types import Attributes as OTelAttributes

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


def counted_spans(registry: Registry, exporter: SpanExporter) -> SpanExporter:
    """``exporter`` counted, under its OTLP component type, or its class name for any other exporter."""
    component = _component(exporter, names.GRPC_SPAN_EXPORTER, names.HTTP_SPAN_EXPORTER)
    return CountedSpans(exporter, ExportTelemetry(registry, names.EXPORTED_SPANS, component))


def counted_logs(registry: Registry, exporter: LogRecordExporter) -> LogRecordExporter:
    """``exporter`` counted, under its OTLP component type, or its class name for any other exporter."""
    component = _component(exporter, names.GRPC_LOG_EXPORTER, names.HTTP_LOG_EXPORTER)
    return CountedLogs(exporter, ExportTelemetry(registry, names.EXPORTED_LOGS, component))


def _component(exporter: object, grpc: str, http: str) -> str:
    """``grpc`` or ``http`` for llmobs's own OTLP exporters, by their protocol; else the class name."""
    if isinstance(exporter, FinalAttempt):
        return grpc if exporter.target.protocol == "grpc" else http
    return _type_name(exporter)


def _type_name(exporter: object) -> str:
    """``otel.component.type`` of an exporter the conventions do not name: its qualified class name."""
    cls = type(exporter)
    return f"{cls.__module__}.{cls.__qualname__}"


class ProcessorMeters(NoOpMeterProvider):
    """The MeterProvider llmobs hands its batch span and log processors. The SDK reports their queue size,
    capacity and drops through it only when the user set ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true``
    (llmobs never sets it); the values go into llmobs's registry, the queue sizes read at each export."""

    def __init__(self, registry: Registry) -> None:
        # Weak: the table of providers by registry must not keep a registry that is gone alive.
        self._registry = weakref.ref(registry)
        self._callbacks: list[tuple[names.Instrument, CallbackT]] = []

    @override
    def get_meter(
        self, name: str, version: str | None = None, schema_url: str | None = None, attributes: OTelAttributes = None
    ) -> Meter:
        return _ProcessorMeter(self, name, version, schema_url)

    def watch(self, instrument: names.Instrument, callbacks: Sequence[CallbackT]) -> None:
        self._callbacks += [(instrument, callback) for callback in callbacks]

    @property
    def registry(self) -> Registry | None:
        return self._registry()

    @guarded(where="reading the batch processors' queues")
    def observe(self) -> None:
        """Record what each queue callback reads now (on the export thread, before the registry is collected)."""
        registry = self._registry()
        if registry is None:
            return
        for instrument, callback in self._callbacks:
            if callable(callback):
                for observation in callback(CallbackOptions()):
                    series = registry.series(instrument, freeze(dict(observation.attributes or {})))
                    series.record(observation.value)


class _ProcessorMeter(NoOpMeter):
    """Takes the instruments of ``names.PROCESSOR_INSTRUMENTS``; any other is a no-op."""

    def __init__(self, meters: ProcessorMeters, name: str, version: str | None, schema_url: str | None) -> None:
        super().__init__(name, version=version, schema_url=schema_url)
        self._meters = meters

    def _added(self, name: str) -> _Added | None:
        """The instrument that records ``name`` into the registry, or None where the SDK's no-op stands."""
        instrument, registry = names.PROCESSOR_INSTRUMENTS.get(name), self._meters.registry
        return None if instrument is None or registry is None else _Added(registry, instrument)

    @override
    def create_counter(self, name: str, unit: str = "", description: str = "") -> Counter:
        return self._added(name) or super().create_counter(name, unit, description)

    @override
    def create_up_down_counter(self, name: str, unit: str = "", description: str = "") -> UpDownCounter:
        return self._added(name) or super().create_up_down_counter(name, unit, description)

    @override
    def create_observable_up_down_counter(
        self, name: str, callbacks: Sequence[CallbackT] | None = None, unit: str = "", description: str = ""
    ) -> ObservableUpDownCounter:
        instrument = names.PROCESSOR_INSTRUMENTS.get(name)
        if instrument is not None and callbacks:
            self._meters.watch(instrument, callbacks)
        return super().create_observable_up_down_counter(name, callbacks, unit, description)


class _Added(NoOpCounter, NoOpUpDownCounter):
    """An SDK processor's counter (items processed) or up-down counter (its capacity, added once), recorded
    into the registry: a counter adds, a gauge (the capacity) takes the value."""

    def __init__(self, registry: Registry, instrument: names.Instrument) -> None:
        super().__init__(instrument.name, unit=instrument.unit, description=instrument.description)
        self._registry = registry
        self._instrument = instrument

    @override
    @guarded(where="recording a batch processor's metric")
    def add(self, amount: float, attributes: OTelAttributes = None, context: Context | None = None) -> None:
        self._registry.series(self._instrument, freeze(dict(attributes or {}))).record(amount)


_METERS: weakref.WeakKeyDictionary[Registry, ProcessorMeters] = weakref.WeakKeyDictionary()


def processor_meters(registry: Registry) -> ProcessorMeters:
    """The meter provider of ``registry``'s batch processors (one per registry, read by ``observe``)."""
    found = _METERS.get(registry)
    if found is None:
        found = _METERS[registry] = ProcessorMeters(registry)
    return found


def observe(registry: Registry) -> None:
    """Read the queues of ``registry``'s batch processors, if any reports them."""
    found = _METERS.get(registry)
    if found is not None:
        found.observe()


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
