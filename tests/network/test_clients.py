"""Outgoing HTTP calls through the contrib instrumentations: a FastAPI app calling a second real
server through httpx inside a monitored call, and requests and aiohttp against the same server.
Durations are llmobs's own ``http.client.request.duration``; spans nest; no query string leaves."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import httpx
import pytest
import requests
from fastapi import FastAPI

import llmobs
from tests.network.servers import DELAY, delayed_http, refused_port
from tests.otlp_receiver import OTLPReceiver, SpanRecord

DURATION = "http.client.request.duration"
SECRET = "s3cret"


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with delayed_http() as url:
        yield url


@pytest.fixture
def traced(otlp: Callable[..., OTLPReceiver]) -> OTLPReceiver:
    receiver = otlp(traces=True, gpu=False, host=False, http_clients=True)
    assert llmobs.instrument_http_clients() == ("httpx", "requests", "aiohttp")
    return receiver


def make_app(upstream: str) -> FastAPI:
    app = FastAPI()
    llmobs.instrument_fastapi(app)

    @llmobs.monitor_inference(model="m", operation="chat")
    async def answer(path: str) -> str:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{upstream}{path}?token={SECRET}")
        return response.text

    @app.get("/generate")
    async def generate(path: str = "/embed") -> dict[str, str]:
        return {"text": await answer(path)}

    return app


def _call_app(upstream: str, path: str = "/embed") -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=make_app(upstream))  # in process: no client span for this call
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.get("/generate", params={"path": path})

    return asyncio.run(call())


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _point(receiver: OTLPReceiver, **attributes: Any) -> Any:
    assert llmobs.force_flush(timeout=5)
    (point,) = receiver.latest(DURATION, attributes)
    return point


def _spans(receiver: OTLPReceiver, count: int) -> list[SpanRecord]:
    receiver.wait_for(lambda r: len(r.spans()) >= count, timeout=10)
    return receiver.spans()


def _no_secret(receiver: OTLPReceiver) -> None:
    assert llmobs.force_flush(timeout=5)
    exported = [str(s.attributes) + str(s.events) + s.status_message for s in receiver.spans()]
    exported += [str(p.attributes) for p in receiver.metrics()]
    assert not [text for text in exported if SECRET in text or "token=" in text]


def test_a_monitored_call_times_its_upstream_and_nests_its_span(traced: OTLPReceiver, upstream: str) -> None:
    assert _call_app(upstream).json() == {"text": "ok"}
    point = _point(traced, **{"server.port": _port(upstream)})
    assert point.attributes == {
        "http.request.method": "GET",
        "server.address": "127.0.0.1",
        "server.port": _port(upstream),
        "http.response.status_code": 200,
    }
    assert point.count == 1 and DELAY * 0.9 <= point.sum <= DELAY + 1.0
    spans = {s.kind: s for s in _spans(traced, 3)}
    server, client = spans["SPAN_KIND_SERVER"], spans["SPAN_KIND_CLIENT"]
    (inference,) = [s for s in traced.spans() if s.kind not in ("SPAN_KIND_SERVER", "SPAN_KIND_CLIENT")]
    assert inference.parent_span_id == server.span_id and client.parent_span_id == inference.span_id
    assert client.trace_id == server.trace_id
    assert client.attributes.get("http.url", client.attributes.get("url.full")) == f"{upstream}/embed"
    assert DELAY * 0.9 <= (client.end_time_unix_nano - client.start_time_unix_nano) / 1e9 <= DELAY + 1.0
    _no_secret(traced)


def test_an_error_status_is_the_error_type(traced: OTLPReceiver, upstream: str) -> None:
    assert _call_app(upstream, "/down").json() == {"text": "unavailable"}
    point = _point(traced, **{"server.port": _port(upstream)})
    assert point.attributes["http.response.status_code"] == 503 and point.attributes["error.type"] == "503"


def test_requests_and_aiohttp_record_the_same_names(traced: OTLPReceiver, upstream: str) -> None:
    assert requests.get(f"{upstream}/a?token={SECRET}", timeout=5).text == "ok"

    async def fetch() -> str:
        async with aiohttp.ClientSession() as session, session.get(f"{upstream}/b?token={SECRET}") as response:
            return await response.text()

    assert asyncio.run(fetch()) == "ok"
    point = _point(traced, **{"server.port": _port(upstream), "http.response.status_code": 200})
    assert point.count == 2 and 2 * DELAY * 0.9 <= point.sum <= 2 * DELAY + 2.0
    clients = [s for s in _spans(traced, 2) if s.kind == "SPAN_KIND_CLIENT"]
    urls = sorted(str(s.attributes.get("http.url", s.attributes.get("url.full"))) for s in clients)
    assert urls == [f"{upstream}/a", f"{upstream}/b"]
    _no_secret(traced)


def test_a_refused_connection_is_recorded_by_type_and_still_raises(traced: OTLPReceiver) -> None:
    port = refused_port()
    url = f"http://user:{SECRET}@127.0.0.1:{port}/x?token={SECRET}"
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=5)
    assert llmobs.force_flush(timeout=5)
    errors = {p.attributes["error.type"] for p in traced.latest(DURATION, {"server.port": port})}
    assert errors == {"httpx.ConnectError", "requests.exceptions.ConnectionError"}
    failed = [s for s in _spans(traced, 2) if s.kind == "SPAN_KIND_CLIENT"]
    assert len(failed) == 2 and all(s.status_code == "STATUS_CODE_ERROR" for s in failed)
    assert all(name != "exception" or set(attrs) == {"exception.type"} for s in failed for name, attrs in s.events)
    _no_secret(traced)


def test_without_tracing_no_client_span_is_made_but_durations_are(
    otlp: Callable[..., OTLPReceiver], upstream: str
) -> None:
    receiver = otlp(traces=False, gpu=False, host=False)
    llmobs.instrument_http_clients(["httpx"])
    assert httpx.get(f"{upstream}/c").text == "ok"
    assert _point(receiver, **{"server.port": _port(upstream)}).count == 1
    assert not receiver.spans()


def test_a_client_named_but_unknown_is_refused() -> None:
    with pytest.raises(llmobs.ConfigError, match="unknown HTTP client"):
        llmobs.instrument_http_clients(["urllib3"])


def test_a_client_named_but_not_installed_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmobs import _clients

    monkeypatch.setattr(_clients, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"pip install 'llmobs\[aiohttp\]'"):
        llmobs.instrument_http_clients(["aiohttp"])
    before = set(_clients._instrumented)
    llmobs.instrument_http_clients()  # none installed: nothing to do, nothing raised
    assert _clients._instrumented == before


def test_uninstrumenting_leaves_the_clients_as_they_were(upstream: str) -> None:
    from llmobs._clients import uninstrument_http_clients

    llmobs.instrument_http_clients()
    uninstrument_http_clients()
    assert not hasattr(httpx.HTTPTransport.handle_request, "__wrapped__")
    assert not hasattr(requests.adapters.HTTPAdapter.send, "__wrapped__")
    assert not hasattr(requests.Session.send, "__wrapped__")
    assert not hasattr(aiohttp.ClientSession.__init__, "__wrapped__")
    assert llmobs.instrument_http_clients() == ("httpx", "requests", "aiohttp")  # and again
    assert hasattr(httpx.HTTPTransport.handle_request, "__wrapped__")
