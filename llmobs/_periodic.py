"""Exports registry snapshots periodically on a daemon thread, so that a slow or dead backend never
touches the request path."""

from __future__ import annotations

import threading
import time

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult

from ._aggregation import Registry
from ._failsafe import internal_error
from ._points import Points


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
            internal_error(f"export via {type(self._exporter).__name__}")
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
            internal_error("exporter shutdown")
        return finished
