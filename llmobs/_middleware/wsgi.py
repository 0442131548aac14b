"""WSGI middleware (Flask, any WSGI app): HTTP metrics and a server span per request.

The response ends when the server has written the body's last chunk, or closes the body early
because the client left, so a streamed (generator) response is timed to its last byte.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry.instrumentation.wsgi import wsgi_getter

from .._failsafe import internal_error, warn_once
from ..semconv import CLIENT_CLOSED
from .options import options
from .request import Exchange, Tracker, body_size

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

ROUTE_KEY = "llmobs.http.route"
"""Where a framework leaves the matched route template; ``instrument_flask`` sets it."""
ERROR_KEY = "llmobs.error"
"""Where ``instrument_flask`` leaves the exception that Flask turned into its 500 page."""


class WSGIMiddleware:
    """Wraps a WSGI app: ``app.wsgi_app = WSGIMiddleware(app.wsgi_app)`` (Flask), or any WSGI callable.

    ``skip_paths``: exact paths not recorded (default: health checks and /metrics).
    ``request_headers`` / ``response_headers``: header names allow-listed onto the server span.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        skip_paths: Iterable[str] | None = None,
        request_headers: Iterable[str] = (),
        response_headers: Iterable[str] = (),
    ) -> None:
        self.app = app
        self._tracker = Tracker(options(skip_paths, request_headers, response_headers))
        self._skip = self._tracker.options.skip_paths

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in self._skip:
            return self.app(environ, start_response)
        exchange = self._tracker.begin(
            environ.get("REQUEST_METHOD", ""),
            environ.get("wsgi.url_scheme", "http"),
            path,
            environ,
            wsgi_getter,
            _content_length(environ),
        )
        if exchange is None:
            return self.app(environ, start_response)

        def start_observed(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> Callable[[bytes], object]:
            _started(exchange, status, headers)
            return start_response(status, headers, exc_info)

        token = None if exchange.context is None else otel_context.attach(exchange.context)
        try:
            body = self.app(environ, start_observed)
        except BaseException as exc:
            exchange.end(http_route(environ), exc)
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
        return _Body(body, exchange, environ)


class _Body:
    """The response body, passed through chunk by chunk; the request ends once: when the body is
    exhausted, raises, or is closed before its end (the client left).

    Each chunk is produced with the server span current, so that spans of a streaming generator
    nest under it. A chunk counts as sent when the server asks for the next one.
    """

    __slots__ = ("_body", "_chunks", "_environ", "_exchange", "_pending")

    def __init__(self, body: Iterable[bytes], exchange: Exchange, environ: WSGIEnvironment) -> None:
        self._body = body
        self._chunks: Iterator[bytes] | None = None
        self._exchange = exchange
        self._environ = environ
        self._pending = 0

    def __iter__(self) -> _Body:
        return self

    def __next__(self) -> bytes:
        exchange = self._exchange
        if self._pending:
            try:
                exchange.sent(self._pending)
            except Exception:
                internal_error("wsgi body")
            self._pending = 0
        token = None if exchange.context is None else otel_context.attach(exchange.context)
        try:
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
        try:
            self._pending = len(chunk)
        except Exception:
            internal_error("wsgi body")
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
        if not self._exchange.done:
            self._exchange.end(http_route(self._environ), error or self._environ.get(ERROR_KEY), reason)


def _started(exchange: Exchange, status: str, headers: list[tuple[str, str]]) -> None:
    try:
        exchange.started(int(status[:3]), headers)
    except Exception:
        internal_error("wsgi start_response")


def _content_length(environ: WSGIEnvironment) -> int | None:
    try:
        return body_size(environ.get("CONTENT_LENGTH"))
    except Exception:
        internal_error("wsgi content-length")
        return None


def http_route(environ: WSGIEnvironment) -> str | None:
    """``http.route``, as the framework left it in the environ (``instrument_flask`` does); None
    when nothing matched, never the raw path."""
    route = environ.get(ROUTE_KEY)
    return route if isinstance(route, str) else None


_instrumented: weakref.WeakSet[Any] = weakref.WeakSet()


def instrument_flask(
    app: Flask,
    *,
    skip_paths: Iterable[str] | None = None,
    request_headers: Iterable[str] = (),
    response_headers: Iterable[str] = (),
) -> Flask:
    """Record every request of a Flask app: ``llmobs.instrument_flask(app)``.

    Wraps ``app.wsgi_app``; Flask's signals hand over the matched rule and the exceptions Flask
    turns into 500 pages (signals, not hooks: a ``before_request`` answering 401 skips later hooks).
    Calling it again on the same app does nothing.
    """
    from flask import got_request_exception, request, request_started

    if app in _instrumented:
        warn_once("instrument_flask twice", "llmobs: instrument_flask() was already called on this app")
        return app
    app.wsgi_app = WSGIMiddleware(
        app.wsgi_app,
        skip_paths=skip_paths,  # type: ignore[method-assign]
        request_headers=request_headers,
        response_headers=response_headers,
    )

    def remember_route(sender: object, **extra: object) -> None:
        try:
            rule = request.url_rule
            if rule is not None:
                request.environ[ROUTE_KEY] = rule.rule
        except Exception:
            internal_error("flask request_started")

    def remember_error(sender: object, exception: BaseException, **extra: object) -> None:
        try:
            request.environ[ERROR_KEY] = exception
        except Exception:
            internal_error("flask got_request_exception")

    request_started.connect(remember_route, app, weak=False)
    got_request_exception.connect(remember_error, app, weak=False)
    _instrumented.add(app)
    return app
