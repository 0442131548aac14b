"""ASGI middleware (FastAPI, Starlette, any ASGI app): HTTP metrics and a server span per request.

The response ends at its last body message or when the client leaves, so a streamed response is
timed to its last byte, not to the handler's return. Websocket scopes pass through; lifespan
scopes too, with one addition: llmobs exports everything before the shutdown completes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry.instrumentation.asgi import asgi_getter

from .. import _lifecycle
from .._failsafe import guarded
from ..semconv import CANCELLED, CLIENT_CLOSED
from .options import Keywords, first_instrumentation, options
from .request import InFlightRequest, RequestRecorder, body_size

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from typing_extensions import Unpack

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ASGIMiddleware:
    """Wraps an ASGI app: ``app = ASGIMiddleware(app)``, or ``app.add_middleware(ASGIMiddleware)``.

    Keywords (``options.Keywords``): ``skip_paths``, exact paths not recorded (default: health checks
    and /metrics); ``request_headers`` / ``response_headers``, header names allow-listed onto the span.
    """

    def __init__(self, app: ASGIApp, **keywords: Unpack[Keywords]) -> None:
        self.app = app
        self._recorder = RequestRecorder(options(keywords))
        self._skip = self._recorder.options.skip_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, _flush_before_shutdown_completes(send))
        if scope["type"] != "http" or scope["path"] in self._skip:
            return await self.app(scope, receive, send)
        request = self._recorder.start(
            scope["method"], scope.get("scheme", "http"), scope["path"], scope, asgi_getter, _content_length(scope)
        )
        if request is None:
            return await self.app(scope, receive, send)
        await _Observed(scope, receive, send, request).run(self.app)


class _Observed:
    """One request's run of the app: ``receive`` and ``send`` as the app sees them end ``request`` when
    the client leaves and at the last body byte; ``run`` ends it when the app raises or returns."""

    __slots__ = ("_receive", "_request", "_scope", "_send")

    def __init__(self, scope: Scope, receive: Receive, send: Send, request: InFlightRequest) -> None:
        self._scope, self._receive, self._send, self._request = scope, receive, send, request

    async def run(self, app: ASGIApp) -> None:
        request, scope = self._request, self._scope
        token = None
        try:
            if request.context is not None:
                token = otel_context.attach(request.context)
            await app(scope, self.receive, self.send)
        except asyncio.CancelledError:
            request.end(http_route(scope), reason=CANCELLED)
            raise
        except BaseException as exc:
            request.end(http_route(scope), exc)
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
        if not request.done:  # the app returned without finishing its response, or after a 5xx
            request.end(http_route(scope))

    async def receive(self) -> Message:
        message = await self._receive()
        if not self._request.done and _message_type(message) == "http.disconnect":
            self._request.end(http_route(self._scope), reason=CLIENT_CLOSED)
        return message

    async def send(self, message: Message) -> None:
        size = _before_send(self._request, message)
        try:
            await self._send(message)
        except OSError:  # the server's way of saying that the client left (ASGI spec 2.4)
            self._request.end(http_route(self._scope), reason=CLIENT_CLOSED)
            raise
        if size is not None:
            _after_body(self._request, message, size, self._scope)


def _flush_before_shutdown_completes(send: Send) -> Send:
    """Export everything before the app reports its shutdown complete: uvicorn then ends the process
    by re-raising the SIGTERM it caught, so that ``atexit`` (llmobs's usual flush) never runs."""

    async def send_after_flush(message: Message) -> None:
        if _message_type(message) in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            await asyncio.get_running_loop().run_in_executor(None, _lifecycle.force_flush)
        await send(message)

    return send_after_flush


@guarded
def _message_type(message: Message) -> object:
    return message["type"]


@guarded
def _before_send(request: InFlightRequest, message: Message) -> int | None:
    """Note a response start; return the body size of a body message (None for other messages)."""
    kind = message["type"]
    if kind == "http.response.body":
        return len(message.get("body", b""))
    if kind == "http.response.start":
        request.started(int(message["status"]), message.get("headers"))
    return None


@guarded
def _after_body(request: InFlightRequest, message: Message, size: int, scope: Scope) -> None:
    request.sent(size)
    if not message.get("more_body", False) and request.completed():
        request.end(http_route(scope))


@guarded
def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return body_size(value)
    return None


@guarded
def http_route(scope: Scope) -> str | None:
    """``http.route``: the matched template (Starlette and FastAPI set ``scope["route"]``), with the
    templates of the mounts it sits under; None when nothing matched, never the raw path."""
    matched = scope.get("route")
    template = getattr(matched, "path_format", None)
    if not isinstance(template, str):
        return None
    top = scope.get("app_root_path")  # set by a Mount only: --root-path is not part of a route
    if top is None or scope["root_path"] == top:  # no Mount, or only Mount("")
        return template
    return _under_mounts(scope, top, matched, template)


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


def instrument_fastapi(app: Starlette, **keywords: Unpack[Keywords]) -> Starlette:
    """Record every request of a FastAPI (or Starlette) app: ``llmobs.instrument_fastapi(app)``.

    The middleware wraps the whole stack, outside the error handler and the app's own middleware,
    so it sees their 401s, 429s and 500s too. Calling it again on the same app does nothing.
    """
    # Built first, so that bad options fail at set-up; it gets the real stack when Starlette builds it.
    middleware = ASGIMiddleware(app, **keywords)
    if not first_instrumentation(app, "instrument_fastapi"):
        return app
    build = app.build_middleware_stack

    def build_instrumented() -> ASGIApp:
        middleware.app = build()
        return middleware

    app.build_middleware_stack = build_instrumented  # type: ignore[method-assign]
    app.middleware_stack = None  # rebuilt at the next request, if it was built already
    return app
