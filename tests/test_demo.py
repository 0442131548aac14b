"""``llmobs demo``: the summary on stderr, and the same data over OTLP when an endpoint is set."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

from tests.otlp_receiver import OTLPReceiver


def test_demo_prints_the_summary_and_exports(receiver: OTLPReceiver, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMOBS_"))}
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.http_endpoint, OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf")
    env.update(XDG_DATA_HOME=str(tmp_path / "data"))
    result = subprocess.run(
        [sys.executable, "-m", "llmobs._cli", "demo", "--duration", "2", "--interval", "1", "--concurrency", "4"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "llmobs demo:" in result.stdout
    rows = [line.split() for line in result.stderr.splitlines() if line.strip().startswith("demo-llm-8b")]
    assert rows and all(int(row[1]) > 0 for row in rows), result.stderr
    assert "Traceback" not in result.stderr
    durations = [
        p
        for p in receiver.metrics()
        if p.name == "gen_ai.server.request.duration" and p.attributes.get("gen_ai.request.model") == "demo-llm-8b"
    ]
    assert durations and durations[-1].resource["service.name"] == "llmobs-demo"
    exported_calls = sum(
        p.count or 0 for p in receiver.latest("gen_ai.server.request.duration", {"gen_ai.request.model": "demo-llm-8b"})
    )
    assert exported_calls == sum(int(row[1]) for row in rows)  # the summary and OTLP agree
    assert receiver.spans(), "with an endpoint, the demo's calls are traced too"

    history = tmp_path / "data" / "llmobs" / "llmobs-demo.db"
    last = result.stdout.splitlines()[-1]
    assert last == f"llmobs demo: the history is in {history}; turn it into a report with: " + REPORT
    out = tmp_path / "report.html"  # the printed command, writing into the test's directory
    report = subprocess.run(
        [sys.executable, "-m", "llmobs._cli", *REPORT.split()[1:-1], str(out)], env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    if find_spec("matplotlib") is None:  # the core CI leg: the report says which extra draws its charts
        assert report.returncode == 1 and "pip install 'llmobs[report]'" in report.stderr
        return
    assert report.returncode == 0, report.stderr
    row = next(line.split() for line in report.stdout.splitlines() if line.strip().startswith("demo-llm-8b"))
    assert int(row[1]) == exported_calls  # the history holds what the summary showed
    assert "evaluation demo-golden-set (demo-llm-8b): 50 scores" in report.stdout
    assert out.stat().st_size > 10_000


REPORT = "llmobs report --since 1h --out report.html"


def test_demo_rejects_bad_arguments() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "llmobs._cli", "demo", "--duration", "0"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2 and "--duration and --interval must be positive" in result.stderr
