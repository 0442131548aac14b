"""Real loopback parts for the network tests: a TCP listener, an HTTP server answering after a known
delay, a port that refuses, and a TCP black hole (connections that never complete)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DELAY = 0.2
"""Seconds the HTTP server waits before it answers."""


@contextmanager
def tcp_listener() -> Iterator[int]:
    """A port that accepts connections (the kernel completes them; nothing reads)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


class _Delayed(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(DELAY)
        status = 503 if self.path.startswith("/down") else 200
        body = b"ok" if status == 200 else b"unavailable"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


@contextmanager
def delayed_http() -> Iterator[str]:
    """``http://127.0.0.1:PORT``: every GET answers after ``DELAY`` seconds (503 under ``/down``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Delayed)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2)


def refused_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def connect_black_hole() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops further SYNs, so a connect hangs until
    its timeout, as with a firewall that drops packets."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers = []
    for _ in range(8):  # fill the queue (its length is backlog + 1) whatever the kernel's rounding
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.1)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
