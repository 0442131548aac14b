"""Turns registry snapshots into OpenTelemetry ``MetricsData`` and exports them periodically on a
daemon thread, so that a slow or dead backend never touches the request path."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from .aggregation import Collected, HistogramSnapshot, Registry, Snapshot, ValueSnapshot
from .attributes import Attributes
from .instruments import Instrument, Kind
from .safety import report
from .version import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource

SCOPE = InstrumentationScope("llmobs", __version__)
CUMULATIVE = AggregationTemporality.CUMULATIVE
DELTA = AggregationTemporality.DELTA


class Points:
    """Builds ``MetricsData`` for one exporter. For delta temporality it remembers the previous
    cumulative snapshot of every series and sends the difference."""

    def __init__(self, resource: Resource, delta: bool = False) -> None:
        self._resource = resource
        self._scope = SCOPE
        self._delta = delta
        self._previous: dict[tuple[str, Attributes], tuple[Snapshot, int]] = {}

    def build(self, collected: Collected) -> MetricsData:
        now = time.time_ns()
        self._seen: set[tuple[str, Attributes]] = set()
        metrics = [m for instrument, points in collected if (m := self._metric(instrument, points, now))]
        if self._delta:  # forget series that are gone, so that this state never outgrows the registry
            self._previous = {key: value for key, value in self._previous.items() if key in self._seen}
        scope_metrics = [ScopeMetrics(self._scope, metrics, "")] if metrics else []
        return MetricsData([ResourceMetrics(self._resource, scope_metrics, "")])

    def _metric(self, instrument: Instrument, points: list[tuple[Attributes, Snapshot]], now: int) -> Metric | None:
        kind = instrument.kind
        delta = self._delta and kind in (Kind.HISTOGRAM, Kind.COUNTER)
        temporality = DELTA if delta else CUMULATIVE
        data: Histogram | Sum | Gauge
        if kind is Kind.HISTOGRAM:
            hist = [h for a, s in points if (h := self._histogram_point(instrument, a, s, now, delta))]
            if not hist:
                return None
            data = Histogram(hist, temporality)
        else:
            values = [v for a, s in points if (v := self._value_point(instrument, a, s, now, delta))]
            if not values:
                return None
            if kind is Kind.GAUGE:
                data = Gauge(values)
            else:
                data = Sum(values, temporality, kind is Kind.COUNTER)
        return Metric(instrument.name, instrument.description, instrument.unit, data)

    def _since(
        self, instrument: Instrument, attributes: Attributes, snap: Snapshot, now: int
    ) -> tuple[Snapshot | None, int]:
        key = (instrument.name, attributes)
        self._seen.add(key)
        previous = self._previous.get(key)
        self._previous[key] = (snap, now)
        if previous is None or previous[0].start_ns != snap.start_ns:  # new, or started over
            return None, snap.start_ns
        return previous

    def _histogram_point(
        self, instrument: Instrument, attributes: Attributes, snap: Snapshot, now: int, delta: bool
    ) -> HistogramDataPoint | None:
        assert isinstance(snap, HistogramSnapshot)
        counts, total, count, lo, hi, start = snap.counts, snap.sum, snap.count, snap.min, snap.max, snap.start_ns
        if delta:
            before, start = self._since(instrument, attributes, snap, now)
            if isinstance(before, HistogramSnapshot):
                counts = tuple(a - b for a, b in zip(counts, before.counts, strict=True))
                total, count, lo, hi = total - before.sum, count - before.count, None, None
            if count == 0:
                return None
        elif count == 0:
            return None
        return HistogramDataPoint(dict(attributes), start, now, count, total, counts, instrument.buckets, lo, hi)  # type: ignore[arg-type]

    def _value_point(
        self, instrument: Instrument, attributes: Attributes, snap: Snapshot, now: int, delta: bool
    ) -> NumberDataPoint | None:
        assert isinstance(snap, ValueSnapshot)
        value, start = snap.value, snap.start_ns
        if delta:
            before, start = self._since(instrument, attributes, snap, now)
            if isinstance(before, ValueSnapshot):
                value -= before.value
                if value == 0:
                    return None
        if value == int(value):
            value = int(value)
        return NumberDataPoint(dict(attributes), start, now, value)


class PeriodicExport:
    """Every ``interval`` seconds, collect the registry and hand the points to ``exporter``."""

    def __init__(
        self, registry: Registry, exporter: MetricExporter, points: Points, interval: float, timeout: float
    ) -> None:
        self._registry = registry
        self._exporter = exporter
        self._points = points
        self._interval = interval
        self._timeout = min(timeout, interval)
        self._stop = threading.Event()
        # One export at a time: force_flush() and the periodic thread share the delta state.
        self._exporting = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="llmobs-export", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.export_once()
        self.export_once()

    def export_once(self) -> bool:
        """Collect and export now; True when the exporter accepted the points."""
        try:
            with self._exporting:
                data = self._points.build(self._registry.collect())
                return self._exporter.export(data, timeout_millis=self._timeout * 1000) is MetricExportResult.SUCCESS
        except Exception:
            report(f"export via {type(self._exporter).__name__}")
            return False

    def shutdown(self, deadline: float) -> bool:
        """Final export, then stop; gives up at ``deadline`` (a ``time.monotonic`` value)."""
        self._stop.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        finished = not self._thread.is_alive()
        try:
            # Also interrupts the OTLP exporters' retry back-off when the final export is stuck.
            self._exporter.shutdown(timeout_millis=max(0.0, deadline - time.monotonic()) * 1000)
        except Exception:
            report("exporter shutdown")
        return finished
