"""WSGI middleware (Flask, any WSGI app): HTTP metrics and a server span per request.

The response ends when the server has written the body's last chunk, or closes the body early
because the client left, so a streamed (generator) response is timed to its last byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry.instrumentation.wsgi import wsgi_getter

from .._failsafe import guarded, internal_error
from ..semconv import CLIENT_CLOSED
from .options import Keywords, first_instrumentation, options
from .request import InFlightRequest, RequestRecorder, body_size

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask
    from typing_extensions import Unpack

ROUTE_KEY = "llmobs.http.route"
"""Where a framework leaves the matched route template; ``instrument_flask`` sets it."""
ERROR_KEY = "llmobs.error"
"""Where ``instrument_flask`` leaves the exception that Flask turned into its 500 page."""


class WSGIMiddleware:
    """Wraps a WSGI app: ``app.wsgi_app = WSGIMiddleware(app.wsgi_app)`` (Flask), or any WSGI callable.

    Keywords (``options.Keywords``): ``skip_paths``, exact paths not recorded (default: health checks
    and /metrics); ``request_headers`` / ``response_headers``, header names allow-listed onto the span.
    """

    def __init__(self, app: WSGIApplication, **keywords: Unpack[Keywords]) -> None:
        self.app = app
        self._recorder = RequestRecorder(options(keywords))
        self._skip = self._recorder.options.skip_paths

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in self._skip:
            return self.app(environ, start_response)
        request = self._recorder.start(
            environ.get("REQUEST_METHOD", ""),
            environ.get("wsgi.url_scheme", "http"),
            path,
            environ,
            wsgi_getter,
            body_size(environ.get("CONTENT_LENGTH")),
        )
        if request is None:
            return self.app(environ, start_response)

        def start_observed(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> Callable[[bytes], object]:
            _response_started(request, status, headers)
            return start_response(status, headers, exc_info)

        token = None
        try:
            if request.context is not None:
                token = otel_context.attach(request.context)
            body = self.app(environ, start_observed)
        except BaseException as exc:
            request.end(http_route(environ), exc)
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
        return _Body(body, request, environ)


class _Body:
    """The response body, passed through chunk by chunk; the request ends once: when the body is
    exhausted, raises, or is closed before its end (the client left).

    Each chunk is produced with the server span current, so that spans of a streaming generator
    nest under it. A chunk counts as sent when the server asks for the next one.
    """

    __slots__ = ("_body", "_chunks", "_environ", "_pending", "_request")

    def __init__(self, body: Iterable[bytes], request: InFlightRequest, environ: WSGIEnvironment) -> None:
        self._body = body
        self._chunks: Iterator[bytes] | None = None
        self._request = request
        self._environ = environ
        self._pending: bytes | None = None

    def __iter__(self) -> _Body:
        return self

    def __next__(self) -> bytes:
        request = self._request
        if self._pending is not None:
            try:
                request.sent(len(self._pending))
            except Exception:  # noqa: BLE001 - per-chunk path: no decorator layer (docs/performance.md)
                internal_error("_Body.__next__")
            self._pending = None
        token = None
        try:
            if request.context is not None:
                token = otel_context.attach(request.context)
            if self._chunks is None:
                self._chunks = iter(self._body)
            chunk = next(self._chunks)
        except StopIteration:
            self._end(None, None)
            raise
        except BaseException as exc:
            self._end(exc, None)
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
        self._pending = chunk
        return chunk

    def close(self) -> None:
        """Close the app's body, as PEP 3333 asks of the server; before its end, the client left."""
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._end(None, CLIENT_CLOSED)

    def _end(self, error: BaseException | None, reason: str | None) -> None:
        if not self._request.done:
            self._request.end(http_route(self._environ), error or self._environ.get(ERROR_KEY), reason)


@guarded
def _response_started(request: InFlightRequest, status: str, headers: list[tuple[str, str]]) -> None:
    request.started(int(status[:3]), headers)


def http_route(environ: WSGIEnvironment) -> str | None:
    """``http.route``, as the framework left it in the environ (``instrument_flask`` does); None
    when nothing matched, never the raw path."""
    route = environ.get(ROUTE_KEY)
    return route if isinstance(route, str) else None


def instrument_flask(app: Flask, **keywords: Unpack[Keywords]) -> Flask:
    """Record every request of a Flask app: ``llmobs.instrument_flask(app)``.

    Wraps ``app.wsgi_app``; Flask's signals hand over the matched rule and the exceptions Flask
    turns into 500 pages (signals, not hooks: a ``before_request`` answering 401 skips later hooks).
    Calling it again on the same app does nothing.
    """
    from flask import got_request_exception, request, request_started

    middleware = WSGIMiddleware(app.wsgi_app, **keywords)  # first, so that bad options fail at set-up
    if not first_instrumentation(app, "instrument_flask"):
        return app
    app.wsgi_app = middleware  # type: ignore[method-assign]

    @guarded
    def remember_route(_sender: object, **_extra: object) -> None:
        rule = request.url_rule
        if rule is not None:
            request.environ[ROUTE_KEY] = rule.rule

    @guarded
    def remember_error(_sender: object, exception: BaseException, **_extra: object) -> None:
        request.environ[ERROR_KEY] = exception

    request_started.connect(remember_route, app, weak=False)
    got_request_exception.connect(remember_error, app, weak=False)
    return app
