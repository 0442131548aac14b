"""The scrape endpoint in one process, through ``llmobs.init``: a real Prometheus reads exact values, the
scraper chooses the format, bad settings fail at init, and a hung scraper blocks nothing."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

import llmobs
from llmobs import _lifecycle
from tests.otlp_receiver import free_port
from tests.prometheus.server import needs_prometheus, prometheus

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


@dataclass
class Answer:
    status_code: int
    content_type: str
    text: str


def get(url: str, accept: str = "") -> Answer:
    """A GET with only the standard library (the core suite runs without httpx)."""
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Answer(response.status, response.headers["Content-Type"], response.read().decode())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers["Content-Type"], error.read().decode())


@llmobs.monitor_inference(model="a", operation="chat")
def predict(fail: bool = False) -> str:
    time.sleep(0.05)
    llmobs.current_inference().record_tokens(input=7, output=11)
    if fail:
        raise KeyError("x")
    return "ok"


def start(port: int, **options: object) -> str:
    llmobs.init("single", prometheus=f"127.0.0.1:{port}", gpu=False, host=False, **options)  # type: ignore[arg-type]
    return f"http://127.0.0.1:{port}/metrics"


@needs_prometheus
def test_prometheus_reads_exact_values_from_one_process(tmp_path: Path) -> None:
    port = free_port()
    start(port)
    for fail in [False] * 6 + [True] * 2:
        with contextlib.suppress(KeyError):
            predict(fail)
    with prometheus(tmp_path, [f"127.0.0.1:{port}"]) as prom:
        calls = 'gen_ai_server_request_duration_seconds_count{gen_ai_request_model="a",error_type=""}'
        prom.eventually(calls, lambda v: v == 6)
        assert prom.value('gen_ai_server_request_duration_seconds_count{error_type="KeyError"}') == 2
        assert prom.value('llmobs_inference_token_usage_sum{gen_ai_token_type="output"}') == 88
        assert prom.value("llmobs_inference_active_requests") == 0
        median = prom.value(
            'histogram_quantile(0.5, sum by (le) (gen_ai_server_request_duration_seconds_bucket{error_type=""}))'
        )
        assert median is not None and 0.04 < median <= 0.08  # the calls sleep 0.05 s
        info = prom.query("target_info")[0]["metric"]
        assert info["service_name"] == "single" and info["exported_job"] == "single"
        assert "process_pid" in info and "service_instance_id" not in info


def test_the_scraper_chooses_text_or_openmetrics() -> None:
    url = start(free_port())
    predict()
    text = get(url)
    assert text.content_type.startswith("text/plain; version=0.0.4")
    assert "# EOF" not in text.text and "gen_ai_server_request_duration_seconds_count{" in text.text
    openmetrics = get(url, OPENMETRICS)
    assert openmetrics.content_type.startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")
    assert "# UNIT gen_ai_server_request_duration_seconds seconds" in openmetrics.text
    assert get(url.replace("/metrics", "/other")).status_code == 404


def test_the_mounted_apps_serve_the_same_exposition() -> None:
    start(free_port())
    predict()
    body, content_type = _lifecycle.state.prometheus.scrape() if _lifecycle.state.prometheus else (b"", "")
    wsgi = llmobs.prometheus_wsgi_app()
    started: list[str] = []
    answer = b"".join(wsgi({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, lambda s, h, e=None: started.append(s)))  # type: ignore[arg-type]
    assert started == ["200 OK"] and answer.split(b"\n")[2:] == body.split(b"\n")[2:]

    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {"type": "http", "headers": [(b"accept", OPENMETRICS.encode())]}
    asyncio.run(llmobs.prometheus_asgi_app()(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 200 and b"openmetrics" in dict(sent[0]["headers"])[b"content-type"]  # type: ignore[call-overload]
    assert b"gen_ai_server_request_duration_seconds_bucket" in sent[1]["body"]  # type: ignore[operator]


def test_a_port_in_use_fails_at_init_with_the_fix() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(llmobs.ConfigError, match="OTEL_EXPORTER_PROMETHEUS_PORT"):
            start(port)
    assert _lifecycle.state.settings is None  # nothing half-started
    start(free_port())  # a corrected init works


@pytest.mark.parametrize(
    ("variable", "value"),
    [("OTEL_EXPORTER_PROMETHEUS_PORT", "0"), ("OTEL_EXPORTER_PROMETHEUS_PORT", "http"),
     ("OTEL_EXPORTER_PROMETHEUS_HOST", "a host"), ("OTEL_METRICS_EXPORTER", "prometheus,graphite")],
)  # fmt: skip
def test_bad_prometheus_variables_fail_at_init_even_when_unused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(llmobs.ConfigError, match=variable):
        llmobs.init("bad", gpu=False, host=False)


def test_the_variables_turn_the_endpoint_on(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "prometheus")
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1")
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", str(port))
    llmobs.init("from-env", gpu=False, host=False)
    predict()
    assert "llmobs_inference_token_usage_count" in get(f"http://127.0.0.1:{port}/metrics").text
    assert _lifecycle.state.settings is not None and not _lifecycle.state.settings.summary


def test_a_hung_scraper_blocks_neither_calls_nor_other_scrapes_nor_shutdown() -> None:
    url = start(free_port())
    port = int(url.split(":")[2].split("/")[0])
    hung = [socket.create_connection(("127.0.0.1", port)) for _ in range(6)]  # connect, never send
    try:
        predict()
        answers = []

        def scrape() -> None:
            answers.append(get(url).status_code)

        threads = [threading.Thread(target=scrape) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15)
        assert answers == [200, 200, 200]
        started = time.monotonic()
        assert llmobs.shutdown(timeout=3)
        assert time.monotonic() - started < 3
    finally:
        for connection in hung:
            connection.close()
