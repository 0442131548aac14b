"""The request lifecycle, for ASGI and WSGI alike: a request in flight, timed to its first and last
body byte sent (or to the client leaving) and ended exactly once into its series and server span;
and the series one middleware records into, bound once per attribute set.

Privacy: only the method, scheme, path (spans, and sanitized on security records), route template and
status are read; query strings, bodies and headers are never touched, except headers the user allow-listed.
Responses of 400 and up go to ``_report``: the security counter and, while the logs signal is on, records.
"""

from __future__ import annotations

from collections.abc import Iterable
from time import perf_counter
from typing import Any, TypeVar

from opentelemetry import propagate, trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.http import sanitize_method

from .. import _lifecycle, _logs, _security
from .. import semconv as names
from .._aggregation import Series
from .._attributes import Attributes, AttributeValue, freeze
from .._failsafe import guarded, raised_by_signal_handler, warn_once
from .._spans import fail
from ..semconv import error_type
from .options import Options

Headers = Iterable[tuple[bytes | str, bytes | str]]

MAX_BODY_SIZE = 2**53  # exact in a float sum; a client's larger Content-Length is not believed
MAX_HEADER_LENGTH = 1024
"""Characters kept of an allow-listed header value on a span."""
MAX_HEADER_VALUES = 8
"""Values kept of one allow-listed header on a span (a header may repeat)."""

SeriesKey = tuple[str, str, "str | None", "int | None", "str | None", "str | None"]
"""``http.request.method``, scheme, route template, status code, error.type, llmobs.end_reason."""

K = TypeVar("K")
V = TypeVar("V")


@guarded
def body_size(header: bytes | str | None) -> int | None:
    """The request size a ``Content-Length`` header announces: digits only, below ``MAX_BODY_SIZE``;
    None for anything else (absent, negative, garbage, absurdly large), so that nothing is recorded."""
    if header is None or len(header) > 16 or not (header.isascii() and header.isdigit()):  # 2**53: 16 digits
        return None
    size = int(header)
    return size if size < MAX_BODY_SIZE else None


class FinishedSeries:
    """The series a finished request with one attribute set records into."""

    __slots__ = ("duration", "first_byte", "request_size", "response_size")

    def __init__(self, attributes: Attributes) -> None:
        registry = _lifecycle.state.registry
        self.duration = registry.series(names.HTTP_SERVER_DURATION, attributes)
        self.first_byte = registry.series(names.HTTP_SERVER_TIME_TO_FIRST_BYTE, attributes)
        self.request_size = registry.series(names.HTTP_SERVER_REQUEST_BODY_SIZE, attributes)
        self.response_size = registry.series(names.HTTP_SERVER_RESPONSE_BODY_SIZE, attributes)


class RequestRecorder:
    """What one middleware shares across its requests: its options, the tracer, and its series by raw
    request values, so that a request costs a dict lookup instead of building and sorting attributes.

    The series are dropped whenever llmobs is started, stopped or forked. Each cache holds at most
    ``max_series`` entries: past that, lookups still work but build their attributes every time (and
    the registry counts them in its overflow series).
    """

    def __init__(self, options: Options) -> None:
        self.options = options
        self._generation = -1
        self._enabled = False
        self._tracer: trace.Tracer | None = None
        self._cap = 0
        self._active: dict[tuple[str, str], tuple[Series, str]] = {}
        self._finished: dict[SeriesKey, FinishedSeries] = {}
        self.audit = options.principal is not None

    @guarded
    def start(
        self, method: str, scheme: str, path: str, carrier: Any, getter: Getter[Any], request_size: int | None
    ) -> InFlightRequest | None:
        """Start recording a request; None when llmobs is off, and the request then passes untouched.

        ``carrier`` and ``getter`` read the caller's ``traceparent`` (and allow-listed headers).
        """
        self._refresh()
        if not self._enabled:
            return None
        active, method_attribute = self._active_series(method, scheme)
        request = InFlightRequest(self, method_attribute, scheme, active, request_size, carrier, path)
        if self._tracer is not None:
            request.start_span(self._tracer, method, path, carrier, getter)
        return request

    def finished_series(self, key: SeriesKey) -> FinishedSeries:
        found = self._finished.get(key)
        if found is None:
            found = self._remember(self._finished, key, FinishedSeries(_attributes(key)))
        return found

    def _refresh(self) -> None:
        """Re-bind after ``init``, ``shutdown`` or a fork; one comparison when nothing changed."""
        state = _lifecycle.state
        if self._generation != state.generation:
            self._active, self._finished = {}, {}
            self._tracer = state.tracer
            self._enabled = state.registry is not _lifecycle.DISABLED
            self._cap = state.registry.max_series
            self._generation = state.generation

    def _active_series(self, method: str, scheme: str) -> tuple[Series, str]:
        """The in-flight series of a method as sent, with its ``http.request.method``: cached, because
        ``sanitize_method`` reads the environment (0.8 µs a call, against 0.04 µs for this lookup)."""
        found = self._active.get((method, scheme))
        if found is None:
            attribute = sanitize_method(method)
            attributes = freeze({names.HTTP_METHOD: attribute, names.URL_SCHEME: scheme})
            series = _lifecycle.state.registry.series(names.HTTP_SERVER_ACTIVE_REQUESTS, attributes)
            found = self._remember(self._active, (method, scheme), (series, attribute))
        return found

    def _remember(self, cache: dict[K, V], key: K, value: V) -> V:
        if len(cache) < self._cap:
            cache[key] = value
        return value


class InFlightRequest:
    """One request: its timings, status and byte counts until ``end`` records them."""

    __slots__ = (
        "_active",
        "_method",
        "_recorder",
        "_scheme",
        "carrier",
        "context",
        "done",
        "first_byte",
        "last_byte",
        "path",
        "request_size",
        "sent_bytes",
        "span",
        "start",
        "status",
    )

    def __init__(
        self,
        recorder: RequestRecorder,
        method: str,
        scheme: str,
        active: Series,
        request_size: int | None,
        carrier: Any,
        path: str,
    ) -> None:
        self._recorder = recorder
        self.carrier = carrier  # the ASGI scope or WSGI environ, read only for records past a 4xx
        self.path = path
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

    @guarded
    def start_span(self, tracer: trace.Tracer, sent_method: str, path: str, carrier: Any, getter: Getter[Any]) -> None:
        """A SERVER span continuing the caller's trace; ``context`` makes it the parent of the app's spans."""
        parent = propagate.extract(carrier, getter=getter)
        attributes: dict[str, AttributeValue | list[str]] = {
            names.HTTP_METHOD: self._method,
            names.URL_SCHEME: self._scheme,
            names.URL_PATH: path,
        }
        if sent_method != self._method:
            attributes[names.HTTP_METHOD_ORIGINAL] = sent_method
        for header in self._recorder.options.request_headers:
            values = getter.get(carrier, header)
            if values:
                attributes[f"http.request.header.{header}"] = _capped(header, values)
        self.span = tracer.start_span(self._span_name(), parent, SpanKind.SERVER, attributes)
        self.context = trace.set_span_in_context(self.span, parent)

    def started(self, status: int, headers: Headers | None) -> None:
        """The response began; allow-listed response headers go on the span."""
        self.status = status
        allowed = self._recorder.options.response_headers
        if self.span is not None and allowed and isinstance(headers, (list, tuple)):  # never consume an iterator
            captured: dict[str, list[str]] = {}
            for name, value in headers:
                key = _text(name).lower()
                if key in allowed:
                    captured.setdefault(key, []).append(_text(value))
            self.span.set_attributes({f"http.response.header.{k}": _capped(k, v) for k, v in captured.items()})

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

    @guarded
    def end(self, route: str | None, error: BaseException | None = None, reason: str | None = None) -> None:
        """Record the request once; later calls do nothing.

        ``error``: the exception the app raised. ``reason``: why it ended early (client_closed,
        cancelled). With neither and no response started, the server answers 500.
        """
        if self.done:
            return
        self.done = True
        duration = (perf_counter() if self.last_byte is None else self.last_byte) - self.start
        self._active.record(-1)
        status = self.status if self.status is not None or reason is not None else 500
        kind = error_type(error) if error is not None else str(status) if status and status >= 500 else None
        finished = self._recorder.finished_series((self._method, self._scheme, route, status, kind, reason))
        finished.duration.record(duration)
        if self.first_byte is not None:
            finished.first_byte.record(self.first_byte - self.start)
        finished.response_size.record(self.sent_bytes)
        if self.request_size is not None:
            finished.request_size.record(self.request_size)
        if self.span is not None:
            self._end_span(self.span, route, status, kind, error, reason)
        if kind is not None or (status is not None and status >= 400) or self._recorder.audit:
            _report(self, route, status, kind, error, duration)

    def _end_span(
        self,
        span: trace.Span,
        route: str | None,
        status: int | None,
        kind: str | None,
        error: BaseException | None,
        reason: str | None,
    ) -> None:
        """An exception fails the span with its type (``_spans.fail``); a 5xx without one gets the
        ERROR status and ``error.type`` (the status code), but no exception event."""
        attributes: dict[str, AttributeValue] = {}
        if route is not None:
            attributes[names.HTTP_ROUTE] = route
            span.update_name(f"{self._span_name()} {route}")
        if status is not None:
            attributes[names.HTTP_STATUS_CODE] = status
        if reason is not None:
            attributes[names.END_REASON] = reason
        if error is not None:
            fail(span, error)
        elif kind is not None:
            attributes[names.ERROR_TYPE] = kind
            span.set_status(Status(StatusCode.ERROR, kind))
        span.set_attributes(attributes)
        span.end()

    def _span_name(self) -> str:
        return "HTTP" if self._method == "_OTHER" else self._method


@guarded(where="security and error records")
def _report(
    request: InFlightRequest,
    route: str | None,
    status: int | None,
    kind: str | None,
    error: BaseException | None,
    duration: float,
) -> None:
    """The security counter, then (logs on) the 5xx record, the security record and the access record."""
    method = request._method
    security = _security.kind_of(status, route) if status is not None else None
    if security is not None:
        _security.count(security, route, method)
    if _logs.emitter.logger is None:
        return
    context = _logs.span_context(request.span)
    who = _identity(request._recorder.options, request.carrier)
    where: dict[str, AttributeValue] = {names.HTTP_METHOD: method}
    if route is not None:
        where[names.HTTP_ROUTE] = route
    if status is not None:
        where[names.HTTP_STATUS_CODE] = status
    if kind is not None:
        _logs.failed(names.HTTP_ERROR_EVENT, {**where, **who}, kind, error, duration, context)
    if security is not None and status is not None:
        fields = _security.attributes(security, route, method, status, request.path)
        body = f"{security}: {method} {fields[names.URL_PATH]} answered {status}"
        _logs.emit(names.SECURITY_EVENT_NAME, {**fields, **who}, SeverityNumber.WARN, body, context)
    if request._recorder.audit:
        outcome = "success" if status is not None and status < 400 else "failure"
        fields = {**where, **who, names.EVENT_OUTCOME: outcome, names.EVENT_DURATION: int(duration * 1e9)}
        _logs.emit(names.ACCESS_EVENT, fields, SeverityNumber.INFO, None, context)


def _identity(options: Options, carrier: Any) -> dict[str, AttributeValue]:
    """The principal's pseudonym and, opted in, the client address, as the request's carrier holds them."""
    found: dict[str, AttributeValue] = {}
    if options.principal is not None:
        try:
            pseudonym = _security.pseudonym(options.principal(carrier))
        except Exception as exc:  # the user's callable failing must not lose the record
            if raised_by_signal_handler(exc):  # the application's deadline, not the callable's bug
                raise
            warn_once("principal:raised", "llmobs: the middleware's principal callable raised; no principal recorded")
            pseudonym = None
        if pseudonym is not None:
            found[names.ENDUSER_PSEUDO_ID] = pseudonym
    if options.client_address:
        client = carrier.get("client") if isinstance(carrier, dict) else None
        address = client[0] if isinstance(client, (list, tuple)) and client else carrier.get("REMOTE_ADDR")
        if isinstance(address, str):
            found[names.CLIENT_ADDRESS] = address[: _security.MAX_PATH_LENGTH]
    return found


def _attributes(key: SeriesKey) -> Attributes:
    method, scheme, route, status, error, reason = key
    pairs: dict[str, AttributeValue | None] = {
        names.HTTP_METHOD: method,
        names.URL_SCHEME: scheme,
        names.HTTP_ROUTE: route,
        names.HTTP_STATUS_CODE: status,
        names.ERROR_TYPE: error,
        names.END_REASON: reason,
    }
    return freeze({k: v for k, v in pairs.items() if v is not None})


def _capped(header: str, values: list[str]) -> list[str]:
    """A header's values for a span: at most ``MAX_HEADER_VALUES`` of ``MAX_HEADER_LENGTH`` characters
    each, with one warning per header the first time a value is cut."""
    kept = [value[:MAX_HEADER_LENGTH] for value in values[:MAX_HEADER_VALUES]]
    if len(values) > MAX_HEADER_VALUES or any(len(value) > MAX_HEADER_LENGTH for value in values):
        warn_once(
            f"header:{header}",
            "llmobs: header %r is capped on spans at %d values of %d characters",
            header,
            MAX_HEADER_VALUES,
            MAX_HEADER_LENGTH,
        )
    return kept


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value
