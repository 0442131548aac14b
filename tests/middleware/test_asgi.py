"""ASGIMiddleware called in-process, for the edge cases a real server rarely produces on demand."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import llmobs
from llmobs import ConfigError, _failsafe
from llmobs._middleware import ASGIMiddleware, instrument_fastapi
from llmobs._middleware.request import MAX_HEADER_LENGTH, MAX_HEADER_VALUES, InFlightRequest
from tests.middleware.deadline import Deadline, deadline
from tests.otlp_receiver import MetricPoint, OTLPReceiver, SpanRecord

DURATION = "http.server.request.duration"


class Broken(Exception):
    """The app's own exception: it must come out as the very same object."""


def http_scope(
    path: str = "/x", method: str = "GET", headers: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        **extra,
    }


def call(
    app: ASGIApp, scope: Scope, incoming: list[Message] | None = None, send_error: BaseException | None = None
) -> list[Message]:
    """Run one ASGI call; ``send_error`` is raised by the server's send from the second body message on."""
    messages = list(incoming or [{"type": "http.request", "body": b"", "more_body": False}])
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        bodies = [m for m in sent if m["type"] == "http.response.body"]
        if send_error is not None and message["type"] == "http.response.body" and bodies:
            raise send_error
        sent.append(message)

    async def run() -> None:
        await app(scope, receive, send)

    asyncio.run(run())
    return sent


def text_app(body: bytes = b"hello", status: int = 200, chunks: int = 1) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
        for i in range(chunks):
            await send({"type": "http.response.body", "body": body, "more_body": i < chunks - 1})

    return app


def points(receiver: OTLPReceiver, name: str = DURATION) -> list[MetricPoint]:
    assert llmobs.force_flush()
    return receiver.latest(name)


def spans(receiver: OTLPReceiver) -> list[SpanRecord]:
    assert llmobs.force_flush()
    return receiver.spans()


def test_records_duration_sizes_and_a_server_span(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    call(
        ASGIMiddleware(text_app(b"hello", chunks=3)),
        http_scope(method="POST", headers={"content-length": "11"}),
        [{"type": "http.request", "body": b"hello world", "more_body": False}],
    )
    [duration] = points(receiver)
    assert duration.count == 1 and duration.attributes == {
        "http.request.method": "POST",
        "http.response.status_code": 200,
        "url.scheme": "http",
    }
    assert receiver.latest("http.server.request.body.size")[0].sum == 11
    assert receiver.latest("http.server.response.body.size")[0].sum == 15
    [first_byte] = receiver.latest("llmobs.http.server.time_to_first_byte")
    assert first_byte.sum is not None and duration.sum is not None and 0 < first_byte.sum <= duration.sum
    [span] = spans(receiver)
    assert (span.name, span.kind, span.parent_span_id) == ("POST", "SPAN_KIND_SERVER", "")
    assert span.attributes == {
        "http.request.method": "POST",
        "url.scheme": "http",
        "url.path": "/x",
        "http.response.status_code": 200,
    }


def test_websocket_scope_passes_through_untouched(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.extend([scope, receive, send])

    scope = http_scope(type="websocket")

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        pass

    asyncio.run(ASGIMiddleware(app)(scope, receive, send))
    assert seen[0] is scope and seen[1] is receive and seen[2] is send
    assert points(receiver) == [] and receiver.spans() == []


def test_lifespan_passes_through_and_exports_before_shutdown_completes(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    lifespan = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    answered: list[tuple[str, int]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        else:
            await text_app()(scope, receive, send)

    middleware = ASGIMiddleware(app)
    call(middleware, http_scope())

    async def server() -> None:
        async def receive() -> Message:
            return lifespan.pop(0)

        async def send(message: Message) -> None:
            exported = [p for p in receiver.metrics() if p.name == DURATION]
            answered.append((message["type"], len(exported)))

        await middleware({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)

    asyncio.run(server())
    # uvicorn ends the process right after shutdown.complete: the request was exported before it.
    assert answered == [("lifespan.startup.complete", 0), ("lifespan.shutdown.complete", 1)]


def test_app_exception_is_reraised_unchanged_and_recorded(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    error = Broken("model crashed")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise error

    with pytest.raises(Broken) as raised:
        call(ASGIMiddleware(app), http_scope())
    assert raised.value is error
    [duration] = points(receiver)
    assert duration.attributes["error.type"] == f"{__name__}.Broken"
    assert duration.attributes["http.response.status_code"] == 500  # what the server answers
    [span] = spans(receiver)
    assert (span.status_code, span.attributes["error.type"]) == ("STATUS_CODE_ERROR", f"{__name__}.Broken")
    assert span.events == [("exception", {"exception.type": f"{__name__}.Broken"})]  # not the message


def test_exception_message_reaches_the_span_only_when_opted_in(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp(capture_exception_messages=True)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise Broken("model crashed")

    with pytest.raises(Broken):
        call(ASGIMiddleware(app), http_scope())
    [span] = spans(receiver)
    [(name, event)] = span.events
    assert (name, event["exception.type"], event["exception.message"]) == (
        "exception",
        f"{__name__}.Broken",
        "model crashed",
    )
    assert "model crashed" in event["exception.stacktrace"]


def test_5xx_without_an_exception_fails_the_span_without_an_event(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    call(ASGIMiddleware(text_app(status=503)), http_scope())
    [span] = spans(receiver)
    assert (span.status_code, span.attributes["error.type"], span.events) == ("STATUS_CODE_ERROR", "503", [])


def test_exception_mid_stream_keeps_the_status_already_sent(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise Broken

    with pytest.raises(Broken):
        call(ASGIMiddleware(app), http_scope())
    [duration] = points(receiver)
    assert (duration.attributes["http.response.status_code"], duration.attributes["error.type"]) == (
        200,
        f"{__name__}.Broken",
    )


def test_send_failing_because_the_client_left_is_client_closed(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    gone = OSError("client went away")
    with pytest.raises(OSError) as raised:
        call(ASGIMiddleware(text_app(chunks=5)), http_scope(), send_error=gone)
    assert raised.value is gone
    [duration] = points(receiver)
    assert duration.attributes["llmobs.end_reason"] == "client_closed" and "error.type" not in duration.attributes
    assert receiver.latest("http.server.response.body.size")[0].sum == 5  # the chunk that got out


def test_disconnect_message_ends_the_request_when_the_client_leaves(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()

    noticed: list[float] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        assert (await receive())["type"] == "http.request"
        assert (await receive())["type"] == "http.disconnect"
        noticed.append(time.perf_counter())
        await asyncio.sleep(0.2)  # the app notices late: the duration still ends at the disconnect

    began = time.perf_counter()
    call(ASGIMiddleware(app), http_scope())
    [duration] = points(receiver)
    assert duration.attributes["llmobs.end_reason"] == "client_closed"
    assert duration.sum is not None and duration.sum <= noticed[0] - began  # not the 0.2 s after it


def test_routes_are_templates_with_their_mounts_never_raw_paths(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()

    async def files(scope: Scope, receive: Receive, send: Send) -> None:
        await text_app()(scope, receive, send)

    app = Starlette(
        routes=[
            Route("/items/{item_id}", lambda request: PlainTextResponse("item")),
            Mount("/v1", routes=[Route("/users/{user_id}", lambda request: PlainTextResponse("user"))]),
            Mount("/static", app=files),
        ]
    )
    instrument_fastapi(app)
    for path in ("/items/42", "/v1/users/alice", "/static/css/site.css", "/missing"):
        call(app, http_scope(path))
    call(app, http_scope("/api/items/7", root_path="/api"))  # a proxy's prefix is not part of the route
    routes = sorted((p.attributes.get("http.route", ""), p.count) for p in points(receiver))
    assert routes == [("", 1), ("/items/{item_id}", 2), ("/static/{path}", 1), ("/v1/users/{user_id}", 1)]
    assert {x.name for x in spans(receiver)} == {
        "GET",
        "GET /items/{item_id}",
        "GET /static/{path}",
        "GET /v1/users/{user_id}",
    }


def test_routes_under_parameterised_mounts_are_full_templates(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()

    async def files(scope: Scope, receive: Receive, send: Send) -> None:
        await text_app()(scope, receive, send)

    users = Starlette(routes=[Route("/items/{item_id}", lambda request: PlainTextResponse("item"))])
    app = Starlette(
        routes=[
            Mount("/users/{user_id}", app=users),
            Mount(
                "/orgs/{org}",
                routes=[
                    Mount(
                        "/teams/{team}",
                        routes=[Route("/members/{member}", lambda request: PlainTextResponse("member"))],
                    ),
                    Mount("/files", app=files),
                ],
            ),
        ]
    )
    instrument_fastapi(app)
    for path in (
        "/users/alice@example.com/items/item-42",
        "/users/user-bob/items/item-7",
        "/orgs/org-acme/teams/team-red/members/member-carol",
        "/orgs/org-acme/files/file-secret.txt",
        "/orgs/org-acme/nothing-here",
    ):
        call(app, http_scope(path))
    call(app, http_scope("/api/users/user-dave/items/item-1", root_path="/api"))
    routes = sorted((p.attributes.get("http.route", ""), p.count) for p in points(receiver))
    assert routes == [
        ("/orgs/{org}/files/{path}", 1),
        ("/orgs/{org}/teams/{team}/members/{member}", 1),
        ("/orgs/{org}/{path}", 1),
        ("/users/{user_id}/items/{item_id}", 3),
    ]
    names = {x.name for x in spans(receiver)}
    assert names == {f"GET {route}" for route, _ in routes}
    exported = str([p.attributes for p in receiver.metrics()]) + str(names)
    raw = ("alice", "bob", "dave", "item-", "org-", "team-", "member-", "file-", "nothing", "/api")
    assert [value for value in raw if value in exported] == []


def test_implausible_content_length_records_no_request_size(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    app = ASGIMiddleware(text_app())
    for length in ("9" * 400, "-5", str(2**53), "1e3", "0x10", "", "12"):
        call(app, http_scope(method="POST", headers={"content-length": length}))
    assert points(receiver)[0].count == 7
    [size] = receiver.latest("http.server.request.body.size")
    assert (size.count, sum(size.bucket_counts), size.sum) == (1, 1, 12)


def test_unknown_methods_are_other(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    call(ASGIMiddleware(text_app()), http_scope(method="BREW"))
    [duration] = points(receiver)
    assert duration.attributes["http.request.method"] == "_OTHER"
    [span] = spans(receiver)
    assert span.name == "HTTP" and span.attributes["http.request.method_original"] == "BREW"


def test_continues_the_callers_trace(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    call(ASGIMiddleware(text_app()), http_scope(headers={"traceparent": parent}))
    [span] = spans(receiver)
    assert (span.trace_id, span.parent_span_id) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")


def test_only_allow_listed_headers_reach_the_span(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    app = ASGIMiddleware(text_app(), request_headers=["X-Request-Id"], response_headers=["content-type"])
    call(app, http_scope(headers={"x-request-id": "r-1", "authorization": "Bearer secret", "cookie": "s=secret"}))
    [span] = spans(receiver)
    headers = {k: v for k, v in span.attributes.items() if ".header." in k}
    assert headers == {"http.request.header.x-request-id": ["r-1"], "http.response.header.content-type": ["text/plain"]}
    assert "http.request.header" not in str(points(receiver)[0].attributes)


def test_allow_listed_header_values_are_capped_on_spans(
    otlp: Callable[..., OTLPReceiver], caplog: pytest.LogCaptureFixture
) -> None:
    receiver = otlp()
    many = [(b"x-many", b"v%d" % i) for i in range(20)]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": many})
        await send({"type": "http.response.body", "body": b"ok"})

    scope = http_scope(headers={"x-long": "a" * 5000})
    scope["headers"] += many
    _failsafe.reset()
    middleware = ASGIMiddleware(app, request_headers=["x-long", "x-many"], response_headers=["x-many"])
    with caplog.at_level(logging.WARNING, logger="llmobs"):
        call(middleware, scope)
    [span] = spans(receiver)
    assert span.attributes["http.request.header.x-long"] == ["a" * MAX_HEADER_LENGTH]
    kept = [f"v{i}" for i in range(MAX_HEADER_VALUES)]
    assert span.attributes["http.request.header.x-many"] == span.attributes["http.response.header.x-many"] == kept
    assert caplog.text.count("is capped on spans") == 2  # once per header


def test_metrics_only_mode_starts_no_span(otlp: Callable[..., OTLPReceiver], monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = otlp(traces=False)
    started: list[object] = []
    monkeypatch.setattr(InFlightRequest, "start_span", lambda *args: started.append(args))
    call(ASGIMiddleware(text_app()), http_scope(headers={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}))
    assert points(receiver)[0].count == 1
    assert started == [] and receiver.spans() == []


def test_skip_paths_replace_the_defaults(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    app = ASGIMiddleware(text_app(), skip_paths=["/ready"])
    for path in ("/ready", "/health"):
        call(app, http_scope(path))
    assert [p.count for p in points(receiver)] == [1]
    assert [x.attributes["url.path"] for x in spans(receiver)] == ["/health"]


def test_failure_inside_llmobs_never_changes_the_response(
    otlp: Callable[..., OTLPReceiver], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    otlp()

    def broken(*args: Any) -> None:
        raise RuntimeError("llmobs bug")

    _failsafe.reset()  # each place logs once per process
    monkeypatch.setattr(InFlightRequest, "started", broken)
    monkeypatch.setattr(InFlightRequest, "sent", broken)
    with caplog.at_level(logging.WARNING, logger="llmobs"):
        sent = call(ASGIMiddleware(text_app(b"intact", chunks=2)), http_scope())
    assert [m.get("body") for m in sent] == [None, b"intact", b"intact"]
    assert sent[0]["status"] == 200
    assert "internal error in _before_send" in caplog.text


def test_a_deadline_firing_inside_llmobs_reaches_the_caller_and_fails_the_request(
    otlp: Callable[..., OTLPReceiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = otlp()
    with deadline() as fire, pytest.raises(Deadline):
        monkeypatch.setattr(InFlightRequest, "started", lambda *args: fire())  # in llmobs's bookkeeping
        call(ASGIMiddleware(text_app()), http_scope())
    [duration] = points(receiver)
    assert duration.attributes["error.type"] == "tests.middleware.deadline.Deadline"
    [span] = spans(receiver)
    assert span.events == [("exception", {"exception.type": "tests.middleware.deadline.Deadline"})]


def test_bad_options_fail_at_set_up_and_leave_the_app_to_a_corrected_call(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))])
    with pytest.raises(ConfigError, match="unknown middleware option 'skip_path'"):
        instrument_fastapi(app, skip_path=["/"])  # type: ignore[call-arg]
    instrument_fastapi(app, skip_paths=())
    call(app, http_scope("/health"))
    assert [p.count for p in points(receiver)] == [1]


def test_instrumenting_twice_records_once_and_shutdown_stops_recording(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))])
    assert instrument_fastapi(instrument_fastapi(app)) is app
    call(app, http_scope("/"))
    assert [p.count for p in points(receiver)] == [1]
    llmobs.shutdown()
    assert call(app, http_scope("/"))[1]["body"] == b"ok"  # served as before, recorded nowhere
