"""Writes one source's readings into the registry: gauges are set, and withdrawn when a reading
lacks them; counters advance by the change of their running total; utilization gauges also carry
the maximum of the last export interval."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Protocol

from ..aggregation import GaugeSeries, Series
from ..attributes import Attributes
from ..instruments import COLLECTOR_ERRORS, WINDOW_MAX, Instrument, Kind
from .reading import Reading

Key = tuple[str, Attributes]
"""A series by instrument name: names hash once, ``Instrument`` dataclasses hash all their fields."""

PEAKS = {base.name: peak for base, peak in WINDOW_MAX.items()}


class SeriesSource(Protocol):
    """The registry, as the collector uses it."""

    def series(self, instrument: Instrument, attributes: Attributes) -> Series: ...


class Publisher:
    """Called from a sampler thread (``publish``) and the collector thread (``withdraw``, ``count``)."""

    def __init__(self, registry: SeriesSource, window: float) -> None:
        self._registry = registry
        self._window = window
        self._lock = threading.Lock()
        self._series: dict[Key, Series] = {}
        self._gauges: set[Key] = set()
        self._totals: dict[Key, float] = {}
        self._peaks: dict[Key, deque[tuple[float, float]]] = {}

    def publish(self, reading: Reading, fresh: bool) -> None:
        """Counters and errors always; gauges only when ``fresh``, else they stay withdrawn."""
        now = time.monotonic()
        with self._lock:
            gauges: set[Key] = set()
            for instrument, attributes, value in reading.values:
                if instrument.kind is Kind.COUNTER:
                    self._advance(instrument, attributes, value)
                elif fresh:
                    gauges.add(self._set(instrument, attributes, value, now))
            for key in self._gauges - gauges:
                self._clear(key)
            self._gauges = gauges
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

    def _advance(self, instrument: Instrument, attributes: Attributes, total: float) -> None:
        """A counter's first total is its baseline; a total that went down restarted (driver reload)."""
        key = (instrument.name, attributes)
        previous = self._totals.get(key)
        self._totals[key] = total
        delta = 0.0 if previous is None else total - previous if total >= previous else total
        self._get(instrument, attributes).record(delta)


def _withdraw(series: Series | None) -> None:
    # Series forwarded to an application's own MeterProvider cannot be withdrawn: they keep their value.
    if isinstance(series, GaugeSeries):
        series.clear()
