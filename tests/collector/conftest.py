"""Fixtures for the collector tests: application processes on one "host" (a shared temp directory,
hence a shared runtime directory for the host locks) that load the C stand-in NVML and export to the
test's OTLP receiver."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from llmobs._collector.host_lock import lock_name
from tests import nvml_stub
from tests.otlp_receiver import MetricPoint, OTLPReceiver

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "collector-test"
T = TypeVar("T")


@pytest.fixture(scope="session")
def nvml_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory holding the freshly compiled stand-in libnvidia-ml.so.1."""
    return nvml_stub.build(tmp_path_factory.mktemp("nvml"))


class Child:
    """One application process (tests/collector/child.py), named by its ``test.worker`` resource attribute."""

    def __init__(self, worker: str, env: dict[str, str]) -> None:
        self.worker = worker
        self.logged: str | None = None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.collector.child"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.send(None) == "ready", self.finish()

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, command: str | None) -> str:
        """Send ``command`` (None: nothing) and return the next line the child prints."""
        assert self.process.stdin is not None and self.process.stdout is not None
        if command is not None:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def finish(self, timeout: float = 15) -> str:
        """Close its input (llmobs shuts down, the process exits) and return what it logged."""
        if self.logged is None:
            try:
                self.logged = self.process.communicate(timeout=timeout)[1]
            except subprocess.TimeoutExpired:  # also when a process it forked keeps the pipes open
                self.process.kill()
                self.process.wait()
                for pipe in (self.process.stdout, self.process.stderr):
                    assert pipe is not None
                    pipe.close()
                self.logged = ""
        return self.logged


class Host:
    """Starts children sharing one temp directory and one stand-in configuration."""

    def __init__(self, tmp_path: Path, library: Path, receiver: OTLPReceiver) -> None:
        self.tmp_path = tmp_path
        self.library = library
        self.receiver = receiver
        self.config = tmp_path / "nvml.conf"
        self.runtime = tmp_path / f"llmobs-{os.geteuid()}"  # no XDG_RUNTIME_DIR: the temp directory's
        self.children: list[Child] = []

    def lock_file(self, service: str = SERVICE) -> Path:
        return self.runtime / lock_name(service)

    def holder(self, service: str = SERVICE) -> int | None:
        """The PID holding the service's host lock, as the kernel lists it (``lslocks`` reads the same)."""
        try:
            info = self.lock_file(service).stat()
        except FileNotFoundError:
            return None
        device = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()  # "1: FLOCK  ADVISORY  WRITE 1234 00:2d:5678 0 EOF"
            if fields[1] == "FLOCK" and fields[5] == device:
                return int(fields[4])
        return None

    def configure(self, gpus: Sequence[nvml_stub.Gpu], init: int | None = None) -> None:
        nvml_stub.configure(self.config, gpus, init)

    def start(
        self,
        library: bool = True,
        export_ms: int = 3_600_000,
        collect_ms: int = 100,
        service: str = SERVICE,
        **env: str,
    ) -> Child:
        """A child of ``service``; ``library=False`` leaves the stand-in out of its library path (no NVML)."""
        worker = f"w{len(self.children)}"
        environment = {
            k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMOBS_")) and k != "XDG_RUNTIME_DIR"
        }
        environment.update(
            {
                "LD_LIBRARY_PATH": str(self.library if library else self.tmp_path),
                "NVML_STUB_CONFIG": str(self.config),
                "TMPDIR": str(self.tmp_path),
                "OTEL_EXPORTER_OTLP_ENDPOINT": self.receiver.grpc_endpoint,
                "OTEL_TRACES_EXPORTER": "none",
                "OTEL_METRIC_EXPORT_INTERVAL": str(export_ms),
                "LLMOBS_COLLECT_INTERVAL": str(collect_ms),
                "OTEL_RESOURCE_ATTRIBUTES": f"test.worker={worker}",
                "TEST_SERVICE_NAME": service,
                **env,
            }
        )
        child = Child(worker, environment)
        self.children.append(child)
        return child

    def snapshot(self, child: Child) -> list[MetricPoint]:
        """The points of the child's newest export."""
        return newest([p for p in self.receiver.metrics() if p.resource.get("test.worker") == child.worker])

    def flushed(self, child: Child) -> list[MetricPoint]:
        """Make the child export now, and return that export's points."""
        assert child.send("flush") == "True"
        return self.snapshot(child)

    def until(
        self, child: Child, ready: Callable[[list[MetricPoint]], object], flush: bool = True, timeout: float = 10.0
    ) -> list[MetricPoint]:
        """The child's newest export once ``ready`` holds for it (made by a flush, or periodic)."""

        def probe() -> list[MetricPoint] | None:
            points = self.flushed(child) if flush else self.snapshot(child)
            return points if ready(points) else None

        return eventually(probe, timeout)


@pytest.fixture
def host(tmp_path: Path, nvml_library: Path, receiver: OTLPReceiver) -> Iterator[Host]:
    h = Host(tmp_path, nvml_library, receiver)
    yield h
    for child in h.children:
        child.finish()


def newest(points: Sequence[MetricPoint]) -> list[MetricPoint]:
    """The points of the newest export among ``points`` (the points of one export share its timestamp)."""
    last = max((p.time_unix_nano for p in points), default=None)
    return [p for p in points if p.time_unix_nano == last]


def value(points: Sequence[MetricPoint], name: str, attributes: dict[str, Any] | None = None) -> float | None:
    """The value of the one point of ``name`` whose attributes include ``attributes``; None if absent."""
    want = (attributes or {}).items()
    found = [p for p in points if p.name == name and all(p.attributes.get(k) == v for k, v in want)]
    assert len(found) <= 1, f"{name} {attributes}: {[p.attributes for p in found]}"
    return found[0].value if found else None


def names(points: Sequence[MetricPoint]) -> set[str]:
    return {p.name for p in points}


def eventually(probe: Callable[[], T | None], timeout: float = 10.0) -> T:
    """Call ``probe`` until it returns something truthy, and return that; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while not (result := probe()):
        assert time.monotonic() < deadline, f"timed out after {timeout}s"
        time.sleep(0.05)
    return result
