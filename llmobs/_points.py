"""Turns registry snapshots into OpenTelemetry ``MetricsData`` for one exporter, cumulative or delta."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from ._aggregation import Collected, HistogramSnapshot, Snapshot, ValueSnapshot
from ._attributes import Attributes
from ._version import __version__
from .semconv import Instrument, Kind

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
