"""Exports registry snapshots periodically on a daemon thread, so that a slow or dead backend never
touches the request path.

Each export is sent on a thread of its own and waited for at most the export timeout
(``OTEL_METRIC_EXPORT_TIMEOUT``); the next one starts only when it is done, so a hung backend holds one
thread, and memory holds no more than the registry. docs/export.md says what is guaranteed.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from typing_extensions import override

from . import semconv as names
from ._aggregation import Registry
from ._attributes import Attributes
from ._failsafe import guarded, logger, warn_once
from ._otlp import backend, failure_hint, public_url, split
from ._points import Points
from ._self_telemetry import MetricTelemetry, count_points, observe

if TYPE_CHECKING:
    from collections.abc import Sequence

MAX_PAUSE_INTERVALS = 3  # a Retry-After skips at most this many export intervals
UNENCODABLE: Attributes = ((names.ERROR_TYPE, names.UNENCODABLE),)
EXPORT_FAILED: Attributes = ((names.ERROR_TYPE, names.EXPORT_FAILED),)

Request = tuple[MetricsData, "int | None"]
"""One export request and its encoded size in bytes (None for in-process exporters, which take it whole)."""


class InProcessExporter(MetricExporter):
    """An exporter that hands points to something in this process (the summary, ``llmobs.testing``):
    it has nothing to flush and nothing to close."""

    @override
    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    @override
    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


class PeriodicExport:
    """Every ``interval`` seconds, collect the registry and hand the points to ``exporter``. ``endpoint``
    is the OTLP URL the exporter sends to (None for in-process exporters, which take each export whole):
    it names the backend in the first-failure warning, and those exports are split into requests of at
    most ``max_bytes``."""

    def __init__(
        self,
        registry: Registry,
        exporter: MetricExporter,
        points: Points,
        interval: float,
        timeout: float,
        *,
        max_bytes: int = 4_000_000,
        endpoint: str | None = None,
    ) -> None:
        self._registry = registry
        self._exporter = exporter
        self._points = points
        self._interval = interval
        self._timeout = min(timeout, interval)
        self._max_bytes = max_bytes
        self._endpoint = endpoint
        self._backend = backend(exporter)
        self._resume_at = 0.0  # time.monotonic() before which the backend asked not to be called
        self._sender: _Send | None = None
        self._telemetry = None if endpoint is None else MetricTelemetry(registry, exporter)
        # One export starts at a time, after the one before it ended: exports share the delta state.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llmobs-export", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.export_once()

    def export_once(self) -> bool:
        """Collect and export now, waiting at most the export timeout; True when the backend took it all."""
        return self._export(time.monotonic() + self._timeout, final=False)

    def shutdown(self, deadline: float) -> bool:
        """Final export, then stop; gives up at ``deadline`` (a ``time.monotonic`` value). True when it
        finished in time, whatever the backend answered: a refusal ends it at once, without back-off."""
        self._stop.set()
        self._thread.join(_left(deadline))
        if not self._export(deadline, final=True) and self._sender is not None:
            self._lost(self._sender)
        finished = not self._thread.is_alive() and not (self._sender is not None and self._sender.is_alive())
        self._close(deadline)  # also ends a request still out
        return finished

    @guarded(where="metric export", default=False)
    def _export(self, deadline: float, final: bool) -> bool:
        sender = self._start(deadline, final)
        if sender is None:
            return False
        sender.join(_left(deadline))
        if sender.accepted:
            return True
        self._explain(sender)
        return False

    def _start(self, deadline: float, final: bool) -> _Send | None:
        """Build the points and start sending them once the export before is done; None when it was not
        done by ``deadline``, or the backend asked to wait (Retry-After; the final export goes anyway)."""
        while True:
            with self._lock:
                running = self._sender
                if running is None or not running.is_alive():
                    if not final and time.monotonic() < self._resume_at:
                        return None
                    self._sender = _Send(self, self._requests(), deadline)
                    self._sender.start()
                    return self._sender
            running.join(_left(deadline))
            if _left(deadline) == 0:
                return None

    def _requests(self) -> list[Request]:
        observe(self._registry)
        data = self._points.build(self._registry.collect())
        if self._telemetry is not None:
            self._telemetry.collected()
        if self._endpoint is None:
            requests: list[Request] = [(data, None)]
            unencodable = self._points.dropped
        else:
            requests = list(split(data, self._max_bytes))
            # What the split left out: points larger than one request, metrics that failed to encode.
            unencodable = self._points.dropped + count_points(data) - sum(count_points(r) for r, _ in requests)
        if unencodable:
            self._registry.series(names.DROPPED_POINTS, UNENCODABLE).record(unencodable)
        return requests

    @guarded(where="sending metrics", default=False)
    def send(self, sender: _Send) -> bool:
        """Send the sender's requests in order (on its thread); each accepted one moves the delta baselines."""
        for data, size in sender.requests:
            if self._backend is not None:
                self._backend.clear()
            error = self._send_one(data, size, _left(sender.deadline))
            if error is not None:
                self._hold_off()
                return False
            self._points.commit(data)
            sender.delivered += 1
        return True

    def _send_one(self, data: MetricsData, size: int | None, left: float) -> str | None:
        """Export one request within ``left`` seconds: None when accepted, else its ``error.type``."""
        began = time.perf_counter()
        if left == 0:
            error: str | None = names.EXPORT_TIMEOUT
        else:
            accepted = self._exporter.export(data, timeout_millis=left * 1000) is MetricExportResult.SUCCESS
            error = None if accepted else names.OTHER_ERROR
        if self._telemetry is not None:
            self._telemetry.exported(count_points(data), time.perf_counter() - began, error, size)
        return error

    @guarded(where="counting the points of a failed final export")
    def _lost(self, sender: _Send) -> None:
        """The final export failed: what it did not deliver is lost for good (earlier failures go out again)."""
        lost = sum(count_points(data) for data, _ in sender.requests[sender.delivered :])
        if lost:
            self._registry.series(names.DROPPED_POINTS, EXPORT_FAILED).record(lost)
            logger.warning("llmobs: the final metric export did not deliver %d data points; they are lost", lost)

    def _hold_off(self) -> None:
        wait = self._backend.retry_after if self._backend is not None else None
        if wait is not None:
            self._resume_at = time.monotonic() + min(wait, MAX_PAUSE_INTERVALS * self._interval)

    def _explain(self, sender: _Send) -> None:
        """Log once per URL why export failed, with the likely causes: the SDK's own lines do not say."""
        if self._endpoint is None:
            return
        if sender.is_alive():
            reason = f"no answer within {self._timeout:g}s, OTEL_METRIC_EXPORT_TIMEOUT"
        else:
            known = self._backend.failure if self._backend is not None else None
            reason = known or "refused or not answered"
        warn_once(f"export failed:{public_url(self._endpoint)}", "%s", failure_hint(self._endpoint, reason))

    @guarded(where="exporter shutdown")
    def _close(self, deadline: float) -> None:
        self._exporter.shutdown(timeout_millis=_left(deadline) * 1000)


class _Send(threading.Thread):
    """The requests of one export, sent on a daemon thread so that waiting for them can be bounded."""

    def __init__(self, export: PeriodicExport, requests: Sequence[Request], deadline: float) -> None:
        super().__init__(name="llmobs-export-send", daemon=True)
        self._export, self.requests, self.deadline = export, requests, deadline
        self.accepted = False
        self.delivered = 0
        """Requests the backend accepted, in order."""

    def run(self) -> None:
        self.accepted = self._export.send(self)


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())
