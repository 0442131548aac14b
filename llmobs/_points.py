"""Turns registry snapshots into OpenTelemetry ``MetricsData`` for one exporter, cumulative or delta.

Every point built here can be encoded as OTLP: a value outside what the protocol carries (a sum past
the 64-bit range, not finite) or an attribute that is not valid Unicode leaves out that point, with one
warning per metric, and the others go on. Delta baselines move only when the export succeeded.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from opentelemetry.sdk.metrics import Exemplar as OTelExemplar
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

from ._aggregation import Collected, Exemplar, HistogramSnapshot, Snapshot, ValueSnapshot
from ._attributes import Attributes
from ._failsafe import guarded, warn_once
from ._version import __version__
from .semconv import Instrument, Kind

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource

SCOPE = InstrumentationScope("llmobs", __version__)
CUMULATIVE = AggregationTemporality.CUMULATIVE
DELTA = AggregationTemporality.DELTA
INT64 = range(-(2**63), 2**63)  # NumberDataPoint.as_int
UINT64 = range(2**64)  # histogram counts

Key = tuple[str, Attributes]


class Points:
    """Builds ``MetricsData`` for one exporter. For delta temporality it remembers the cumulative
    snapshot of every series at its last successful export and sends the difference.

    ``keep_range`` keeps, on delta histogram points, the series' min and max since it started (bounds of
    the window's values, not the window's own): in-process readers (the summary, the history) clamp their
    percentile estimates to them. OTLP exporters leave it off, as the protocol wants the window's."""

    def __init__(self, resource: Resource, delta: bool = False, keep_range: bool = False) -> None:
        self._resource = resource
        self._scope = SCOPE
        self._delta = delta
        self._keep_range = keep_range
        self._previous: dict[Key, tuple[Snapshot, int]] = {}
        self._pending: dict[Key, tuple[Snapshot, int]] = {}  # baselines of the latest build, until committed
        self._seen: set[Key] = set()
        self.dropped = 0
        """Points the latest ``build`` left out because OTLP cannot carry them."""

    def build(self, collected: Collected) -> MetricsData:
        now = time.time_ns()
        self._seen, self._pending, self.dropped = set(), {}, 0
        metrics = [m for instrument, points in collected if (m := self._metric(instrument, points, now))]
        if self._delta:  # forget series that are gone, so that this state never outgrows the registry
            self._previous = {key: value for key, value in self._previous.items() if key in self._seen}
        scope_metrics = [ScopeMetrics(self._scope, metrics, "")] if metrics else []
        return MetricsData([ResourceMetrics(self._resource, scope_metrics, "")])

    def commit(self, data: MetricsData) -> None:
        """The backend accepted ``data`` (built by the latest ``build``): its points become the delta
        baselines. Points of a failed export stay pending and go out again, summed, with the next one."""
        if not self._pending:
            return
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for point in metric.data.data_points:
                        key = (metric.name, tuple((point.attributes or {}).items()))
                        if key in self._pending:
                            self._previous[key] = self._pending.pop(key)

    @guarded(where="building the export points of one metric")
    def _metric(self, instrument: Instrument, points: list[tuple[Attributes, Snapshot]], now: int) -> Metric | None:
        kind = instrument.kind
        delta = self._delta and kind in (Kind.HISTOGRAM, Kind.COUNTER)
        temporality = DELTA if delta else CUMULATIVE
        encodable = [(a, s) for a, s in points if _encodable(instrument, a)]
        self.dropped += len(points) - len(encodable)
        points = encodable
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
            data = Gauge(values) if kind is Kind.GAUGE else Sum(values, temporality, kind is Kind.COUNTER)
        return Metric(instrument.name, instrument.description, instrument.unit, data)

    def _since(
        self, instrument: Instrument, attributes: Attributes, snap: Snapshot, now: int
    ) -> tuple[Snapshot | None, int]:
        key = (instrument.name, attributes)
        self._seen.add(key)
        self._pending[key] = (snap, now)
        previous = self._previous.get(key)
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
                total, count = total - before.sum, count - before.count
                lo, hi = (lo, hi) if self._keep_range else (None, None)
        if count == 0:
            return None
        # count is the sum of counts: none negative and the sum in range means each one is
        if min(counts) < 0 or count not in UINT64 or not (_finite(total) and _finite(lo) and _finite(hi)):
            self._drop(instrument, f"count {count}, sum {total}")
            return None
        exemplars = _exemplars(snap.exemplars, start) if snap.exemplars else ()
        bounds = instrument.buckets if snap.bounds is None else snap.bounds
        return HistogramDataPoint(dict(attributes), start, now, count, total, counts, bounds, lo, hi, exemplars)  # type: ignore[arg-type]

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
        number = _number(value)
        if number is None:
            self._drop(instrument, f"value {value}")
            return None
        return NumberDataPoint(dict(attributes), start, now, number)

    def _drop(self, instrument: Instrument, what: str) -> None:
        self.dropped += 1
        warn_once(
            f"export value:{instrument.name}",
            "llmobs: a point of %s was not exported: OTLP cannot carry its %s (past the 64-bit range or not "
            "finite); later ones are dropped silently",
            instrument.name,
            what,
        )


def _number(value: float) -> int | float | None:
    """``value`` as a NumberDataPoint carries it: an int64 when whole, else a finite double; None for an
    int past int64 (a count that large is a bug, not data) or a value that is not finite."""
    if isinstance(value, int):
        return value if value in INT64 else None
    if math.isfinite(value) and value.is_integer() and int(value) in INT64:
        return int(value)
    return _double(value)


def _double(value: float) -> float | None:
    """``value`` as a finite double, or None (an int past the float range, inf, nan)."""
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _finite(value: float | None) -> bool:
    """True for None (no value) or a value that is a finite double."""
    return value is None or _double(value) is not None


def _encodable(instrument: Instrument, attributes: Attributes) -> bool:
    """False, with one warning per metric, for attributes the OTLP encoder would drop with a traceback
    on every export: strings that are not valid Unicode (lone surrogates), ints past int64."""
    for key, value in attributes:
        if (
            not (key.isascii() or _text(key))  # ASCII, as almost every text is: a C scan, no copy
            or (isinstance(value, str) and not (value.isascii() or _text(value)))
            or (type(value) is int and value not in INT64)
        ):
            warn_once(
                f"export attribute:{instrument.name}",
                "llmobs: a series of %s was not exported: its attribute %r cannot be encoded as OTLP "
                "(a string that is not valid Unicode, or an int past 64 bits); later ones are dropped silently",
                instrument.name,
                key.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace"),
            )
            return False
    return True


def _text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _exemplars(found: tuple[Exemplar | None, ...], since: int) -> list[OTelExemplar]:
    """The buckets' latest traced values recorded within the point's window (a delta point does not
    repeat the previous window's)."""
    return [
        OTelExemplar({}, value, when, span_id, trace_id)
        for value, trace_id, span_id, when in (e for e in found if e is not None)
        if when >= since
    ]
