"""Outgoing HTTP calls (httpx, requests, aiohttp): spans from the OpenTelemetry contrib
instrumentations, and ``http.client.request.duration`` recorded by llmobs itself into its registry.

llmobs installs no global MeterProvider, so contrib's own metrics would go nowhere (and, by default,
under the old ``http.client.duration`` name in milliseconds): contrib gets a no-op meter provider,
and a thin wrapper under its span (the transport, the adapter, a trace config) times each request.

Privacy: contrib's spans get a tracer that drops the query string, fragment and user info from
``url.full`` / ``http.url``, and records exceptions by type only (messages of ``requests`` errors
quote the URL), as llmobs's own spans do. Metrics carry no URL at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import import_module
from importlib.util import find_spec
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status
from opentelemetry.util.types import Attributes as OTelAttributes
from typing_extensions import override

from . import _lifecycle
from . import semconv as names
from ._attributes import freeze
from ._config import ConfigError
from ._failsafe import guarded
from ._spans import fail

METHODS = frozenset(("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"))
URL_KEYS = frozenset(("url.full", "http.url"))
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@dataclass(frozen=True)
class Client:
    module: str
    """The client library's import name."""
    instrumentation: str
    instrumentor: str
    extra: str


CLIENTS = {
    "httpx": Client("httpx", "opentelemetry.instrumentation.httpx", "HTTPXClientInstrumentor", "httpx"),
    "requests": Client("requests", "opentelemetry.instrumentation.requests", "RequestsInstrumentor", "requests"),
    "aiohttp": Client(
        "aiohttp", "opentelemetry.instrumentation.aiohttp_client", "AioHttpClientInstrumentor", "aiohttp"
    ),
}
_instrumented: set[str] = set()
_timed: set[str] = set()  # wrapped once, even when contrib then fails and a later call retries


def instrument_http_clients(clients: Sequence[str] | None = None) -> tuple[str, ...]:
    """Trace and time outgoing HTTP calls of ``clients`` (``"httpx"``, ``"requests"``, ``"aiohttp"``;
    default: each of them that is installed with its instrumentation). Safe to call twice, before or
    after ``init``. Returns the clients instrumented now or before.

    Raises ``ConfigError`` for an unknown name and ``ImportError`` naming the extra to install for a
    named client that is missing.
    """
    if clients is None:
        wanted = [name for name, client in CLIENTS.items() if _installed(client)]
    else:
        unknown = [name for name in clients if name not in CLIENTS]
        if unknown:
            raise ConfigError(f"unknown HTTP client(s) {', '.join(unknown)}; llmobs knows {', '.join(CLIENTS)}")
        wanted = list(dict.fromkeys(clients))
        for name in wanted:
            if not _installed(CLIENTS[name]):
                extra = CLIENTS[name].extra
                raise ImportError(f"instrumenting {name} needs its instrumentation: pip install 'llmobs[{extra}]'")
    for name in wanted:
        if name not in _instrumented and _instrument(name):
            _instrumented.add(name)
    return tuple(name for name in CLIENTS if name in _instrumented)


def uninstrument_http_clients() -> None:
    """Undo ``instrument_http_clients`` (the tests leave the process as they found it): contrib's
    wrappers first, as they sit outside llmobs's timers."""
    if not (_instrumented or _timed):
        return
    from opentelemetry.instrumentation.utils import unwrap

    for name in tuple(_instrumented):
        client = CLIENTS[name]
        getattr(import_module(client.instrumentation), client.instrumentor)().uninstrument()
        _instrumented.discard(name)
    for name in tuple(_timed):
        for owner, method in _wrapped(name):
            unwrap(owner, method)
        _timed.discard(name)


def _wrapped(name: str) -> list[tuple[object, str]]:
    module = import_module(CLIENTS[name].module)
    if name == "httpx":
        return [(module.HTTPTransport, "handle_request"), (module.AsyncHTTPTransport, "handle_async_request")]
    if name == "requests":
        return [(import_module("requests.adapters").HTTPAdapter, "send")]
    return [(module.ClientSession, "__init__")]


def _installed(client: Client) -> bool:
    return find_spec(client.module) is not None and find_spec(client.instrumentation) is not None


@guarded(where="instrumenting an HTTP client", default=False)
def _instrument(name: str) -> bool:
    client = CLIENTS[name]
    if name not in _timed:
        _TIMERS[name]()  # wrapped first, so that it runs inside contrib's span
        _timed.add(name)
    instrumentor = getattr(import_module(client.instrumentation), client.instrumentor)()
    instrumentor.instrument(tracer_provider=TracerProvider(), meter_provider=metrics.NoOpMeterProvider())
    return True


# Durations: recorded into llmobs's registry, whichever registry is live when the request ends.


def record(method: str, scheme: str, host: str | None, port: int | None, start: float, outcome: int | str) -> None:
    """One ``http.client.request.duration`` from ``start`` (``perf_counter``); ``outcome`` is the
    response's status code or the failure's ``error.type``."""
    elapsed = time.perf_counter() - start
    upper = method.upper()
    pairs: dict[str, object] = {names.HTTP_METHOD: upper if upper in METHODS else "_OTHER"}
    if host:
        pairs[names.SERVER_ADDRESS] = host
        pairs[names.SERVER_PORT] = port or DEFAULT_PORTS.get(scheme.lower(), 0)
    if isinstance(outcome, int):
        pairs[names.HTTP_STATUS_CODE] = outcome
        if outcome >= 400:
            pairs[names.ERROR_TYPE] = str(outcome)
    else:
        pairs[names.ERROR_TYPE] = outcome
    _lifecycle.state.registry.series(names.HTTP_CLIENT_DURATION, freeze(pairs)).record(elapsed)


@guarded(where="HTTP client duration")
def _httpx_done(request: Any, start: float, outcome: object) -> None:
    url = request.url
    record(request.method, url.scheme, url.host, url.port, start, _outcome(outcome))


def _outcome(outcome: object) -> int | str:
    """A response's status code, or the ``error.type`` of an exception."""
    if isinstance(outcome, BaseException):
        return names.error_type(outcome)
    status = getattr(outcome, "status_code", None)
    return int(getattr(outcome, "status", 0) if status is None else status)


def _request_of(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    return args[0] if args else kwargs["request"]


def _timer(done: Callable[[Any, float, object], None]) -> Callable[..., Any]:
    """A wrapt wrapper that times a client's synchronous send and hands ``done`` its request and outcome
    (the response, or the exception, which goes on to the caller unchanged)."""

    def send(wrapped: Callable[..., Any], _: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        start = time.perf_counter()
        try:
            response = wrapped(*args, **kwargs)
        except BaseException as exc:
            done(_request_of(args, kwargs), start, exc)
            raise
        done(_request_of(args, kwargs), start, response)
        return response

    return send


def _time_httpx() -> None:
    import httpx
    import wrapt

    async def send_async(wrapped: Callable[..., Any], _: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        start = time.perf_counter()
        try:
            response = await wrapped(*args, **kwargs)
        except BaseException as exc:
            _httpx_done(_request_of(args, kwargs), start, exc)
            raise
        _httpx_done(_request_of(args, kwargs), start, response)
        return response

    wrapt.wrap_function_wrapper(httpx.HTTPTransport, "handle_request", _timer(_httpx_done))
    wrapt.wrap_function_wrapper(httpx.AsyncHTTPTransport, "handle_async_request", send_async)


@guarded(where="HTTP client duration")
def _requests_done(request: Any, start: float, outcome: object) -> None:
    url = urlsplit(request.url)
    record(request.method or "GET", url.scheme, url.hostname, url.port, start, _outcome(outcome))


def _time_requests() -> None:
    import requests.adapters
    import wrapt

    wrapt.wrap_function_wrapper(requests.adapters.HTTPAdapter, "send", _timer(_requests_done))


@guarded(where="HTTP client duration")
def _aiohttp_done(context: SimpleNamespace, params: Any, outcome: object) -> None:
    start = getattr(context, "llmobs_start", None)
    if start is not None:
        url = params.url
        record(params.method, url.scheme, url.host, url.port, start, _outcome(outcome))


def _time_aiohttp() -> None:
    import aiohttp
    import wrapt

    async def started(_: Any, context: SimpleNamespace, __: Any) -> None:
        context.llmobs_start = time.perf_counter()

    async def ended(_: Any, context: SimpleNamespace, params: Any) -> None:
        _aiohttp_done(context, params, params.response)

    async def failed(_: Any, context: SimpleNamespace, params: Any) -> None:
        _aiohttp_done(context, params, params.exception)

    def session(wrapped: Callable[..., Any], _: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        config = aiohttp.TraceConfig()
        config.on_request_start.append(started)
        config.on_request_end.append(ended)
        config.on_request_exception.append(failed)
        kwargs["trace_configs"] = [*(kwargs.get("trace_configs") or ()), config]
        return wrapped(*args, **kwargs)

    wrapt.wrap_function_wrapper(aiohttp.ClientSession, "__init__", session)


_TIMERS: dict[str, Callable[[], None]] = {"httpx": _time_httpx, "requests": _time_requests, "aiohttp": _time_aiohttp}


# Spans: contrib's tracer follows llmobs's tracing (on, off, restarted) and keeps URLs private.


def private_url(url: str) -> str:
    """``url`` without user info, query string or fragment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _private(attributes: OTelAttributes) -> OTelAttributes:
    if not attributes or not URL_KEYS & attributes.keys():
        return attributes
    return {k: private_url(str(v)) if k in URL_KEYS else v for k, v in attributes.items()}


class TracerProvider(trace.TracerProvider):
    """Hands contrib tracers that start spans on llmobs's tracer provider of the moment (the
    application's own, when it installed one), or none when llmobs does not trace."""

    @override
    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: OTelAttributes = None,
    ) -> trace.Tracer:
        return Tracer(instrumenting_module_name, instrumenting_library_version, schema_url)


class Tracer(trace.Tracer):
    def __init__(self, name: str, version: str | None, schema_url: str | None) -> None:
        self._scope = (name, version, schema_url)
        self._generation = -1
        self._tracer: trace.Tracer = trace.NoOpTracer()

    def _current(self) -> trace.Tracer:
        state = _lifecycle.state
        if self._generation != state.generation:
            provider = state.tracer_provider or trace.get_tracer_provider()
            name, version, schema_url = self._scope
            self._tracer = (
                trace.NoOpTracer() if state.tracer is None else provider.get_tracer(name, version, schema_url)
            )
            self._generation = state.generation
        return self._tracer

    @override
    def start_span(
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: OTelAttributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        span = self._current().start_span(name, context, kind, _private(attributes), links, start_time, False, False)
        return PrivateSpan(span) if span.is_recording() else span

    @override
    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: OTelAttributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[Span]:
        span = self.start_span(name, context, kind, attributes, links, start_time)
        # The span's own record_exception sets the status, from the exception's type alone.
        with trace.use_span(span, end_on_exit=end_on_exit, record_exception=record_exception,
                            set_status_on_exception=False):  # fmt: skip
            yield span


class PrivateSpan(Span):
    """A contrib span: URLs lose their query strings, exceptions are recorded as llmobs's are."""

    def __init__(self, span: Span) -> None:
        self._span = span

    def end(self, end_time: int | None = None) -> None:
        self._span.end(end_time)

    def get_span_context(self) -> SpanContext:
        return self._span.get_span_context()

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self._span.set_attributes(_private(attributes) or {})

    def set_attribute(self, key: str, value: Any) -> None:
        self._span.set_attribute(key, private_url(str(value)) if key in URL_KEYS else value)

    def add_event(self, name: str, attributes: OTelAttributes = None, timestamp: int | None = None) -> None:
        self._span.add_event(name, attributes, timestamp)

    def update_name(self, name: str) -> None:
        self._span.update_name(name)

    def is_recording(self) -> bool:
        return self._span.is_recording()

    def set_status(self, status: Status | Any, description: str | None = None) -> None:
        self._span.set_status(status, description)

    @override
    def record_exception(
        self,
        exception: BaseException,
        attributes: OTelAttributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        fail(self._span, exception)
