"""WSGIMiddleware and instrument_flask called in-process (Flask's test client, plain WSGI callables)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest
from flask import Flask, Response, abort, request
from opentelemetry import trace

import llmobs
from llmobs import ConfigError, _failsafe
from llmobs._middleware import WSGIMiddleware, instrument_flask
from llmobs._middleware.request import InFlightRequest
from llmobs._middleware.wsgi import ROUTE_KEY
from tests.middleware.deadline import Deadline, deadline
from tests.otlp_receiver import MetricPoint, OTLPReceiver, SpanRecord

WSGIApp = Callable[[dict[str, Any], Any], Any]
DURATION = "http.server.request.duration"


class Broken(Exception):
    """The app's own exception: it must come out as the very same object."""


class Body:
    """A response body that counts how often the server closed it."""

    def __init__(self, chunks: list[bytes], fail_after: int | None = None) -> None:
        self.chunks, self.fail_after, self.closed = chunks, fail_after, 0

    def __iter__(self) -> Iterator[bytes]:
        for i, chunk in enumerate(self.chunks):
            if i == self.fail_after:
                raise Broken("mid-stream")
            yield chunk

    def close(self) -> None:
        self.closed += 1


def plain_app(body: Any, status: str = "200 OK", route: str | None = None) -> WSGIApp:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if route is not None:
            environ[ROUTE_KEY] = route
        start_response(status, [("Content-Type", "text/plain")])
        return body

    return app


def environ(path: str = "/x", method: str = "GET", **headers: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "wsgi.url_scheme": "http",
        **{"HTTP_" + k.upper(): v for k, v in headers.items()},
    }


def serve(app: WSGIApp, env: dict[str, Any], read: int | None = None) -> tuple[str, list[bytes]]:
    """What a WSGI server does: call, iterate (all, or ``read`` chunks), close."""
    statuses: list[str] = []
    body = app(env, lambda status, headers, exc_info=None: statuses.append(status))
    chunks = []
    try:
        for chunk in body:
            chunks.append(chunk)
            if read is not None and len(chunks) == read:
                break
    finally:
        body.close()
    return statuses[-1], chunks


def points(receiver: OTLPReceiver, name: str = DURATION) -> list[MetricPoint]:
    assert llmobs.force_flush()
    return receiver.latest(name)


def spans(receiver: OTLPReceiver) -> list[SpanRecord]:
    assert llmobs.force_flush()
    return receiver.spans()


@pytest.fixture
def flask_app() -> Flask:
    app = Flask(__name__)
    app.logger.disabled = True  # Flask logs the 500s these tests cause on purpose

    @app.before_request
    def deny() -> None:
        if request.path == "/admin" and "Authorization" not in request.headers:
            abort(401)

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/admin")
    def admin() -> str:
        return "welcome"

    @app.get("/boom")
    def boom() -> NoReturn:
        raise Broken("in the view")

    @app.get("/stream")
    def stream() -> Response:
        @llmobs.monitor_inference(model="m", operation="stream")
        def tokens() -> Iterator[str]:
            yield from ("a", "b", "c")

        return Response(tokens())

    return instrument_flask(app)


def test_implausible_content_length_records_no_request_size(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    app = WSGIMiddleware(plain_app([b"ok"]))
    for length in ("9" * 400, "-5", str(2**53), " 7", "", "12"):
        serve(app, {**environ(method="POST"), "CONTENT_LENGTH": length})
    assert points(receiver)[0].count == 6
    [size] = receiver.latest("http.server.request.body.size")
    assert (size.count, sum(size.bucket_counts), size.sum) == (1, 1, 12)


def test_flask_routes_statuses_and_errors(otlp: Callable[..., OTLPReceiver], flask_app: Flask) -> None:
    receiver = otlp()
    client = flask_app.test_client()
    for path in ("/items/1", "/items/2", "/admin", "/nope", "/boom", "/health"):
        client.get(path, buffered=True)
    recorded = {
        (
            p.attributes.get("http.route"),
            p.attributes["http.response.status_code"],
            p.attributes.get("error.type"),
            p.count,
        )
        for p in points(receiver)
    }
    assert recorded == {
        ("/items/<int:item_id>", 200, None, 2),
        ("/admin", 401, None, 1),
        (None, 404, None, 1),
        ("/boom", 500, f"{__name__}.Broken", 1),
    }  # 401 from a before_request keeps its route
    [boom] = [x for x in spans(receiver) if x.name == "GET /boom"]
    assert (boom.status_code, boom.events) == (
        "STATUS_CODE_ERROR",
        [("exception", {"exception.type": f"{__name__}.Broken"})],
    )


def test_propagated_exception_is_the_same_object(otlp: Callable[..., OTLPReceiver], flask_app: Flask) -> None:
    receiver = otlp()
    flask_app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(Broken, match="in the view"):
        flask_app.test_client().get("/boom")
    error = Broken()
    with pytest.raises(Broken) as raised:
        serve(WSGIMiddleware(lambda env, start_response: (_ for _ in ()).throw(error)), environ())
    assert raised.value is error
    assert {p.attributes["error.type"] for p in points(receiver)} == {f"{__name__}.Broken"}


def test_body_closed_early_is_client_closed_and_closed_once(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    body = Body([b"aa", b"bb", b"cc"])
    status, chunks = serve(WSGIMiddleware(plain_app(body)), environ(), read=2)
    assert (status, chunks, body.closed) == ("200 OK", [b"aa", b"bb"], 1)
    [duration] = points(receiver)
    assert duration.attributes["llmobs.end_reason"] == "client_closed"
    # A chunk counts once the server asks for the next: "bb" was being written when the client left.
    assert receiver.latest("http.server.response.body.size")[0].sum == 2


def test_body_closed_before_any_chunk_still_ends_and_closes(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    inner = Body([b"aa"])
    app: WSGIApp = WSGIMiddleware(plain_app(inner))
    app(environ(), lambda *args: None).close()
    assert inner.closed == 1
    assert points(receiver)[0].attributes["llmobs.end_reason"] == "client_closed"
    assert [p.value for p in receiver.latest("http.server.active_requests")] == [0]


def test_body_read_to_the_end_is_recorded_once_with_sizes(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    body = Body([b"aa", b"", b"cccc"])
    env = environ(method="POST")
    env["CONTENT_LENGTH"] = "7"
    assert serve(WSGIMiddleware(plain_app(body, route="/things/{id}")), env) == ("200 OK", [b"aa", b"", b"cccc"])
    assert body.closed == 1
    [duration] = points(receiver)
    assert duration.count == 1 and duration.attributes["http.route"] == "/things/{id}"
    assert "llmobs.end_reason" not in duration.attributes
    assert receiver.latest("http.server.response.body.size")[0].sum == 6
    assert receiver.latest("http.server.request.body.size")[0].sum == 7
    [first_byte] = receiver.latest("llmobs.http.server.time_to_first_byte")
    assert first_byte.sum is not None and duration.sum is not None and 0 < first_byte.sum <= duration.sum


def test_exception_mid_body_is_reraised_and_recorded(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    body = Body([b"aa", b"bb"], fail_after=1)
    with pytest.raises(Broken, match="mid-stream"):
        serve(WSGIMiddleware(plain_app(body)), environ())
    assert body.closed == 1
    [duration] = points(receiver)
    assert (duration.attributes["http.response.status_code"], duration.attributes["error.type"]) == (
        200,
        f"{__name__}.Broken",
    )


def test_streamed_body_spans_nest_under_the_server_span(otlp: Callable[..., OTLPReceiver], flask_app: Flask) -> None:
    receiver = otlp()
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert flask_app.test_client().get("/stream", headers={"traceparent": parent}, buffered=True).data == b"abc"
    found = spans(receiver)
    [server] = [x for x in found if x.kind == "SPAN_KIND_SERVER"]
    [inference] = [x for x in found if x.kind == "SPAN_KIND_INTERNAL"]
    assert (server.name, server.parent_span_id) == ("GET /stream", "b7ad6b7169203331")
    assert inference.parent_span_id == server.span_id and inference.trace_id == server.trace_id


def test_only_allow_listed_headers_reach_the_span(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    app = WSGIMiddleware(plain_app([b"ok"]), request_headers=["x-request-id"], response_headers=["Content-Type"])
    serve(app, environ(X_REQUEST_ID="r-1", AUTHORIZATION="Bearer secret", COOKIE="s=secret"))
    [span] = spans(receiver)
    assert {k: v for k, v in span.attributes.items() if ".header." in k} == {
        "http.request.header.x-request-id": ["r-1"],
        "http.response.header.content-type": ["text/plain"],
    }


def test_default_skip_paths_pass_straight_through(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    body = [b"ok"]
    app: WSGIApp = WSGIMiddleware(plain_app(body))
    assert app(environ("/metrics"), lambda *args: None) is body
    assert points(receiver) == [] and receiver.spans() == []


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
        assert serve(WSGIMiddleware(plain_app([b"in", b"tact"])), environ()) == ("200 OK", [b"in", b"tact"])
    assert "internal error in _response_started" in caplog.text and "internal error in _Body.__next__" in caplog.text


def test_a_deadline_firing_inside_llmobs_reaches_the_caller_and_resets_the_context(
    otlp: Callable[..., OTLPReceiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = otlp()
    with deadline() as fire, pytest.raises(Deadline):
        monkeypatch.setattr(InFlightRequest, "started", lambda *args: fire())  # in llmobs's bookkeeping
        serve(WSGIMiddleware(plain_app([b"ok"])), environ())
    assert not trace.get_current_span().get_span_context().is_valid  # the server span is no longer current
    assert points(receiver)[0].attributes["error.type"] == "tests.middleware.deadline.Deadline"


def test_bad_options_fail_at_set_up_and_leave_the_app_to_a_corrected_call(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    app = Flask(__name__)
    app.get("/health")(lambda: "ok")
    with pytest.raises(ConfigError, match="request_headers must be a list"):
        instrument_flask(app, request_headers="x-request-id")
    instrument_flask(app, skip_paths=())
    app.test_client().get("/health", buffered=True)
    assert [p.count for p in points(receiver)] == [1]


def test_instrumenting_twice_records_once(otlp: Callable[..., OTLPReceiver], flask_app: Flask) -> None:
    receiver = otlp()
    assert instrument_flask(flask_app) is flask_app
    flask_app.test_client().get("/items/3", buffered=True)
    assert [p.count for p in points(receiver)] == [1]
