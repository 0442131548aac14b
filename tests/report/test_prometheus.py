"""``llmobs report --prometheus``: a real Prometheus (Debian's package) scraping two gunicorn workers'
merged endpoint; the report's counts equal the calls made, and the alert that fired is listed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

for _extra in ("httpx", "flask", "fastapi", "gunicorn", "matplotlib"):  # the core CI leg runs without them
    pytest.importorskip(_extra)

import httpx  # noqa: E402

from llmobs._report.prometheus import load_prometheus  # noqa: E402
from tests.middleware.servers import ROOT, serve  # noqa: E402
from tests.otlp_receiver import free_port  # noqa: E402
from tests.prometheus.server import needs_prometheus, prometheus  # noqa: E402

pytestmark = needs_prometheus

GUNICORN = ["gunicorn", "--workers", "2", "--bind", "127.0.0.1:{port}", "--log-level", "warning",
            "tests.prometheus.apps:flask_app"]  # fmt: skip
CALLS = 'sum(gen_ai_server_request_duration_seconds_count{gen_ai_request_model="m"})'
RULES = """groups:
  - name: report-test
    rules:
      - alert: InferenceErrors
        expr: sum(gen_ai_server_request_duration_seconds_count{error_type!=""}) > 0
"""


def test_a_report_from_prometheus_counts_what_was_served(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "rules.yml").write_text(RULES)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMOBS_")) and k != "XDG_RUNTIME_DIR"}
    env.update(
        PYTHONPATH=str(ROOT), TMPDIR=str(tmp_path), OTEL_METRICS_EXPORTER="prometheus", OTEL_TRACES_EXPORTER="none",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1", OTEL_EXPORTER_PROMETHEUS_PORT=str(port), LLMOBS_GPU="false",
        LLMOBS_HOST="false", LLMOBS_COLLECT_INTERVAL="200",
    )  # fmt: skip
    rules = f"rule_files: [{tmp_path / 'rules.yml'}]\n"
    with (
        prometheus(tmp_path, [f"127.0.0.1:{port}"], extra=rules) as prom,
        serve(GUNICORN, env, tmp_path / "gunicorn.log") as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        started = time.time()
        for n in [1, 2, 3, 4] * 5 + [0, 0]:
            assert client.get(f"/work/{n}").status_code == (500 if n == 0 else 200)
        prom.settled(
            {CALLS: 22, 'sum(http_server_request_duration_seconds_count{http_route="/work/<int:tokens>"})': 22}
        )
        prom.eventually('count(ALERTS{alertstate="firing"})', lambda v: v == 1)
        report = load_prometheus(prom.url, started - 30, time.time())
        cli = subprocess.run(
            [sys.executable, "-m", "llmobs._cli", "report", "--prometheus", prom.url, "--since", "5m",
             "--out", str(tmp_path / "report.html")],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    model = report.models["m"]
    assert (model.calls, model.errors, model.input_tokens, model.output_tokens) == (22, 2, 50, 100)
    assert dict(model.error_types) == {"ValueError": 2}
    assert report.routes["GET /work/<int:tokens>"].requests == 22
    assert report.routes["GET /work/<int:tokens>"].server_errors == 2
    latency = model.overall("latency").quantile(0.5)
    assert latency is not None and 0.02 <= latency <= 0.04  # the calls sleep 20 ms
    assert [a.name for a in report.alerts] == ["InferenceErrors"]
    assert cli.returncode == 0, cli.stderr
    row = next(line.split() for line in cli.stdout.splitlines() if line.strip().startswith("m "))
    assert row[1:3] == ["22", "9.1%"]
    assert "    InferenceErrors {} " in cli.stdout
