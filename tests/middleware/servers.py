"""Real servers for the tests: uvicorn or gunicorn as a subprocess on a free loopback port,
exporting to the tests' OTLP receiver, stopped with SIGTERM as a process manager would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.otlp_receiver import OTLPReceiver, free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    """A running server; ``stopped_in`` is filled by ``serve`` once SIGTERM has been answered."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    stopped_in: float = field(default=0.0)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def otlp_env(receiver: OTLPReceiver, protocol: str, interval_ms: int = 500) -> dict[str, str]:
    """The environment of a served app: no inherited OTEL_*/LLMOBS_*, metrics every ``interval_ms``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMOBS_"))}
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    env.update(
        PYTHONPATH=str(ROOT),
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_METRIC_EXPORT_INTERVAL=str(interval_ms),
        OTEL_BSP_SCHEDULE_DELAY="200",
        LLMOBS_GPU="false",
        LLMOBS_HOST="false",
    )
    return env


@contextmanager
def serve(
    argv: list[str], env: dict[str, str], log: Path, start_timeout: float = 30, stop_timeout: float = 20
) -> Iterator[Server]:
    """Run ``python -m argv`` (``{port}`` replaced), output to ``log``; wait until /health answers;
    SIGTERM it at exit. AssertionError, with the output, when it does not start or stop in time or drops
    a request."""
    port = free_port()
    with log.open("wb") as out:
        command = [sys.executable, "-m", *[a.replace("{port}", str(port)) for a in argv]]
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_ready(server, start_timeout)
        yield server
    except httpx.TransportError as error:  # the server dropped a request: what it said is the reason
        raise AssertionError(f"{error!r} from the server, whose output was:\n{server.output()}") from error
    finally:
        _stop(server, stop_timeout)


def _wait_ready(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"server exited with {server.process.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"server not ready after {timeout}s:\n{server.output()}")


def _stop(server: Server, timeout: float) -> None:
    start = time.monotonic()
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()
        raise AssertionError(f"server still running {timeout}s after SIGTERM:\n{server.output()}") from None
    server.stopped_in = time.monotonic() - start
    if server.process.returncode not in (0, -signal.SIGTERM):  # uvicorn ends with the signal it caught
        raise AssertionError(f"server exited with {server.process.returncode}:\n{server.output()}")
