"""The scrape endpoint as apps to mount on the application's own server, as prometheus_client users do:
``app.mount("/metrics", llmobs.prometheus_asgi_app())`` or a WSGI dispatcher over
``llmobs.prometheus_wsgi_app()``. Both serve what the dedicated port serves."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

from .. import _lifecycle
from .._failsafe import guarded
from .._points import Points
from .exposition import render, target_labels
from .snapshot import from_metrics

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]
FAILED = (b"llmobs could not render the metrics; see the server's log\n", "text/plain; charset=utf-8")


def scrape(accept: str = "") -> tuple[bytes, str]:
    """What a scrape gets: the merged exposition when llmobs runs its Prometheus exporter, else this
    process's own numbers."""
    endpoint = _lifecycle.state.prometheus
    if endpoint is not None:
        return endpoint.scrape(accept)
    from opentelemetry.sdk.resources import Resource

    registry = _lifecycle.state.registry
    resource = _lifecycle.state.resource or Resource.create()
    own = from_metrics(Points(resource).build(registry.collect())) if hasattr(registry, "collect") else None
    families = {} if own is None else own.families
    return render(families, target_labels(tuple(own.resource) if own else (), ""), accept)


@guarded(where="prometheus app", default=None)
def _answer(accept: str) -> tuple[bytes, str] | None:
    return scrape(accept)


def prometheus_wsgi_app() -> WSGIApplication:
    """A WSGI app answering every request with the exposition (text format, or OpenMetrics on ``Accept``)."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        answer = _answer(environ.get("HTTP_ACCEPT", ""))
        body, content_type = answer or FAILED
        status = "200 OK" if answer else "500 Internal Server Error"
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    return app


def prometheus_asgi_app() -> ASGIApp:
    """An ASGI app answering HTTP requests with the exposition; rendering runs off the event loop."""

    async def app(scope: Scope, _receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            return
        accept = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"accept"), "")
        answer = await asyncio.get_running_loop().run_in_executor(None, _answer, accept)
        body, content_type = answer or FAILED
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200 if answer else 500, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app
