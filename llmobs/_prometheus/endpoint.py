"""The scrape endpoint: every process of a service publishes its snapshot each interval; the one holding
the service's serve lock binds ``host:port`` and answers ``GET /metrics`` with the merge of them all.
Another process takes the lock over within an interval or two when the serving one dies."""

from __future__ import annotations

import os
import socket
import threading
import time
import weakref
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from .._failsafe import guarded, internal_error, warn_once
from .._points import Points
from .exposition import render, target_labels
from .share import Share
from .snapshot import Snapshot, from_metrics, merge

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource

    from .._aggregation import Registry

MAX_CONNECTIONS = 32
"""Scrape connections served at once; a further one is closed at once rather than queued, so that
hung scrapers cannot pile up threads."""
MAX_RENDERS = 2
"""Scrapes rendered at once (rendering is CPU-bound: more at once only makes each slower)."""
READ_TIMEOUT = 10.0
"""Seconds a scraper may take to send its request, or wait for a render, before it is dropped."""

_endpoints: weakref.WeakSet[Endpoint] = weakref.WeakSet()


class EndpointError(OSError):
    """The scrape port could not be bound (in use, or a bad host)."""


class Endpoint:
    """Started by ``init`` when ``OTEL_METRICS_EXPORTER`` includes ``prometheus``; ``address`` is
    (host, port). Raises ``EndpointError`` when this process should serve and cannot bind."""

    def __init__(self, registry: Registry, resource: Resource, address: tuple[str, int], interval: float,
                 service: str | None) -> None:  # fmt: skip
        self._registry = registry
        self._points = Points(resource)
        self._address = address
        self._interval = interval
        self._pid = os.getpid()
        self._server: _Server | None = None
        self._stop = threading.Event()
        self._share = _join(service)
        self._target = target_labels(self._own().resource, f"{socket.gethostname()}:{address[1]}")
        _endpoints.add(self)
        self._publish()
        try:
            self._take_over()  # at init: a port in use fails here, in the process that would serve
        except EndpointError:
            if self._share is not None:
                self._leave(self._share)
            raise
        self._thread = threading.Thread(target=self._run, name="llmobs-prometheus", daemon=True)
        self._thread.start()

    def scrape(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition of every process of the service on this host, for the ``Accept`` header given."""
        own = self._own()
        snapshots = [own] if self._share is None else self._share.gather(own)
        return render(merge(snapshots), self._target, accept)

    def shutdown(self, deadline: float) -> bool:
        """Stop serving, publish the final snapshot for the processes that stay, and leave."""
        self._stop.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._close_server()
        self._publish()
        if self._share is not None:
            self._leave(self._share)
        return not self._thread.is_alive()

    @property
    def serving(self) -> bool:
        return self._server is not None

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._publish()
            if self._server is None:
                self._try_take_over()

    def _own(self) -> Snapshot:
        return from_metrics(self._points.build(self._registry.collect()))

    @guarded(where="prometheus snapshot")
    def _publish(self) -> None:
        if self._share is not None:
            self._share.publish(self._own())

    def _take_over(self) -> None:
        if self._share is not None and not self._share.serve():
            return
        try:
            self._server = _Server(self._address, self)
        except OSError as exc:
            if self._share is not None:
                self._share.release_serving()
            host, port = self._address
            raise EndpointError(f"cannot serve Prometheus scrapes on {host}:{port} ({exc.strerror or exc})") from exc
        threading.Thread(target=self._server.serve_forever, name="llmobs-prometheus-http", daemon=True).start()

    def _try_take_over(self) -> None:
        try:
            self._take_over()
        except EndpointError as exc:
            warn_once("prometheus-bind", "llmobs: %s; trying again every %.0fs", exc, self._interval)
        except Exception:  # noqa: BLE001 - the endpoint thread must keep publishing
            internal_error("prometheus take-over")

    def _close_server(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    @guarded(where="prometheus leave")
    def _leave(self, share: Share) -> None:
        share.leave()

    def _forget(self) -> None:
        """In a forked child: close the inherited listening socket, so that the port is free for
        whichever process takes over when the parent dies."""
        server, self._server = self._server, None
        if server is not None:
            server.socket.close()


@guarded(where="prometheus share")
def _join(service: str | None) -> Share | None:
    """This process's part in the service's shared directory; None (own numbers only, one warning) when
    the private runtime directory cannot be used."""
    try:
        return Share(service)
    except OSError as exc:
        warn_once("prometheus-share", "llmobs: cannot share snapshots between workers (%s); each process "
                  "that answers a scrape shows only its own numbers", exc)  # fmt: skip
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.renders = threading.BoundedSemaphore(MAX_RENDERS)
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # a slow or hung scraper cannot pile up threads
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _Handler(BaseHTTPRequestHandler):
    timeout = READ_TIMEOUT
    server: _Server

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            self._answer(404, b"not found: llmobs serves /metrics\n", "text/plain; charset=utf-8")
            return
        if not self.server.renders.acquire(timeout=READ_TIMEOUT):
            self._answer(503, b"llmobs is busy rendering other scrapes\n", "text/plain; charset=utf-8")
            return
        try:
            answer = _scrape(self.server.endpoint, self.headers.get("Accept", ""))
        finally:
            self.server.renders.release()
        if answer is None:
            self._answer(500, b"llmobs could not render the metrics; see the server's log\n", "text/plain")
        else:
            self._answer(200, *answer)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the host application's stderr is not llmobs's to fill."""


@guarded(where="prometheus scrape")
def _scrape(endpoint: Endpoint, accept: str) -> tuple[bytes, str]:
    return endpoint.scrape(accept)


def _after_fork_in_child() -> None:
    for endpoint in list(_endpoints):
        if endpoint._pid != os.getpid():
            endpoint._forget()


os.register_at_fork(after_in_child=_after_fork_in_child)
