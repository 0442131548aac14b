"""A real Prometheus scraping real pre-fork servers: gunicorn with 3 workers (with and without
--preload) and uvicorn with 2. One endpoint serves the exact merge of every worker, also after one is
killed with SIGKILL: no counter goes backwards, and the GPU readings of the stand-in NVML are there."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import nvml_stub
from tests.middleware.servers import ROOT, Server, serve
from tests.otlp_receiver import free_port
from tests.prometheus.server import Prometheus, needs_prometheus, needs_promtool, prometheus, promtool_check

pytestmark = needs_prometheus

GUNICORN = ["gunicorn", "--workers", "3", "--bind", "127.0.0.1:{port}", "--graceful-timeout", "5",
            "--log-level", "warning", "tests.prometheus.apps:flask_app"]  # fmt: skip
UVICORN = ["uvicorn", "tests.prometheus.apps:fastapi_app", "--workers", "2", "--host", "127.0.0.1",
           "--port", "{port}", "--log-level", "warning"]  # fmt: skip
CALLS = 'sum(gen_ai_server_request_duration_seconds_count{gen_ai_request_model="m",error_type=""})'
ERRORS = 'sum(gen_ai_server_request_duration_seconds_count{gen_ai_request_model="m",error_type="ValueError"})'
ROUTE = 'sum(http_server_request_duration_seconds_count{http_route="%s"})'
INPUT = 'sum(llmobs_inference_token_usage_sum{gen_ai_token_type="input"})'
RESETS = (
    "sum(resets(gen_ai_server_request_duration_seconds_count[5m])) + sum(resets(llmobs_inference_token_usage_sum[5m]))"
)


@pytest.fixture(scope="module")
def nvml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return nvml_stub.build(tmp_path_factory.mktemp("nvml"))


def environment(tmp_path: Path, port: int, nvml: Path) -> dict[str, str]:
    """A server of service prometheus-test with its scrape endpoint on ``port`` and one stand-in H100."""
    config = tmp_path / "nvml.conf"
    nvml_stub.configure(config, [nvml_stub.H100])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMOBS_")) and k != "XDG_RUNTIME_DIR"}
    env.update(
        PYTHONPATH=str(ROOT),
        TMPDIR=str(tmp_path),  # this "host"'s private runtime directory
        OTEL_METRICS_EXPORTER="prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(port),
        OTEL_TRACES_EXPORTER="none",
        LLMOBS_COLLECT_INTERVAL="200",
        LLMOBS_HOST="false",
        LD_LIBRARY_PATH=str(nvml),
        NVML_STUB_CONFIG=str(config),
    )
    return env


def work(server: Server, tokens: list[int]) -> set[int]:
    """One request per entry (0 fails with ValueError); the worker pids that answered. A connection per
    request: uvicorn closes one after an app's exception, and a request sent on it before the close
    arrived is reset."""
    pids = set()
    with httpx.Client(base_url=server.url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        for n in tokens:
            response = client.get(f"/work/{n}")
            assert response.status_code == (500 if n == 0 else 200), response.text
            if n:
                pids.add(response.json()["pid"])
    return pids


@pytest.fixture
def endpoint(tmp_path: Path, nvml: Path) -> Iterator[tuple[int, dict[str, str], Prometheus]]:
    port = free_port()
    with prometheus(tmp_path, [f"127.0.0.1:{port}"]) as prom:
        yield port, environment(tmp_path, port, nvml), prom


@pytest.mark.parametrize("preload", [False, True], ids=["no-preload", "preload"])
def test_gunicorn_workers_merge_exactly_and_a_killed_worker_takes_nothing_back(
    endpoint: tuple[int, dict[str, str], Prometheus], tmp_path: Path, preload: bool
) -> None:
    port, env, prom = endpoint
    argv = GUNICORN[:1] + (["--preload"] if preload else []) + GUNICORN[1:]
    with serve(argv, env, tmp_path / "gunicorn.log") as server:
        first = [1, 2, 3, 4] * 10
        pids = work(server, first + [0, 0, 0])
        assert len(pids) >= 2, pids  # more than one worker answered
        # The failed calls recorded 0 tokens before raising.
        prom.settled({CALLS: 40, ERRORS: 3, INPUT: sum(first), ROUTE % "/work/<int:tokens>": 43})

        victim = serving_worker(server) if not preload else next(iter(pids))  # --preload: the master serves
        time.sleep(0.6)  # its snapshot of the calls above is handed over (every 0.2 s)
        os.kill(victim, signal.SIGKILL)
        second = [5] * 10
        work(server, second)
        # The GPU is read by the worker holding the host lock, which the killed one may have been.
        prom.settled({CALLS: 50, INPUT: sum(first) + sum(second), 'hw_power_watts{hw_name="gpu0"}': 245}, timeout=30)
        assert prom.value(RESETS) == 0  # no scrape ever saw a counter go backwards
        quantile = prom.value(
            'histogram_quantile(0.5, sum by (le) (gen_ai_server_request_duration_seconds_bucket{error_type=""}))'
        )
        assert quantile is not None and 0.02 < quantile <= 0.04  # the calls sleep 0.02 s
        info = prom.query("target_info")
        assert len(info) == 1 and info[0]["metric"]["service_name"] == "prometheus-test"
        assert info[0]["metric"]["exported_job"] == "prometheus-test"
    assert left_on_disk(tmp_path) == []


def left_on_disk(tmp_path: Path) -> list[str]:
    """What the stopped server left in this host's runtime directory for Prometheus."""
    runtime = tmp_path / f"llmobs-{os.geteuid()}"
    return sorted(p.name for p in runtime.glob("prometheus-*")) if runtime.exists() else []


def serving_worker(server: Server) -> int:
    """The pid of the worker that holds the scrape port (asked until that worker answers)."""
    with httpx.Client(base_url=server.url, timeout=5) as client:
        for _ in range(200):
            answer = client.get("/whoami").json()
            if answer["serving"]:
                return int(answer["pid"])
    raise AssertionError("no worker says it serves the scrape endpoint")


def test_uvicorn_workers_are_merged_exactly_and_a_restart_starts_from_zero(
    endpoint: tuple[int, dict[str, str], Prometheus], tmp_path: Path
) -> None:
    port, env, prom = endpoint
    with serve(UVICORN, env, tmp_path / "uvicorn.log") as server:
        work(server, [3] * 24 + [0, 0])
        prom.settled({CALLS: 24, ERRORS: 2, INPUT: 72, ROUTE % "/work/{tokens}": 26})
        assert prom.value("up") == 1
    # uvicorn ends its workers by re-raising SIGTERM, which skips every exit hook: what they left is
    # cleared by the next run's first worker, never merged into it.
    with serve(UVICORN, env, tmp_path / "uvicorn-again.log") as server:
        work(server, [1] * 5)
        seen = scraped_counts(port, until=5.0)
        assert seen and seen[-1] == 5.0 and max(seen) == 5.0, seen


def scraped_counts(port: int, until: float, timeout: float = 20.0) -> list[float]:
    """The call count on the endpoint, scraped until it reaches ``until``: the other worker's calls show
    up at its next interval's publish, and an old run's calls would show as more than ``until``."""
    seen: list[float] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (not seen or seen[-1] < until):
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        seen += [float(line.rsplit(" ", 1)[1]) for line in body.splitlines() if line.startswith(COUNT_LINE)]
        time.sleep(0.2)
    return seen


COUNT_LINE = (
    'gen_ai_server_request_duration_seconds_count{gen_ai_operation_name="chat",'
    'gen_ai_provider_name="llmobs",gen_ai_request_model="m",'
)


@needs_promtool
def test_the_exposition_passes_promtool(endpoint: tuple[int, dict[str, str], Prometheus], tmp_path: Path) -> None:
    port, env, _ = endpoint
    with serve(GUNICORN, env, tmp_path / "gunicorn.log") as server:
        work(server, [1, 2, 0])
        # Workers other than the serving one hand their calls over at their next interval: wait for them.
        assert scraped_counts(port, until=2.0)[-1] == 2.0
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).content
        assert b"gen_ai_server_request_duration_seconds_bucket" in body
        checked = promtool_check(body)
        assert checked.returncode == 0, checked.stdout + checked.stderr
