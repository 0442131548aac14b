"""Hot-path aggregation: series pre-bound to one attribute set that count into buckets under a
lock, read out as plain snapshots at collection time.

The OpenTelemetry SDK's synchronous instruments cost ~6 µs per call (design.md section 4); a
bisect and a few additions under a lock cost well under 1 µs.

Locks are taken with ``with``: CPython runs no signal handler between taking the lock and entering
the block, so an exception a handler raises (a SIGALRM deadline) always releases it.
"""

from __future__ import annotations

import functools
import gc
import itertools
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import Any, ClassVar, Protocol, TypeVar

from ._attributes import Attributes, AttributeValue, merge
from ._failsafe import warn_once
from .semconv import DROPPED_POINTS, ERROR_TYPE, INVALID_VALUE, OVERFLOW, OVERFLOWED, Instrument, Kind

OVERFLOW_ATTRIBUTES: Attributes = ((OVERFLOW, True),)
MAX_SUM = 2.0**63
"""A sum must stay finite and, when whole, fit an OTLP int64: a value that would take it past this is
dropped, and the series keeps its earlier data."""
MIN_SUM = -MAX_SUM
CHUNK = 128
"""Histograms copied per hold of the registry lock at collection: ~0.1 ms, whatever their number."""

K = TypeVar("K")
V = TypeVar("V")


class Series(Protocol):
    """One metric, one attribute set: ``record`` adds to a histogram or sum, or sets a gauge."""

    def record(self, value: float) -> None: ...


class _Noop:
    """The series of a disabled or shut-down llmobs: recording costs a call and nothing else."""

    __slots__ = ()

    def record(self, value: float) -> None:
        pass


NOOP: Series = _Noop()


Exemplar = tuple[float, int, int, int]
"""value, trace id, span id, time (ns) of one traced record."""


class HistogramSeries:
    """Explicit-bucket histogram; bucket ``i`` counts values in ``(bounds[i-1], bounds[i]]``."""

    __slots__ = ("_name", "_lock", "_drops", "bounds", "counts", "sum", "min", "max", "start_ns", "exemplars")

    def __init__(self, name: str, lock: threading.RLock, drops: Drops, bounds: tuple[float, ...]) -> None:
        self._name = name
        self._lock = lock
        self._drops = drops
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")
        self.start_ns = time.time_ns()
        self.exemplars: list[Exemplar | None] | None = None

    def record(self, value: float) -> None:
        index = bisect_left(self.bounds, value)
        with self._lock:
            try:
                total = self.sum + value
            except OverflowError:  # an int too large for a float
                total = MAX_SUM
            if MIN_SUM < total < MAX_SUM:  # also False for NaN
                self.counts[index] += 1
                self.sum = total
                if value < self.min:
                    self.min = value
                if value > self.max:
                    self.max = value
                return
        _dropped(self._name, value, self._drops)

    def exemplar(self, value: float, trace_id: int, span_id: int) -> None:
        """Keep ``value`` with the trace that recorded it as its bucket's exemplar (the latest per
        bucket), so that a latency spike links to its trace. Only traced calls pay for it."""
        index = bisect_left(self.bounds, value)
        with self._lock:
            if self.exemplars is None:
                self.exemplars = [None] * len(self.counts)
            self.exemplars[index] = (value, trace_id, span_id, time.time_ns())


class SumSeries:
    """A counter or up-down counter: ``record`` adds."""

    __slots__ = ("_name", "_lock", "_drops", "value", "start_ns")

    def __init__(self, name: str, lock: threading.RLock, drops: Drops) -> None:
        self._name = name
        self._lock = lock
        self._drops = drops
        self.value = 0.0
        self.start_ns = time.time_ns()

    def record(self, value: float) -> None:
        with self._lock:
            try:
                total = self.value + value
            except OverflowError:
                total = MAX_SUM
            if MIN_SUM < total < MAX_SUM:
                self.value = total
                return
        _dropped(self._name, value, self._drops)


def _dropped(name: str, value: float, drops: Drops) -> None:
    drops.invalid()
    warn_once(
        f"sum:{name}",
        "llmobs: a value of %s was dropped (%r would make its sum non-finite or larger than 2**63); "
        "the series keeps its earlier data",
        name,
        value,
    )


class InFlightSeries:
    """An up-down counter of things in flight, moved by +1 and -1 only: two ``itertools.count``
    objects, whose ``next`` is atomic, so that a call's start and end take no lock."""

    __slots__ = ("_started", "_ended", "start_ns")

    def __init__(self) -> None:
        self._started = itertools.count()
        self._ended = itertools.count()
        self.start_ns = time.time_ns()

    def record(self, value: float) -> None:
        next(self._started if value > 0 else self._ended)

    @property
    def steps(self) -> tuple[Callable[[], object], Callable[[], object]]:
        """+1 and -1 as C calls: a signal handler runs after such a call, never inside it, so the
        ``try`` that starts just before the +1 owns it and its ``finally`` can always undo it."""
        return self._started.__next__, self._ended.__next__

    @property
    def value(self) -> float:
        """Started minus ended, as of one instant: a read advances each counter by the same amount
        (so their difference holds), and is retried if a call started while it was reading."""
        started, ended = self._started, self._ended
        while True:
            first, last = next(started), next(ended)
            again = next(started)
            next(ended)
            if again == first + 1:
                return float(first - last)


class Tally(InFlightSeries):
    """A count of rare events (a dropped value, a record past the series cap), moved by +1 only and
    without a lock, since they happen on the request path; left out of snapshots while it is 0."""

    __slots__ = ()


class Drops:
    """What one registry's records lost, counted where it happens: ``invalid()`` and ``overflow()``
    are C calls (``itertools.count.__next__``), safe under the registry lock and in any thread."""

    __slots__ = ("invalid", "overflow", "tallies")

    def __init__(self) -> None:
        invalid, overflow = Tally(), Tally()
        self.tallies: dict[Attributes, Series] = {
            ((ERROR_TYPE, INVALID_VALUE),): invalid,
            ((ERROR_TYPE, OVERFLOWED),): overflow,
        }
        self.invalid, self.overflow = invalid.steps[0], overflow.steps[0]


class GaugeSeries:
    """Last value wins; a single store needs no lock. No value yet means nothing to export."""

    __slots__ = ("value", "start_ns")

    def __init__(self) -> None:
        self.value: float | None = None
        self.start_ns = time.time_ns()

    def record(self, value: float) -> None:
        self.value = value

    def clear(self) -> None:
        """Withdraw the value (a failed or stale reading): nothing is exported until the next record."""
        self.value = None


class _Overflowing:
    """The overflow series of an instrument: each record also counts as one that lost its attributes
    to the cap. Only records past the cap pay for it."""

    __slots__ = ()
    _drops: Drops
    _counted: ClassVar[Callable[..., None]]
    """The series class's own ``record`` (a plain call: ``super()`` costs ~100 ns more)."""

    def record(self, value: float) -> None:
        self._drops.overflow()
        self._counted(value)


class _OverflowHistogram(_Overflowing, HistogramSeries):
    __slots__ = ()
    _counted = HistogramSeries.record


class _OverflowSum(_Overflowing, SumSeries):
    __slots__ = ()
    _counted = SumSeries.record


class _OverflowGauge(_Overflowing, GaugeSeries):
    __slots__ = ("_drops",)  # a gauge drops nothing else: only its overflow series keeps them
    _counted = GaugeSeries.record

    def __init__(self, drops: Drops) -> None:
        super().__init__()
        self._drops = drops


def steps(series: Series) -> tuple[Callable[[], object], Callable[[], object]]:
    """The +1 and -1 of an in-flight series, as calls that take no argument (``InFlightSeries.steps``);
    other series (disabled, or an application's own meter) get them through ``record``."""
    if isinstance(series, InFlightSeries):
        return series.steps
    return functools.partial(series.record, 1), functools.partial(series.record, -1)


class Bundle:
    """The series of one attribute set, each created in the registry on its first record, so that
    one never recorded takes no memory and no place under the cap. Subclasses list their series in
    ``SERIES`` (slot name to instrument and extra attributes) and as ``__slots__``, left empty until
    first read; a bundle made with no attributes records into the overflow series."""

    __slots__ = ("_registry", "_attributes")
    SERIES: ClassVar[Mapping[str, tuple[Instrument, Mapping[str, AttributeValue]]]] = {}

    def __init__(self, registry: Any, attributes: Attributes | None) -> None:
        self._registry = registry
        self._attributes = attributes

    def __getattr__(self, name: str) -> Series:
        """An empty slot's first read creates its series and fills the slot, where later reads find it
        directly (Python calls this only when the slot is empty)."""
        if name not in self.SERIES:
            raise AttributeError(name)
        instrument, extra = self.SERIES[name]
        attributes = self._attributes
        if attributes is None:
            attributes = OVERFLOW_ATTRIBUTES
        elif extra:
            attributes = merge(attributes, extra)
        series: Series = self._registry.series(instrument, attributes)
        setattr(self, name, series)
        return series


def capped(cache: dict[K, V], key: K, make: Callable[[K], V], limit: int, overflow: Callable[[], V]) -> V:
    """``cache[key]``, made and kept while the cache holds fewer than ``limit`` entries; past that,
    ``overflow()``: one bounded cache rule for every place that remembers bound series."""
    found = cache.get(key)
    if found is None:
        if len(cache) >= limit:
            return overflow()
        found = cache[key] = make(key)
    return found


@dataclass(slots=True)
class HistogramSnapshot:
    """A histogram as of one collection, read only. Snapshots are not frozen (a frozen init costs 1 µs,
    5x a plain one, under the lock) and have slots: one object each, fewer garbage collections."""

    counts: tuple[int, ...]
    sum: float
    count: int
    min: float | None
    max: float | None
    start_ns: int
    exemplars: tuple[Exemplar | None, ...] = ()
    bounds: tuple[float, ...] | None = None
    """The series' boundaries; None: its instrument's."""


@dataclass(slots=True)
class ValueSnapshot:
    value: float
    start_ns: int


Snapshot = HistogramSnapshot | ValueSnapshot
Collected = list[tuple[Instrument, list[tuple[Attributes, Snapshot]]]]


class Registry:
    """All series, at most ``max_series`` attribute sets per instrument; the rest share one
    overflow series marked ``otel.metric.overflow=true``, as the OpenTelemetry SDK does.

    Series aggregate locally, unless ``meter`` is given: then each value goes to that OpenTelemetry
    API meter, so that an application's own MeterProvider carries llmobs's numbers.
    """

    def __init__(
        self, max_series: int = 2000, meter: object = None, buckets: Mapping[str, tuple[float, ...]] | None = None
    ) -> None:
        self.max_series = max_series
        self.buckets = buckets or {}
        """Boundaries by histogram name, over the instrument's own (init's ``buckets``)."""
        self._meter = meter
        # Re-entrant: a signal handler or a logging handler may run instrumented code while this
        # thread holds the lock.
        self._lock = threading.RLock()
        self._series: dict[Instrument, dict[Attributes, Series]] = {}
        self._api: dict[Instrument, Callable[..., None]] = {}
        self.lock_held = 0.0
        """Seconds of the longest hold of the lock during the latest ``collect``."""
        self.drops = Drops()
        # Export threads count the points they drop in the same metric, with reasons of their own.
        self._series[DROPPED_POINTS] = dict(self.drops.tallies)

    def series(self, instrument: Instrument, attributes: Attributes) -> Series:
        by_attributes = self._series.get(instrument)
        if by_attributes is not None:
            found = by_attributes.get(attributes)
            if found is not None:
                return found
            if len(by_attributes) >= self.max_series:  # full: the overflow series, without the lock
                found = by_attributes.get(OVERFLOW_ATTRIBUTES)
                if found is not None:
                    return found
        was_capped = False
        with self._lock:
            by_attributes = self._series.setdefault(instrument, {})
            found = by_attributes.get(attributes)
            if found is None:
                if len(by_attributes) >= self.max_series:
                    was_capped, attributes = True, OVERFLOW_ATTRIBUTES
                    found = by_attributes.get(attributes)
                if found is None:
                    found = by_attributes[attributes] = self._new(instrument, attributes)
        if was_capped:  # logged outside the lock: a logging handler may record telemetry itself
            warn_once(
                f"cap:{instrument.name}",
                "llmobs: %s reached %d attribute sets; further ones are counted "
                "in one series marked otel.metric.overflow=true (raise LLMOBS_MAX_SERIES or record "
                "fewer distinct values)",
                instrument.name,
                self.max_series,
            )
        return found

    def remove(self, instrument: Instrument, attributes: Attributes) -> None:
        """Forget a series whose source is gone (a network interface): it is no longer exported, and
        if it comes back it starts over, with a new start time."""
        with self._lock:
            by_attributes = self._series.get(instrument)
            if by_attributes is not None:
                by_attributes.pop(attributes, None)

    def reinit_lock(self) -> None:
        """In a forked child: release the lock a thread of the parent may have held at fork time."""
        self._lock._at_fork_reinit()  # type: ignore[attr-defined]

    def _new(self, instrument: Instrument, attributes: Attributes) -> Series:
        if self._meter is not None:
            if instrument not in self._api:
                self._api[instrument] = _api_method(self._meter, instrument, self._bounds(instrument))
            return _Forward(self._api[instrument], dict(attributes))
        overflow = attributes == OVERFLOW_ATTRIBUTES
        if instrument.kind is Kind.HISTOGRAM:
            histogram = _OverflowHistogram if overflow else HistogramSeries
            return histogram(instrument.name, self._lock, self.drops, self._bounds(instrument))
        if instrument.kind is Kind.GAUGE:
            return _OverflowGauge(self.drops) if overflow else GaugeSeries()
        if instrument.kind is Kind.IN_FLIGHT:
            return InFlightSeries()
        return (_OverflowSum if overflow else SumSeries)(instrument.name, self._lock, self.drops)

    def _bounds(self, instrument: Instrument) -> tuple[float, ...]:
        return self.buckets.get(instrument.name, instrument.buckets)

    def collect(self) -> Collected:
        """Snapshot every series, the histograms under the lock ``CHUNK`` at a time, so that a record
        waits for one chunk at most; series with no value are left out. ``lock_held``: the longest hold."""
        with self._lock:
            listed = [(instrument, list(by_attributes.items())) for instrument, by_attributes in self._series.items()]
        out: Collected = []
        self.lock_held = 0.0
        for instrument, items in listed:
            points: list[tuple[Attributes, Snapshot]] = []
            if instrument.kind is Kind.HISTOGRAM:
                for first in range(0, len(items), CHUNK):
                    self._histograms(items[first : first + CHUNK], points)
            else:  # one attribute read each (a sum, a gauge's last value, in-flight counts): no lock
                points = [(attrs, value) for attrs, series in items if (value := _value_snapshot(series)) is not None]
            if points:
                out.append((instrument, points))
        return out

    def _histograms(self, chunk: list[tuple[Attributes, Series]], points: list[tuple[Attributes, Snapshot]]) -> None:
        """Append the snapshots of ``chunk``'s histograms that hold a value, in one hold of the lock.

        The garbage collector is paused for the hold (~0.1 ms): a full collection that the snapshots'
        allocations set off inside it held the lock 10 ms (measured at 2000 sets); it runs just after."""
        collecting = gc.isenabled()
        began = perf_counter()
        try:
            gc.disable()
            with self._lock:
                for attrs, series in chunk:
                    if isinstance(series, HistogramSeries) and (snapshot := _histogram_snapshot(series)) is not None:
                        points.append((attrs, snapshot))
        finally:
            if collecting:
                gc.enable()
        self.lock_held = max(self.lock_held, perf_counter() - began)


def _histogram_snapshot(series: HistogramSeries) -> HistogramSnapshot | None:
    """None for a histogram that holds no value (its first one was dropped)."""
    counts = tuple(series.counts)
    count = sum(counts)  # not kept per record: one addition less on the hot path
    if count == 0:
        return None
    exemplars = () if series.exemplars is None else tuple(series.exemplars)
    return HistogramSnapshot(
        counts, series.sum, count, series.min, series.max, series.start_ns, exemplars, series.bounds
    )


def _value_snapshot(series: Series) -> ValueSnapshot | None:
    """The snapshot of a sum, in-flight or gauge series; None for a gauge without a value or a tally at 0."""
    if isinstance(series, Tally):
        count = series.value
        return ValueSnapshot(count, series.start_ns) if count else None
    if isinstance(series, (SumSeries, InFlightSeries)):
        return ValueSnapshot(series.value, series.start_ns)
    if isinstance(series, GaugeSeries) and series.value is not None:
        return ValueSnapshot(series.value, series.start_ns)
    return None


def _api_method(meter: object, instrument: Instrument, bounds: tuple[float, ...]) -> Callable[..., None]:
    name, unit, description = instrument.name, instrument.unit, instrument.description
    if instrument.kind is Kind.HISTOGRAM:
        return meter.create_histogram(  # type: ignore[attr-defined, no-any-return]
            name, unit, description, explicit_bucket_boundaries_advisory=list(bounds)
        ).record
    if instrument.kind is Kind.COUNTER:
        return meter.create_counter(name, unit, description).add  # type: ignore[attr-defined, no-any-return]
    if instrument.kind is Kind.IN_FLIGHT:
        return meter.create_up_down_counter(name, unit, description).add  # type: ignore[attr-defined, no-any-return]
    return meter.create_gauge(name, unit, description).set  # type: ignore[attr-defined, no-any-return]


class _Forward:
    """A series that hands each value to an OpenTelemetry API instrument of the application's meter."""

    __slots__ = ("_method", "_attributes")

    def __init__(self, method: Callable[..., None], attributes: dict[str, object]) -> None:
        self._method = method
        self._attributes = attributes

    def record(self, value: float) -> None:
        self._method(value, self._attributes)
