"""Host and process readings, in the test's own process (no NVML needed): values at the OTLP
receiver, a container's cgroup v2 limits in place of the host's, the summary line, the off switches."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

import llmobs
from llmobs import _lifecycle
from llmobs._collector import cgroup
from tests.collector.conftest import eventually, names, newest, value
from tests.otlp_receiver import MetricPoint, OTLPReceiver

GIB = 2**30
USED = {"system.memory.state": "used"}


@pytest.fixture(autouse=True)
def own_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host lock of the test's own, so that this process holds it."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)


def exported(receiver: OTLPReceiver, ready: Callable[[list[MetricPoint]], object]) -> list[MetricPoint]:
    """Export until ``ready`` holds for the newest export; return its points."""

    def probe() -> list[MetricPoint] | None:
        assert llmobs.force_flush()
        points = newest(receiver.metrics())
        return points if ready(points) else None

    return eventually(probe)


def test_host_and_process_readings(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp(gpu=False, collect_interval=0.05)
    points = exported(receiver, lambda p: {"system.cpu.utilization", "process.cpu.utilization"} <= names(p))

    total = psutil.virtual_memory().total
    used = value(points, "system.memory.usage", USED)
    assert value(points, "system.memory.limit") == total
    assert used is not None and 0 < used < total
    assert value(points, "system.memory.utilization", USED) == pytest.approx(used / total)
    cpu = value(points, "system.cpu.utilization")
    assert cpu is not None and 0 <= cpu <= 1
    peak = value(points, "llmobs.system.cpu.utilization.max")
    assert peak is not None and peak >= cpu
    assert value(points, "process.memory.usage") == pytest.approx(psutil.Process().memory_info().rss, rel=0.25)
    assert {p.attributes["disk.io.direction"] for p in points if p.name == "system.disk.io"} == {"read", "write"}
    network = [p for p in points if p.name == "system.network.io"]
    assert all(set(p.attributes) == {"network.interface.name", "network.io.direction"} for p in network)
    assert "lo" not in {p.attributes["network.interface.name"] for p in network}
    assert not [n for n in names(points) if n.startswith(("hw.", "llmobs.gpu"))]


@pytest.fixture
def container(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A cgroup v2 directory as a container sees it: 2 GiB and half a CPU, using a quarter of one."""
    root = tmp_path / "cgroup"
    root.mkdir()
    files = {
        "memory.max": f"{2 * GIB}\n",
        "memory.current": f"{3 * GIB // 2}\n",
        "memory.stat": f"anon 1000\ninactive_file {GIB // 2}\nactive_file 10\n",
        "cpu.max": "50000 100000\n",
    }
    for name, text in files.items():
        (root / name).write_text(text)
    monkeypatch.setattr(cgroup, "ROOT", str(root))
    stop = threading.Event()

    def use_a_quarter_cpu() -> None:
        start = time.monotonic()
        while not stop.wait(0.005):
            staged = root / "cpu.stat.new"
            staged.write_text(f"usage_usec {int((time.monotonic() - start) * 0.25e6)}\nuser_usec 0\n")
            staged.replace(root / "cpu.stat")

    writer = threading.Thread(target=use_a_quarter_cpu, daemon=True)
    writer.start()
    yield root
    stop.set()
    writer.join()


def test_container_limits_replace_the_hosts(otlp: Callable[..., OTLPReceiver], container: Path) -> None:
    receiver = otlp(gpu=False, collect_interval=0.1)
    points = exported(receiver, lambda p: "system.cpu.utilization" in names(p))

    assert value(points, "system.memory.limit") == 2 * GIB
    assert value(points, "system.memory.usage", USED) == GIB  # current less the inactive page cache
    assert value(points, "system.memory.utilization", USED) == pytest.approx(0.5)
    assert value(points, "system.cpu.utilization") == pytest.approx(0.5, abs=0.25)  # 0.25 of a 0.5 quota


def test_summary_shows_the_host(capsys: pytest.CaptureFixture[str]) -> None:
    llmobs.init(gpu=False, collect_interval=0.05, export_interval=3600)

    @llmobs.monitor_inference(model="m")
    def predict() -> None:
        pass

    def printed() -> str:
        predict()
        assert llmobs.force_flush()
        err = capsys.readouterr().err
        return err if "host cpu" in err else ""

    assert re.search(r"^  host cpu \d+% mem \d+%$", eventually(printed), re.MULTILINE)


@pytest.mark.parametrize(
    ("options", "env"), [({"gpu": False, "host": False}, {}), ({}, {"LLMOBS_GPU": "false", "LLMOBS_HOST": "false"})]
)
def test_collection_off(
    otlp: Callable[..., OTLPReceiver], monkeypatch: pytest.MonkeyPatch, options: dict[str, bool], env: dict[str, str]
) -> None:
    for name, setting in env.items():
        monkeypatch.setenv(name, setting)
    receiver = otlp(**options)
    llmobs.monitor_inference(lambda: None)()
    points = exported(receiver, lambda p: "gen_ai.server.request.duration" in names(p))
    assert _lifecycle.state.collector is None
    assert not [n for n in names(points) if n.startswith(("system.", "process.", "hw.", "llmobs._collector"))]


def test_importing_llmobs_leaves_nvml_and_the_collector_alone() -> None:
    code = "import sys, llmobs; print(sorted({'pynvml', 'llmobs._collector'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
