"""One HTTP request in flight, for ASGI and WSGI alike: timed to its first and last body byte
sent (or to the client leaving), ended exactly once into the series and the server span.

Privacy: only the method, scheme, path (spans only), route template and status are read;
query strings, bodies and headers are never touched, except headers the user allow-listed.
"""

from __future__ import annotations

from collections.abc import Iterable
from time import perf_counter
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import semconv as names
from .._aggregation import Series
from .._attributes import AttributeValue
from .._failsafe import internal_error
from ..semconv import error_type
from .options import Options
from .series import SeriesCache, method_attribute

Headers = Iterable[tuple[bytes | str, bytes | str]]

MAX_BODY_SIZE = 2**53  # exact in a float sum; a client's larger Content-Length is not believed


def body_size(header: bytes | str | None) -> int | None:
    """The request size a ``Content-Length`` header announces: digits only, below ``MAX_BODY_SIZE``;
    None for anything else (absent, negative, garbage, absurdly large), so that nothing is recorded."""
    if header is None or len(header) > 16 or not (header.isascii() and header.isdigit()):  # 2**53: 16 digits
        return None
    size = int(header)
    return size if size < MAX_BODY_SIZE else None


class Tracker:
    """What one middleware shares across its requests: its options and its bound series."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.series = SeriesCache()

    def begin(
        self, method: str, scheme: str, path: str, carrier: Any, getter: Getter[Any], request_size: int | None
    ) -> Exchange | None:
        """Start recording a request; None when llmobs is off, and the request then passes untouched.

        ``carrier`` and ``getter`` read the caller's ``traceparent`` (and allow-listed headers).
        """
        try:
            series = self.series
            series.refresh()
            if not series.enabled:
                return None
            exchange = Exchange(self, method, scheme, series.active(method, scheme), request_size)
        except Exception:
            internal_error("http request start")
            return None
        if series.tracer is not None:
            exchange.start_span(series.tracer, path, carrier, getter)
        return exchange


class Exchange:
    """One request: its timings, status and byte counts until ``end`` records them."""

    __slots__ = (
        "_active",
        "_method",
        "_scheme",
        "_tracker",
        "context",
        "done",
        "first_byte",
        "last_byte",
        "request_size",
        "sent_bytes",
        "span",
        "start",
        "status",
    )

    def __init__(self, tracker: Tracker, method: str, scheme: str, active: Series, request_size: int | None) -> None:
        self._tracker = tracker
        self._method = method
        self._scheme = scheme
        self._active = active
        self.request_size = request_size
        self.first_byte: float | None = None
        self.last_byte: float | None = None
        self.sent_bytes = 0
        self.status: int | None = None
        self.span: trace.Span | None = None
        self.context: Context | None = None
        self.done = False
        active.record(1)
        self.start = perf_counter()

    def start_span(self, tracer: trace.Tracer, path: str, carrier: Any, getter: Getter[Any]) -> None:
        """A SERVER span continuing the caller's trace; ``context`` makes it the parent of the app's spans."""
        try:
            parent = propagate.extract(carrier, getter=getter)
            method = method_attribute(self._method)
            attributes: dict[str, AttributeValue | list[str]] = {
                names.HTTP_METHOD: method,
                names.URL_SCHEME: self._scheme,
                names.URL_PATH: path,
            }
            if method != self._method:
                attributes[names.HTTP_METHOD_ORIGINAL] = self._method
            for header in self._tracker.options.request_headers:
                values = getter.get(carrier, header)
                if values:
                    attributes[f"http.request.header.{header}"] = list(values)
            self.span = tracer.start_span(_span_name(method), parent, SpanKind.SERVER, attributes)
            self.context = trace.set_span_in_context(self.span, parent)
        except Exception:
            internal_error("http server span start")

    def started(self, status: int, headers: Headers | None) -> None:
        """The response began; allow-listed response headers go on the span."""
        self.status = status
        allowed = self._tracker.options.response_headers
        if self.span is not None and allowed and isinstance(headers, (list, tuple)):  # never consume an iterator
            captured: dict[str, list[str]] = {}
            for name, value in headers:
                key = _text(name).lower()
                if key in allowed:
                    captured.setdefault(f"http.response.header.{key}", []).append(_text(value))
            self.span.set_attributes(captured)

    def sent(self, size: int) -> None:
        """A body chunk of ``size`` bytes went to the server."""
        if size:
            if self.first_byte is None:
                self.first_byte = perf_counter()
            self.sent_bytes += size

    def completed(self) -> bool:
        """The last body byte went out. True when the request may end now; after a 5xx, the app's
        exception may follow (Starlette re-raises after sending its 500 page), so it waits for it."""
        self.last_byte = perf_counter()
        return self.status is None or self.status < 500

    def end(self, route: str | None, error: BaseException | None = None, reason: str | None = None) -> None:
        """Record the request once; later calls do nothing.

        ``error``: the exception the app raised. ``reason``: why it ended early (client_closed,
        cancelled). With neither and no response started, the server answers 500.
        """
        if self.done:
            return
        self.done = True
        try:
            duration = (perf_counter() if self.last_byte is None else self.last_byte) - self.start
            self._active.record(-1)
            status = self.status if self.status is not None or reason is not None else 500
            kind = error_type(error) if error is not None else str(status) if status and status >= 500 else None
            ended = self._tracker.series.ended((self._method, self._scheme, route, status, kind, reason))
            ended.duration.record(duration)
            if self.first_byte is not None:
                ended.first_byte.record(self.first_byte - self.start)
            ended.response_size.record(self.sent_bytes)
            if self.request_size is not None:
                ended.request_size.record(self.request_size)
            if self.span is not None:
                self._end_span(route, status, kind, error, reason)
        except Exception:
            internal_error("http request end")

    def _end_span(
        self, route: str | None, status: int | None, kind: str | None, error: BaseException | None, reason: str | None
    ) -> None:
        span = self.span
        assert span is not None
        attributes: dict[str, AttributeValue] = {}
        if route is not None:
            attributes[names.HTTP_ROUTE] = route
            span.update_name(f"{_span_name(method_attribute(self._method))} {route}")
        if status is not None:
            attributes[names.HTTP_STATUS_CODE] = status
        if reason is not None:
            attributes[names.END_REASON] = reason
        if kind is not None:
            attributes[names.ERROR_TYPE] = kind
            span.set_status(Status(StatusCode.ERROR, kind))
        if error is not None:
            span.record_exception(error)
        span.set_attributes(attributes)
        span.end()


def _span_name(method: str) -> str:
    return "HTTP" if method == "_OTHER" else method


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value
