"""Error, security and access records from real servers: uvicorn serving FastAPI and gunicorn serving
Flask with two pre-fork workers, exporting logs over OTLP to the tests' receiver and ECS lines to a
file, driven concurrently over loopback with canaries in every private place."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections import Counter
from pathlib import Path

import httpx
import pytest

import llmobs
from llmobs import _security
from llmobs import semconv as names
from llmobs._config import ConfigError
from tests.logs.apps import CANARY, PRINCIPAL_KEY
from tests.middleware.servers import otlp_env, serve
from tests.middleware.telemetry import final
from tests.otlp_receiver import LogRecord, OTLPReceiver

UVICORN = ["uvicorn", "tests.logs.asgi_app:app", "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning"]
GUNICORN = ["gunicorn", "--workers", "2", "--preload", "--bind", "127.0.0.1:{port}", "--log-level", "warning"]
GUNICORN += ["tests.logs.wsgi_app:app"]
EACH = 10  # requests of each kind
SCAN = 200  # unknown paths probed
SECRET_HEADERS = {"authorization": f"Bearer {CANARY}", "cookie": f"session={CANARY}"}


async def _traffic(url: str) -> None:
    """All kinds at once, concurrently: failed calls, 401/403/429/413, a scan of unknown paths."""
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=0)  # a fresh connection per request
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        sends = [client.post("/boom?token=" + CANARY, content=CANARY, headers={"x-user": "alice"}) for _ in range(EACH)]
        sends += [client.get("/admin", headers={"x-user": "mallory", "cookie": CANARY}) for _ in range(EACH)]
        sends += [client.get("/admin", headers=SECRET_HEADERS) for _ in range(EACH)]
        sends += [client.get("/limited") for _ in range(EACH)]
        sends += [client.post("/upload", content=CANARY * 10) for _ in range(EACH)]
        sends += [client.get("/ok", headers={"x-user": "alice"}) for _ in range(EACH)]
        long = "x" * 300
        sends += [client.get(f"/scan/{i}/é%01{long}?q={CANARY}", headers=SECRET_HEADERS) for i in range(SCAN)]
        answers = await asyncio.gather(*sends)
    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == {500: EACH, 401: EACH, 403: EACH, 429: EACH, 413: EACH, 200: EACH, 404: SCAN}


def _by_event(receiver: OTLPReceiver) -> dict[str, list[LogRecord]]:
    found: dict[str, list[LogRecord]] = {}
    for record in receiver.logs():
        found.setdefault(record.event_name, []).append(record)
    return found


@pytest.mark.parametrize(("server", "argv"), [("uvicorn", UVICORN), ("gunicorn", GUNICORN)])
def test_errors_security_events_and_access_records(server: str, argv: list[str], tmp_path: Path) -> None:
    ecs_file = tmp_path / "llmobs.json"
    with OTLPReceiver() as receiver:
        env = otlp_env(receiver, "grpc")
        env.update(OTEL_EXPORTER_OTLP_HEADERS=f"x-api-key={CANARY}", LLMOBS_ECS_LOG=str(ecs_file))
        with serve(argv, env, tmp_path / "server.log") as running:
            asyncio.run(_traffic(running.url))
        records = _by_event(receiver)
        _check_errors(records, receiver)
        _check_security(records, receiver)
        _check_access(records)
        assert len(records[names.INVENTORY_EVENT]) == 1  # the pre-fork parent's, not one per worker
        for request in receiver.requests:
            if request.signal == "logs":
                assert CANARY.encode() not in request.message.SerializeToString()
    _check_ecs(ecs_file.read_text(), records)


def _check_errors(records: dict[str, list[LogRecord]], receiver: OTLPReceiver) -> None:
    spans = {span.span_id: span for span in receiver.spans()}
    failures = records[names.INFERENCE_FAILURE_EVENT]
    assert len(failures) == EACH
    for record in failures:
        span = spans[record.span_id]
        assert (span.trace_id, span.name, span.status_code) == (record.trace_id, "chat test-model", "STATUS_CODE_ERROR")
        assert record.severity_number == "SEVERITY_NUMBER_ERROR"
        assert record.attributes[names.ERROR_TYPE] == "ValueError"
        assert record.attributes[names.MODEL] == "test-model"
        assert record.attributes[names.EVENT_DURATION] > 0
        assert names.EXCEPTION_MESSAGE not in record.attributes
    served = records[names.HTTP_ERROR_EVENT]
    assert len(served) == EACH
    for record in served:
        span = spans[record.span_id]
        assert (span.kind, span.trace_id) == ("SPAN_KIND_SERVER", record.trace_id)
        assert record.attributes[names.HTTP_ROUTE] == "/boom" and record.attributes[names.HTTP_STATUS_CODE] == 500
    # Each failed call's record sits in the trace of its request's 5xx record.
    assert {r.trace_id for r in failures} == {r.trace_id for r in served}


def _check_security(records: dict[str, list[LogRecord]], receiver: OTLPReceiver) -> None:
    events = records[names.SECURITY_EVENT_NAME]
    kinds = Counter(record.attributes[names.SECURITY_EVENT] for record in events)
    assert kinds == {
        names.AUTHENTICATION_FAILURE: EACH,
        names.AUTHORIZATION_FAILURE: EACH,
        names.RATE_LIMITED: EACH,
        names.PAYLOAD_TOO_LARGE: EACH,
        names.PROBE: SCAN,
    }
    probes = [record for record in events if record.attributes[names.SECURITY_EVENT] == names.PROBE]
    paths = {record.attributes[names.URL_PATH] for record in probes}
    assert len(paths) == SCAN and all(len(path) == 256 and "?" not in path for path in paths)
    assert all(path.isascii() and "\x01" not in path for path in paths)
    assert any(path.startswith("/scan/7/\\x") and "\\x01xxx" in path for path in paths)  # é escaped as text or bytes
    assert all(names.HTTP_ROUTE not in record.attributes for record in probes)
    assert {record.attributes[names.EVENT_CATEGORY] for record in probes} == {"intrusion_detection"}
    assert {record.attributes[names.EVENT_OUTCOME] for record in events} == {"failure"}
    assert {record.attributes[names.CLIENT_ADDRESS] for record in events} == {"127.0.0.1"}
    points = final(receiver, names.SECURITY_EVENTS.name)
    by_kind: Counter[str] = Counter()
    for point in points:
        by_kind[point.attributes[names.SECURITY_EVENT]] += int(point.value or 0)
    assert by_kind == kinds
    probe_series = {
        tuple(sorted(p.attributes.items())) for p in points if p.attributes[names.SECURITY_EVENT] == "probe"
    }
    assert probe_series == {
        ((names.HTTP_METHOD, "GET"), (names.HTTP_ROUTE, "_unmatched"), (names.SECURITY_EVENT, "probe"))
    }


def _check_access(records: dict[str, list[LogRecord]]) -> None:
    access = records[names.ACCESS_EVENT]
    assert len(access) == 6 * EACH + SCAN  # every request of a middleware with a principal
    alice = hmac.new(PRINCIPAL_KEY.encode(), b"alice", hashlib.sha256).hexdigest()[:32]
    mallory = hmac.new(PRINCIPAL_KEY.encode(), b"mallory", hashlib.sha256).hexdigest()[:32]
    who = Counter(record.attributes.get(names.ENDUSER_PSEUDO_ID) for record in access)
    assert who == {alice: 2 * EACH, mallory: EACH, None: 3 * EACH + SCAN}
    ok = [r for r in access if r.attributes.get(names.HTTP_ROUTE) == "/ok"]
    assert len(ok) == EACH and {r.attributes[names.EVENT_OUTCOME] for r in ok} == {"success"}
    assert not any("alice" in str(r) or "mallory" in str(r) for r in access)


def _check_ecs(text: str, records: dict[str, list[LogRecord]]) -> None:
    assert CANARY not in text and "alice" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == sum(len(found) for found in records.values())
    assert all({"@timestamp", "log.level", "message", "ecs.version"} <= set(line) for line in lines)
    errors = [line for line in lines if line.get("event", {}).get("name") == names.INFERENCE_FAILURE_EVENT]
    assert {(e["trace"]["id"], e["span"]["id"]) for e in errors} == {
        (r.trace_id, r.span_id) for r in records[names.INFERENCE_FAILURE_EVENT]
    }
    assert {e["log.level"] for e in errors} == {"error"} and {e["error"]["type"] for e in errors} == {"ValueError"}
    probes = [line for line in lines if line.get("llmobs", {}).get("security", {}).get("event") == "probe"]
    assert len(probes) == SCAN and {p["event"]["category"] for p in probes} == {"intrusion_detection"}


def test_kinds_paths_and_pseudonyms() -> None:
    assert [_security.kind_of(status, "/r") for status in (401, 403, 429, 413, 404, 500)] == [
        names.AUTHENTICATION_FAILURE,
        names.AUTHORIZATION_FAILURE,
        names.RATE_LIMITED,
        names.PAYLOAD_TOO_LARGE,
        None,  # a route answered 404 itself: not a probe
        None,
    ]
    assert _security.kind_of(404, None) == names.PROBE
    assert _security.sanitized("/a\r\nb/é?token=x") == "/a\\x0d\\x0ab/\\xe9"
    assert len(_security.sanitized("/" + "x" * 1000)) == 256
    llmobs.init(service_name="t", principal_key=PRINCIPAL_KEY, gpu=False, host=False)
    first, again = _security.pseudonym("alice"), _security.pseudonym("alice")
    assert first == again == hmac.new(PRINCIPAL_KEY.encode(), b"alice", hashlib.sha256).hexdigest()[:32]
    assert _security.pseudonym("bob") != first and _security.pseudonym("") is None


def test_without_a_key_no_principal_is_recorded(caplog: pytest.LogCaptureFixture) -> None:
    llmobs.init(service_name="t", gpu=False, host=False)
    assert _security.pseudonym("alice") is None
    assert "LLMOBS_PRINCIPAL_KEY" in caplog.text and "alice" not in caplog.text


@pytest.mark.parametrize(
    ("keywords", "message"),
    [({"principal": "user"}, "principal must be a function"), ({"client_address": "yes"}, "client_address must be")],
)
def test_bad_audit_options_fail_at_set_up(keywords: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        llmobs.WSGIMiddleware(lambda environ, start: [], **keywords)  # type: ignore[arg-type]
