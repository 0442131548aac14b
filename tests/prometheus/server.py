"""A real Prometheus (Debian's 2.42 package) scraping llmobs every second, queried over its HTTP API."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.otlp_receiver import free_port

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="Debian's prometheus package is not installed (.ci/run installs it)"
)
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian's prometheus package) is not installed")
T = TypeVar("T")


class Prometheus:
    """The API of a running Prometheus."""

    def __init__(self, url: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.process = process
        self.log = log

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector ``promql`` evaluates to now: [{"metric": {...}, "value": [t, "v"]}, ...]."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=5) as response:
            answer = json.load(response)
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def value(self, promql: str) -> float | None:
        """The single value ``promql`` evaluates to, or None when it has no sample."""
        found = self.query(promql)
        assert len(found) <= 1, found
        return float(found[0]["value"][1]) if found else None

    def eventually(self, promql: str, check: Callable[[float | None], bool], timeout: float = 20.0) -> float | None:
        """Wait until ``check`` holds for ``promql``'s value (scrapes are once a second)."""
        return self._poll(promql, lambda: self.value(promql), check, timeout)

    def settled(self, expected: Mapping[str, float], timeout: float = 20.0) -> None:
        """Wait until each query of ``expected`` has its value: pre-fork workers hand their calls over at
        intervals of their own, so one series can be complete a scrape before another."""

        def values() -> dict[str, float | None]:
            return {promql: self.value(promql) for promql in expected}

        self._poll("the queries", values, lambda found: found == expected, timeout)

    def _poll(self, what: str, read: Callable[[], T], check: Callable[[T], bool], timeout: float) -> T:
        deadline = time.monotonic() + timeout
        value = read()
        while not check(value):
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} = {value} after {timeout}s\n{self.log.read_text()[-2000:]}")
            time.sleep(0.25)
            value = read()
        return value

    def exemplars(self, promql: str) -> list[dict[str, Any]]:
        """The exemplars stored for ``promql`` over the last 10 minutes (needs exemplar storage on)."""
        now = time.time()
        query = urllib.parse.urlencode({"query": promql, "start": now - 600, "end": now})
        with urllib.request.urlopen(f"{self.url}/api/v1/query_exemplars?{query}", timeout=5) as response:
            answer = json.load(response)
        assert answer["status"] == "success", answer
        return [e for series in answer["data"] for e in series["exemplars"]]

    def targets_up(self) -> int:
        with urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=5) as response:
            targets = json.load(response)["data"]["activeTargets"]
        return sum(1 for t in targets if t["health"] == "up")


@contextmanager
def prometheus(
    directory: Path, targets: list[str], *flags: str, job: str = "llmobs", extra: str = ""
) -> Iterator[Prometheus]:
    """Prometheus scraping ``targets`` (host:port) once a second as ``job``, its data in ``directory``;
    ``extra``: more top-level configuration (rule_files, alerting)."""
    assert PROMETHEUS is not None
    config = directory / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: {job}\n    static_configs: [{{targets: {json.dumps(targets)}}}]\n{extra}"
    )
    port = free_port()
    log = directory / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn", *flags],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Prometheus(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_ready(server: Prometheus, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.process.poll() is None, server.log.read_text()
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"prometheus not ready after {timeout}s:\n{server.log.read_text()}")


def promtool_check(exposition: bytes) -> subprocess.CompletedProcess[str]:
    """``promtool check metrics`` on an exposition: lint problems in its output, exit code 0 when none."""
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, "check", "metrics"], input=exposition.decode(), capture_output=True, text=True, timeout=30
    )
