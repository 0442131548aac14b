"""The real stack the asset tests query: the workload app (uvicorn) with a hot, throttled stand-in
GPU, Debian's Prometheus scraping it every second with the rendered alert rules, and Debian's
Alertmanager delivering to a webhook receiver in the test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from llmobs._assets.emit import document
from llmobs._assets.rules import groups
from llmobs._assets.thresholds import apply
from tests import nvml_stub
from tests.middleware.servers import ROOT, Server, serve
from tests.otlp_receiver import free_port
from tests.prometheus.server import Prometheus, prometheus

ALERTMANAGER = shutil.which("prometheus-alertmanager")
SERVICE = "assets-test"
GIB = 2**30
WATTS = 245.0  # the stand-in GPU's energy counter grows at this rate
HOT_GPU: nvml_stub.Gpu = {**nvml_stub.H100, "temp": 92, "throttle": 0x4 | 0x20}  # sw_power_cap, sw_thermal_slowdown
SETTINGS = ["alert_for=0s", "error_ratio=0.1"]  # the workload fails 20% of its calls


class Webhook(ThreadingHTTPServer):
    """An Alertmanager webhook receiver on loopback; ``alerts`` holds every alert delivered."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Hook)
        self.alerts: list[dict[str, Any]] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _Hook(BaseHTTPRequestHandler):
    server: Webhook

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.alerts.extend(body["alerts"])
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@dataclass
class Stack:
    app: Server
    metrics: str
    prometheus: Prometheus
    webhook: Webhook


@contextmanager
def stack(directory: Path) -> Iterator[Stack]:
    """Everything running; the stand-in GPU's energy grows while it does."""
    config = directory / "nvml.conf"
    nvml_stub.configure(config, [HOT_GPU])
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMOBS_")) and k != "XDG_RUNTIME_DIR"}
    env.update(
        PYTHONPATH=str(ROOT), TMPDIR=str(directory), OTEL_METRICS_EXPORTER="prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1", OTEL_EXPORTER_PROMETHEUS_PORT=str(port),
        OTEL_TRACES_EXPORTER="none", LLMOBS_COLLECT_INTERVAL="200", LLMOBS_MAX_SERIES="40",
        LD_LIBRARY_PATH=str(nvml_stub.build(directory)), NVML_STUB_CONFIG=str(config),
    )  # fmt: skip
    rules = directory / "rules.yml"
    rules.write_text(document(groups(apply(SETTINGS))))
    argv = ["uvicorn", "tests.assets.app:app", "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning"]
    with (
        Webhook() as webhook,
        alertmanager(directory, webhook.url) as manager,
        serve(argv, env, directory / "app.log") as app,
    ):
        stop = threading.Event()
        gpu = threading.Thread(target=_heat, args=(config, app.process.pid, stop), daemon=True)
        gpu.start()
        extra = (
            f"rule_files: [{rules}]\nalerting: {{alertmanagers: [{{static_configs: [{{targets: [{manager!r}]}}]}}]}}\n"
        )
        try:
            with prometheus(directory, [f"127.0.0.1:{port}"], job=SERVICE, extra=extra) as server:
                yield Stack(app, f"http://127.0.0.1:{port}/metrics", server, webhook)
        finally:
            stop.set()
            gpu.join()
            webhook.shutdown()


def _heat(config: Path, pid: int, stop: threading.Event) -> None:
    """The GPU draws WATTS, serves 2 GiB to the app, and reports 2 uncorrected ECC errors after 12 s
    (once Prometheus has seen the count at 0: ``increase`` cannot see what happened before)."""
    start = time.monotonic()
    while not stop.wait(0.2):
        elapsed = time.monotonic() - start
        gpu = {**HOT_GPU, "energy": int(9_000_000 + WATTS * 1000 * elapsed), "processes": [(pid, 2 * GIB)]}
        nvml_stub.configure(config, [{**gpu, "ecc_uncorrected": 2 if elapsed > 12 else 0}])


@contextmanager
def alertmanager(directory: Path, webhook: str) -> Iterator[str]:
    """Alertmanager delivering every alert to ``webhook`` within a second; yields its host:port."""
    assert ALERTMANAGER is not None
    config = directory / "alertmanager.yml"
    config.write_text(
        "route: {receiver: test, group_by: [alertname], group_wait: 1s, group_interval: 1s, repeat_interval: 1h}\n"
        f"receivers: [{{name: test, webhook_configs: [{{url: '{webhook}', send_resolved: false}}]}}]\n"
    )
    address = f"127.0.0.1:{free_port()}"
    log = directory / "alertmanager.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [ALERTMANAGER, f"--config.file={config}", f"--storage.path={directory / 'am'}",
             f"--web.listen-address={address}", "--cluster.listen-address=", "--log.level=warn"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait(f"http://{address}/-/ready", process, log)
        yield address
    finally:
        process.terminate()
        process.wait(10)


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} not ready after {timeout}s:\n{log.read_text()}")
