"""Real servers: uvicorn serving a FastAPI app and gunicorn serving a Flask app with two pre-fork
workers, driven over loopback by httpx; what they export is decoded by the tests' OTLP receiver."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.middleware import scenario as s
from tests.middleware.servers import Server, otlp_env, serve
from tests.middleware.telemetry import count, final, total
from tests.middleware.traffic import Sent, drive
from tests.otlp_receiver import OTLPReceiver, SpanRecord

UVICORN = [
    "uvicorn",
    "tests.middleware.fastapi_app:app",
    "--host",
    "127.0.0.1",
    "--port",
    "{port}",
    "--log-level",
    "warning",
]
GUNICORN = [
    "gunicorn",
    "--workers",
    "2",
    "--preload",
    "--bind",
    "127.0.0.1:{port}",
    "--graceful-timeout",
    "5",
    "--log-level",
    "warning",
    "tests.middleware.flask_app:app",
]
ROUTES = {
    "slow": "/slow",
    "boom": "/boom",
    "admin": "/admin",
    "limited": "/limited",
    "stream": "/stream",
    "long": "/stream/long",
    "generate": "/generate",
}
DURATION = "http.server.request.duration"
SERVER, INTERNAL = "SPAN_KIND_SERVER", "SPAN_KIND_INTERNAL"


@dataclass
class Run:
    """One server's life: the traffic it got and what it exported."""

    receiver: OTLPReceiver
    server: Server
    sent: Sent
    routes: dict[str, str]


def _run(argv: list[str], protocol: str, log: Path, item_route: str) -> Iterator[Run]:
    with OTLPReceiver() as receiver:
        with serve(argv, otlp_env(receiver, protocol), log) as server:
            sent = asyncio.run(drive(server.url))
        yield Run(receiver, server, sent, {**ROUTES, "item": item_route})


@pytest.fixture(scope="module")
def uvicorn_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    yield from _run(UVICORN, "grpc", tmp_path_factory.mktemp("uvicorn") / "log", "/items/{item_id}")


@pytest.fixture(scope="module")
def gunicorn_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    yield from _run(GUNICORN, "http/protobuf", tmp_path_factory.mktemp("gunicorn") / "log", "/items/<int:item_id>")


@pytest.fixture(params=["uvicorn_run", "gunicorn_run"])
def run(request: pytest.FixtureRequest) -> Run:
    result: Run = request.getfixturevalue(request.param)
    return result


def _by_route_and_status(run: Run) -> Counter[tuple[str | None, int]]:
    counts: Counter[tuple[str | None, int]] = Counter()
    for point in final(run.receiver, DURATION):
        counts[point.attributes.get("http.route"), point.attributes["http.response.status_code"]] += point.count or 0
    return counts


def test_counts_per_route_and_status_are_exact(run: Run) -> None:
    r = run.routes
    expected = {
        (r["item"], 200): s.CONCURRENT,
        (r["slow"], 200): s.SLOW_CALLS,
        (r["boom"], 500): s.BOOM_CALLS,
        (None, 404): s.MISSING_CALLS,
        (r["admin"], 401): s.UNAUTHORIZED_CALLS,
        (r["admin"], 403): s.FORBIDDEN_CALLS,
        (r["limited"], 429): s.LIMITED_CALLS,
        (r["stream"], 200): 1,
        (r["generate"], 200): 1,
        (r["long"], 200): 1,
    }
    assert _by_route_and_status(run) == expected  # health checks and /metrics are not among them
    assert run.sent.statuses["item", 200] == s.CONCURRENT  # the lifespan ran: /items reads what it set
    assert run.sent.statuses["skipped", 200] == len(s.SKIPPED_PATHS) * s.SKIPPED_CALLS


def test_access_denials_countable_per_route_without_client_identity(run: Run) -> None:
    denied = {key: n for key, n in _by_route_and_status(run).items() if key[1] in (401, 403, 429)}
    assert denied == {
        (run.routes["admin"], 401): s.UNAUTHORIZED_CALLS,
        (run.routes["admin"], 403): s.FORBIDDEN_CALLS,
        (run.routes["limited"], 429): s.LIMITED_CALLS,
    }
    keys = {
        key
        for p in final(run.receiver, DURATION)
        if p.attributes["http.response.status_code"] in (401, 403, 429)
        for key in p.attributes
    }
    assert keys == {"http.request.method", "http.route", "http.response.status_code", "url.scheme"}


def test_durations_match_the_known_sleeps(run: Run) -> None:
    slow = total(run.receiver, DURATION, {"http.route": run.routes["slow"]})
    assert slow.count == s.SLOW_CALLS and slow.min >= s.SLOW_SECONDS
    assert s.SLOW_CALLS * s.SLOW_SECONDS <= slow.sum <= run.sent.seconds["slow, until the next response"]


def test_stream_is_timed_to_its_last_byte_with_time_to_first_byte(run: Run) -> None:
    route = {"http.route": run.routes["stream"]}
    [duration] = final(run.receiver, DURATION, route)
    [first_byte] = final(run.receiver, "llmobs.http.server.time_to_first_byte", route)
    [size] = final(run.receiver, "http.server.response.body.size", route)
    streamed = s.STREAM_TOKENS * s.TOKEN_SECONDS  # the handler itself returns at once
    # At most what the client timed: until the server answered its next request (the stream's end
    # is timed after its last send returns), and to the second chunk it read (the first byte is timed
    # after its send returns too, which a loaded machine can run after the client read it; a first
    # byte timed at the stream's end would exceed the second chunk by the 3 tokens after it).
    assert duration.sum is not None and streamed <= duration.sum <= run.sent.seconds["stream, until the next response"]
    assert first_byte.sum is not None and s.TOKEN_SECONDS <= first_byte.sum <= run.sent.stream_second_chunk
    assert run.sent.stream_first_chunk < run.sent.seconds["stream"] - 3 * s.TOKEN_SECONDS
    assert size.sum == len(run.sent.stream_body) == len(b"".join(b"token%d " % i for i in range(s.STREAM_TOKENS)))


def test_client_leaving_mid_stream_is_recorded_when_it_leaves(run: Run) -> None:
    [left] = final(run.receiver, DURATION, {"http.route": run.routes["long"]})
    assert left.attributes["llmobs.end_reason"] == "client_closed" and left.count == 1
    assert left.sum is not None and 2 * s.TOKEN_SECONDS <= left.sum < 2.0  # the full stream would take 12 s
    [size] = final(run.receiver, "http.server.response.body.size", {"http.route": run.routes["long"]})
    assert size.sum is not None and size.sum >= len(run.sent.disconnected_after)


def test_app_exception_recorded_and_framework_still_answers_500(run: Run) -> None:
    assert run.sent.statuses["boom", 500] == s.BOOM_CALLS
    boom = total(run.receiver, DURATION, {"http.route": run.routes["boom"]})
    assert boom.count == s.BOOM_CALLS and {a["error.type"] for a in boom.attributes} == {"RuntimeError"}
    spans = [x for x in run.receiver.spans() if x.attributes.get("http.route") == run.routes["boom"]]
    assert len(spans) == s.BOOM_CALLS
    assert {x.status_code for x in spans} == {"STATUS_CODE_ERROR"}
    assert [x.events for x in spans] == [[("exception", {"exception.type": "RuntimeError"})]] * s.BOOM_CALLS


def test_active_requests_back_to_zero(run: Run) -> None:
    active = final(run.receiver, "http.server.active_requests")
    assert active and all(p.value == 0 for p in active)


def test_one_server_span_per_request_continuing_the_callers_trace(run: Run) -> None:
    servers = [x for x in run.receiver.spans() if x.kind == SERVER]
    recorded = sum(n for (kind, _), n in run.sent.statuses.items() if kind != "skipped") + 1  # + the stream left
    assert len(servers) == recorded
    by_trace = {x.trace_id: x for x in servers}
    for trace_id, parent in run.sent.parents.items():
        assert by_trace[trace_id].parent_span_id == parent
    items = [x for x in servers if x.attributes.get("http.route") == run.routes["item"]]
    assert len(items) == s.CONCURRENT and {x.name for x in items} == {f"GET {run.routes['item']}"}
    assert {x.trace_id for x in items} <= set(run.sent.parents)


def _children(run: Run, trace: int) -> tuple[SpanRecord, list[SpanRecord]]:
    spans = [x for x in run.receiver.spans() if x.trace_id == f"{trace:032x}"]
    [server] = [x for x in spans if x.kind == SERVER]
    return server, [x for x in spans if x.kind == INTERNAL]


@pytest.mark.parametrize(("trace", "name"), [(100_002, "chat test-model"), (100_001, "stream test-model")])
def test_inference_spans_nest_under_the_server_span(run: Run, trace: int, name: str) -> None:
    server, [inference] = _children(run, trace)
    assert inference.name == name and inference.parent_span_id == server.span_id
    assert server.start_time_unix_nano <= inference.start_time_unix_nano
    assert inference.end_time_unix_nano <= server.end_time_unix_nano


def test_no_query_body_or_secret_header_is_exported(run: Run) -> None:
    assert count(run.receiver, {"http.route": "/generate"}) == 1  # the canary request was recorded
    exported = [r.message.SerializeToString() for r in run.receiver.requests]
    assert exported and not [m for m in exported if s.CANARY.encode() in m]


def test_skip_paths_are_not_recorded(run: Run) -> None:
    paths = {x.attributes.get("url.path") for x in run.receiver.spans()}
    assert not paths & set(s.SKIPPED_PATHS)
    assert not {p.attributes.get("http.route") for p in run.receiver.metrics()} & set(s.SKIPPED_PATHS)


def test_stops_promptly(run: Run) -> None:
    assert run.server.stopped_in < 10


def test_each_gunicorn_worker_exports_as_its_own_instance(gunicorn_run: Run) -> None:
    assert len(gunicorn_run.sent.pids) == 2  # both workers answered
    points = final(gunicorn_run.receiver, DURATION, {"http.route": gunicorn_run.routes["item"]})
    assert len({p.resource["service.instance.id"] for p in points}) == 2
    assert sum(p.count or 0 for p in points) == s.CONCURRENT
    spans = {x.resource["service.instance.id"] for x in gunicorn_run.receiver.spans() if x.kind == SERVER}
    assert spans == {p.resource["service.instance.id"] for p in points}


@pytest.mark.parametrize(
    ("argv", "route", "grpc_env"),
    [
        (UVICORN, "/items/{item_id}", {}),  # uvicorn ends with SIGTERM itself: atexit never runs
        # gRPC channels across the fork of a preloaded app, configured as docs/middleware.md advises.
        (GUNICORN, "/items/<int:item_id>", {"GRPC_ENABLE_FORK_SUPPORT": "true", "GRPC_POLL_STRATEGY": "poll"}),
    ],
)
def test_everything_is_flushed_at_shutdown_over_grpc(
    argv: list[str], route: str, grpc_env: dict[str, str], tmp_path: Path
) -> None:
    with OTLPReceiver() as receiver:
        # With a one-minute interval, only the export at shutdown can deliver these requests.
        env = {**otlp_env(receiver, "grpc", interval_ms=60_000), **grpc_env}
        with serve(argv, env, tmp_path / "log") as server:
            pids = {httpx.get(f"{server.url}/items/{n}", timeout=10).json().get("pid") for n in range(40)}
        points = final(receiver, DURATION, {"http.route": route})
        spans = [x for x in receiver.spans() if x.kind == SERVER]
    assert sum(p.count or 0 for p in points) == len(spans) == 40
    assert len({p.resource["service.instance.id"] for p in points}) == len(pids)
    assert server.stopped_in < 10
