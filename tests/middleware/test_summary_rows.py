"""The summary's HTTP rows: an app with only the middleware prints its routes and the host line."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

import llmobs
from llmobs import _lifecycle
from llmobs import semconv as names
from llmobs._middleware.wsgi import ROUTE_KEY
from tests.test_summary import summary_of

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    """A WSGI app whose /fail answers 503; it names its route as a framework would."""
    environ[ROUTE_KEY] = environ["PATH_INFO"]
    start_response("503 Unavailable" if environ["PATH_INFO"] == "/fail" else "200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def get(wrapped: Any, path: str) -> None:
    def start_response(*_: Any) -> Callable[[bytes], object]:
        return lambda _: None

    body = wrapped({"REQUEST_METHOD": "GET", "PATH_INFO": path, "wsgi.url_scheme": "http"}, start_response)
    list(body)
    body.close()


def test_an_http_only_app_prints_its_routes(capsys: pytest.CaptureFixture[str]) -> None:
    wrapped = llmobs.WSGIMiddleware(app)
    lines = summary_of(capsys, lambda: list(map(functools.partial(get, wrapped), ["/ok"] * 3 + ["/fail"])))
    header = next(i for i, line in enumerate(lines) if "http route" in line)
    assert lines[header].split() == ["http", "route", "req/s", "5xx%", "p95"]
    rows = {line.split()[1]: line.split() for line in lines[header + 1 :] if line.strip().startswith("GET")}
    assert rows["/ok"][3] == "0.0%" and rows["/fail"][3] == "100.0%", lines


def test_resources_print_with_http_traffic_alone(capsys: pytest.CaptureFixture[str]) -> None:
    def readings_and_a_request() -> None:
        registry = _lifecycle.state.registry
        registry.series(names.SYSTEM_CPU_UTILIZATION, ()).record(0.25)
        registry.series(names.SYSTEM_MEMORY_UTILIZATION, ()).record(0.5)
        get(llmobs.WSGIMiddleware(app), "/ok")

    assert "  host cpu 25% mem 50%" in summary_of(capsys, readings_and_a_request)
