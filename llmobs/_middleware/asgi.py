"""ASGI middleware (FastAPI, Starlette, any ASGI app): HTTP metrics and a server span per request.

The response ends at its last body message or when the client leaves, so a streamed response is
timed to its last byte, not to the handler's return. Websocket scopes pass through; lifespan
scopes too, with one addition: llmobs exports everything before the shutdown completes.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry.instrumentation.asgi import asgi_getter

from .. import _lifecycle
from .._failsafe import internal_error, warn_once
from ..semconv import CANCELLED, CLIENT_CLOSED
from .options import options
from .request import Exchange, Tracker, body_size

if TYPE_CHECKING:
    from starlette.applications import Starlette

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ASGIMiddleware:
    """Wraps an ASGI app: ``app = ASGIMiddleware(app)``, or ``app.add_middleware(ASGIMiddleware)``.

    ``skip_paths``: exact paths not recorded (default: health checks and /metrics).
    ``request_headers`` / ``response_headers``: header names allow-listed onto the server span.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        skip_paths: Iterable[str] | None = None,
        request_headers: Iterable[str] = (),
        response_headers: Iterable[str] = (),
    ) -> None:
        self.app = app
        self._tracker = Tracker(options(skip_paths, request_headers, response_headers))
        self._skip = self._tracker.options.skip_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, _flush_before_shutdown_completes(send))
        if scope["type"] != "http" or scope["path"] in self._skip:
            return await self.app(scope, receive, send)
        exchange = self._tracker.begin(
            scope["method"], scope.get("scheme", "http"), scope["path"], scope, asgi_getter, _content_length(scope)
        )
        if exchange is None:
            return await self.app(scope, receive, send)

        async def receive_observed() -> Message:
            message = await receive()
            if not exchange.done and _is_disconnect(message):
                exchange.end(http_route(scope), reason=CLIENT_CLOSED)
            return message

        async def send_observed(message: Message) -> None:
            size = _before_send(exchange, message)
            try:
                await send(message)
            except OSError:  # the server's way of saying that the client left (ASGI spec 2.4)
                exchange.end(http_route(scope), reason=CLIENT_CLOSED)
                raise
            if size is not None:
                _after_body(exchange, message, size, scope)

        token = None if exchange.context is None else otel_context.attach(exchange.context)
        try:
            await self.app(scope, receive_observed, send_observed)
        except asyncio.CancelledError:
            exchange.end(http_route(scope), reason=CANCELLED)
            raise
        except BaseException as exc:
            exchange.end(http_route(scope), exc)
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
        if not exchange.done:  # the app returned without finishing its response, or after a 5xx
            exchange.end(http_route(scope))


def _flush_before_shutdown_completes(send: Send) -> Send:
    """Export everything before the app reports its shutdown complete: uvicorn then ends the process
    by re-raising the SIGTERM it caught, so that ``atexit`` (llmobs's usual flush) never runs."""

    async def send_after_flush(message: Message) -> None:
        try:
            done = message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed")
        except Exception:
            done = False
        if done:
            await asyncio.get_running_loop().run_in_executor(None, _lifecycle.force_flush)
        await send(message)

    return send_after_flush


def _before_send(exchange: Exchange, message: Message) -> int | None:
    """Note a response start; return the body size of a body message (None for other messages)."""
    try:
        kind = message["type"]
        if kind == "http.response.body":
            return len(message.get("body", b""))
        if kind == "http.response.start":
            exchange.started(int(message["status"]), message.get("headers"))
    except Exception:
        internal_error("asgi send")
    return None


def _after_body(exchange: Exchange, message: Message, size: int, scope: Scope) -> None:
    try:
        exchange.sent(size)
        if not message.get("more_body", False) and exchange.completed():
            exchange.end(http_route(scope))
    except Exception:
        internal_error("asgi body")


def _is_disconnect(message: Message) -> bool:
    try:
        return message["type"] == "http.disconnect"  # type: ignore[no-any-return]
    except Exception:
        internal_error("asgi receive")
        return False


def _content_length(scope: Scope) -> int | None:
    try:
        for name, value in scope["headers"]:
            if name == b"content-length":
                return body_size(value)
    except Exception:
        internal_error("asgi content-length")
    return None


def http_route(scope: Scope) -> str | None:
    """``http.route``: the matched template (Starlette and FastAPI set ``scope["route"]``), with the
    templates of the mounts it sits under; None when nothing matched, never the raw path."""
    try:
        matched = scope.get("route")
        template = getattr(matched, "path_format", None)
        if not isinstance(template, str):
            return None
        top = scope.get("app_root_path")  # set by a Mount only: --root-path is not part of a route
        if top is None or scope["root_path"] == top:  # no Mount, or only Mount("")
            return template
        return _under_mounts(scope, top, matched, template)
    except Exception:
        internal_error("asgi route")
        return None


def _under_mounts(scope: Scope, top: str, matched: object, template: str) -> str | None:
    """Prefix ``template`` with the templates of the Mounts that Starlette went through to reach
    ``matched``: it matches them again, from the outermost router down (``root_path`` holds raw values)."""
    from starlette.routing import Match, Mount

    probe = {"type": "http", "path": scope["path"], "root_path": top}
    routes = getattr(scope.get("router"), "routes", ())
    prefix = ""
    while True:
        for route in routes:
            if route is matched:  # also a Mount that answered itself (static files), or a 404 inside it
                return prefix + template
            if isinstance(route, Mount):
                match, child = route.matches(probe)
                if match is Match.FULL:
                    break
        else:
            return None
        prefix += route.path
        probe["root_path"] = child["root_path"]
        if probe["root_path"] == scope["root_path"]:  # the last mount (its app may hide its routes)
            return prefix + template
        routes = route.routes


_instrumented: weakref.WeakSet[Any] = weakref.WeakSet()


def instrument_fastapi(
    app: Starlette,
    *,
    skip_paths: Iterable[str] | None = None,
    request_headers: Iterable[str] = (),
    response_headers: Iterable[str] = (),
) -> Starlette:
    """Record every request of a FastAPI (or Starlette) app: ``llmobs.instrument_fastapi(app)``.

    The middleware wraps the whole stack, outside the error handler and the app's own middleware,
    so it sees their 401s, 429s and 500s too. Calling it again on the same app does nothing.
    """
    if app in _instrumented:
        warn_once("instrument_fastapi twice", "llmobs: instrument_fastapi() was already called on this app")
        return app
    # Built now, so that bad options fail at set-up; it gets the real stack when Starlette builds it.
    middleware = ASGIMiddleware(
        app, skip_paths=skip_paths, request_headers=request_headers, response_headers=response_headers
    )
    build = app.build_middleware_stack

    def build_instrumented() -> ASGIApp:
        middleware.app = build()
        return middleware

    app.build_middleware_stack = build_instrumented  # type: ignore[method-assign]
    app.middleware_stack = None  # rebuilt at the next request, if it was built already
    _instrumented.add(app)
    return app
