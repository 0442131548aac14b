"""Writes one source's readings into the registry: gauges are set, and withdrawn when a reading
lacks them; counters advance by the change of their running total; utilization gauges also carry
the maximum of the last export interval. Keys come and go (network interfaces): what a complete reading
lacks is forgotten (its gauges withdrawn, its counters removed), and each reading is cut at ``limit``
gauges and ``limit`` counters, so memory stays bounded."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Protocol

from .._aggregation import GaugeSeries, Series
from .._attributes import Attributes
from .._failsafe import guarded, warn_once
from ..semconv import COLLECTOR_ERRORS, SAMPLE_DURATION, SAMPLE_LAG, WINDOW_MAX, Instrument, Kind
from .reading import Reading

Key = tuple[str, Attributes]
"""A series by instrument name: names hash once, ``Instrument`` dataclasses hash all their fields."""

PEAKS = {base.name: peak for base, peak in WINDOW_MAX.items()}


class SeriesSource(Protocol):
    """The registry, as the collector uses it."""

    def series(self, instrument: Instrument, attributes: Attributes) -> Series: ...

    def remove(self, instrument: Instrument, attributes: Attributes) -> None: ...


class Publisher:
    """Called from a sampler thread (``publish``) and the collector thread (``withdraw``, ``count``)."""

    def __init__(self, registry: SeriesSource, window: float, limit: int) -> None:
        self._registry = registry
        self._window = window
        self._limit = limit
        self._lock = threading.Lock()
        self._series: dict[Key, Series] = {}  # of the keys in _gauges and _totals, and their peaks
        self._gauges: set[Key] = set()
        self._totals: dict[Key, float] = {}
        self._peaks: dict[Key, deque[tuple[float, float]]] = {}  # of the keys in _gauges
        self._counters: dict[str, Instrument] = {}  # by name, for removing the series of vanished keys

    def publish(self, reading: Reading, fresh: bool) -> None:
        """Counters and errors always; gauges only when ``fresh``, else they stay withdrawn. The running
        totals a complete, fresh reading lacks are dropped: a counter that comes back takes a new baseline."""
        now = time.monotonic()
        with self._lock:
            gauges: set[Key] = set()
            totals: dict[Key, float] = {}
            for instrument, attributes, value in reading.values:
                counter = instrument.kind is Kind.COUNTER
                if len(totals if counter else gauges) >= self._limit:
                    warn_once(
                        "collector-limit",
                        "llmobs: a resource reading has more than %d gauges or "
                        "counters; the rest are skipped (raise LLMOBS_MAX_SERIES)",
                        self._limit,
                    )
                elif counter:
                    self._counters[instrument.name] = instrument
                    totals[instrument.name, attributes] = self._advance(instrument, attributes, value)
                elif fresh:
                    gauges.add(self._set(instrument, attributes, value, now))
            for key in self._gauges - gauges:
                self._clear(key)
            self._gauges = gauges
            if not (fresh and reading.complete):
                # A failed or late reading is no proof that a key is gone: keep its baselines, within the limit.
                kept = {**self._totals, **totals}
                totals = kept if len(kept) <= self._limit else totals
            for name, attributes in self._totals.keys() - totals.keys():
                # A counter whose source is gone stops being exported; if it comes back, it starts over.
                self._registry.remove(self._counters[name], attributes)
            self._totals = totals
            live = gauges | totals.keys() | {(PEAKS[name].name, a) for name, a in gauges if name in PEAKS}
            self._series = {key: series for key, series in self._series.items() if key in live}
            for attributes in reading.errors:
                self.count(attributes)

    def withdraw(self) -> None:
        """Stop exporting every gauge until the next fresh reading (the source hangs or is gone)."""
        with self._lock:
            for key in self._gauges:
                self._clear(key)
            self._gauges = set()

    def count(self, attributes: Attributes) -> None:
        """One more ``llmobs.collector.errors`` with ``attributes``."""
        self._registry.series(COLLECTOR_ERRORS, attributes).record(1)

    @guarded(where="timing a resource sample")
    def timed(self, attributes: Attributes, lag: float, duration: float) -> None:
        """One sample of a source (``attributes`` name it): how late it began after it was asked for, and
        how long its reading took. On the sampler's thread, which holds no lock of the registry."""
        self._registry.series(SAMPLE_LAG, attributes).record(lag)
        self._registry.series(SAMPLE_DURATION, attributes).record(duration)

    def _get(self, instrument: Instrument, attributes: Attributes) -> Series:
        key = (instrument.name, attributes)
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = self._registry.series(instrument, attributes)
        return found

    def _set(self, instrument: Instrument, attributes: Attributes, value: float, now: float) -> Key:
        self._get(instrument, attributes).record(value)
        key = (instrument.name, attributes)
        peak = PEAKS.get(instrument.name)
        if peak is not None:
            # Sliding-window maximum: values that a later, larger one outlives can never be the maximum.
            window = self._peaks.setdefault(key, deque())
            while window and window[-1][1] <= value:
                window.pop()
            window.append((now, value))
            while window[0][0] < now - self._window:
                window.popleft()
            self._get(peak, attributes).record(window[0][1])
        return key

    def _clear(self, key: Key) -> None:
        name, attributes = key
        peak = PEAKS.get(name)
        for series in (key, (peak.name, attributes)) if peak else (key,):
            _withdraw(self._series.get(series))
        self._peaks.pop(key, None)

    def _advance(self, instrument: Instrument, attributes: Attributes, total: float) -> float:
        """A counter's first total is its baseline; a total that went down restarted (driver reload).
        Returns ``total``, the next baseline."""
        previous = self._totals.get((instrument.name, attributes))
        delta = 0.0 if previous is None else total - previous if total >= previous else total
        self._get(instrument, attributes).record(delta)
        return total


def _withdraw(series: Series | None) -> None:
    # Series forwarded to an application's own MeterProvider cannot be withdrawn: they keep their value.
    if isinstance(series, GaugeSeries):
        series.clear()
