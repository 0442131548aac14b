"""GPU readings end to end: the real nvidia-ml-py bindings load the C stand-in NVML in an application
process, and the values arrive at the OTLP receiver."""

from __future__ import annotations

import ctypes.util
import time

import pynvml
import pytest

from llmobs._collector.gpu import Bindings
from tests.collector.conftest import Host, eventually, names, value
from tests.nvml_stub import DRIVER_NOT_LOADED, GIB, H100, NO_PERMISSION, NOT_SUPPORTED, Err, uuid
from tests.otlp_receiver import MetricPoint

GPU0, GPU1 = {"hw.id": uuid(0)}, {"hw.id": uuid(1)}
GENERAL = {"hw.gpu.task": "general"}
A100 = {
    **H100,
    "name": "NVIDIA A100-SXM4-40GB",
    "util": 12,
    "mem_total": 40 * GIB,
    "mem_used": 10 * GIB,
    "temp": 55,
    "power": 90_500,
}
# A MIG-enabled GPU answers memory and temperature, not utilization, power or processes.
MIG_LIKE = {
    "name": "NVIDIA A100 MIG",
    "mem_total": 40 * GIB,
    "mem_used": 5 * GIB,
    "temp": 60,
    "util": Err(NOT_SUPPORTED),
    "enc": Err(NOT_SUPPORTED),
    "dec": Err(NOT_SUPPORTED),
    "power": Err(NO_PERMISSION),
    "procs": Err(NOT_SUPPORTED),
}


def status(points: list[MetricPoint], gpu: dict[str, str], state: str) -> float | None:
    return value(points, "hw.status", {**gpu, "hw.state": state})


def both_ok(points: list[MetricPoint]) -> bool:
    """Both GPUs have reported: each has a sampler thread of its own, and one's first reading can come
    an export before the other's."""
    return status(points, GPU0, "ok") == status(points, GPU1, "ok") == 1


def of(points: list[MetricPoint], gpu: dict[str, str]) -> set[str]:
    """The names of the metrics exported for one GPU."""
    return {p.name for p in points if p.attributes.get("hw.id") == gpu["hw.id"]}


def test_two_gpus_export_known_values(host: Host) -> None:
    host.configure([H100, A100])
    child = host.start()
    points = host.until(child, both_ok)

    assert value(points, "hw.gpu.utilization", {**GPU0, **GENERAL}) == pytest.approx(0.87)
    assert value(points, "hw.gpu.utilization", {**GPU0, "hw.gpu.task": "encoder"}) == pytest.approx(0.05)
    assert value(points, "hw.gpu.utilization", {**GPU0, "hw.gpu.task": "decoder"}) == pytest.approx(0.07)
    assert value(points, "llmobs.gpu.memory.bandwidth.utilization", GPU0) == pytest.approx(0.40)
    assert value(points, "hw.gpu.memory.usage", GPU0) == 31 * GIB
    assert value(points, "hw.gpu.memory.limit", GPU0) == 80 * GIB
    assert value(points, "hw.gpu.memory.utilization", GPU0) == pytest.approx(31 / 80)
    assert value(points, "hw.temperature", GPU0) == 71
    assert value(points, "hw.power", GPU0) == pytest.approx(245.0)
    assert value(points, "llmobs.gpu.clock.frequency", {**GPU0, "llmobs.gpu.clock.type": "sm"}) == 1_980_000_000
    assert value(points, "llmobs.gpu.clock.frequency", {**GPU0, "llmobs.gpu.clock.type": "memory"}) == 2_619_000_000
    assert value(points, "llmobs.gpu.throttle", {**GPU0, "llmobs.gpu.throttle.reason": "sw_power_cap"}) == 1
    assert value(points, "llmobs.gpu.throttle", {**GPU0, "llmobs.gpu.throttle.reason": "hw_slowdown"}) == 0
    assert value(points, "llmobs.gpu.pcie.throughput", {**GPU0, "network.io.direction": "receive"}) == 2000 * 1024
    assert [status(points, GPU0, s) for s in ("ok", "degraded", "failed")] == [1, 0, 0]
    # Counters start at their first reading: what the driver counted before is not ours.
    assert value(points, "hw.energy", GPU0) == 0
    assert value(points, "hw.errors", {**GPU0, "error.type": "corrected"}) == 0
    assert value(points, "hw.gpu.io", {**GPU0, "network.io.direction": "transmit"}) == 0

    assert value(points, "hw.gpu.utilization", {**GPU1, **GENERAL}) == pytest.approx(0.12)
    assert value(points, "hw.gpu.memory.usage", GPU1) == 10 * GIB
    assert value(points, "hw.temperature", GPU1) == 55
    assert value(points, "hw.power", GPU1) == pytest.approx(90.5)
    assert "llmobs.collector.errors" not in names(points)

    power = next(p for p in points if p.name == "hw.power" and p.attributes["hw.id"] == uuid(0))
    assert (power.unit, power.kind) == ("W", "gauge")
    assert {k: v for k, v in power.attributes.items() if k != "hw.id"} == {
        "hw.name": "gpu0",
        "hw.type": "gpu",
        "hw.vendor": "NVIDIA",
        "hw.model": "NVIDIA H100 80GB HBM3",
    }
    energy = next(p for p in points if p.name == "hw.energy")
    assert (energy.unit, energy.kind, energy.monotonic) == ("J", "sum", True)

    # From H100's: util 87 -> 20 %, energy +500 J, corrected ECC errors 3 -> 5, PCIe +4096 bytes sent.
    host.configure([{**H100, "util": 20, "energy": 9_500_000, "ecc_corrected": 5, "pcie_tx_bytes": 10**9 + 4096}, A100])
    points = host.until(child, lambda p: value(p, "hw.gpu.utilization", {**GPU0, **GENERAL}) == pytest.approx(0.20))
    # The export interval is long here, so the window's maximum still holds the earlier 87%.
    assert value(points, "llmobs.hw.gpu.utilization.max", {**GPU0, **GENERAL}) == pytest.approx(0.87)
    assert value(points, "hw.energy", GPU0) == pytest.approx(500.0)
    assert value(points, "hw.errors", {**GPU0, "error.type": "corrected"}) == 2
    assert value(points, "hw.gpu.io", {**GPU0, "network.io.direction": "transmit"}) == 4096


def test_unsupported_fields_are_absent_while_the_others_report(host: Host) -> None:
    host.configure([H100, MIG_LIKE])
    child = host.start()
    points = host.until(child, both_ok)

    assert value(points, "hw.gpu.memory.usage", GPU1) == 5 * GIB
    assert value(points, "hw.temperature", GPU1) == 60
    assert of(points, GPU1) == {
        "hw.gpu.memory.usage",
        "hw.gpu.memory.limit",
        "hw.gpu.memory.utilization",
        "hw.temperature",
        "hw.status",
        "llmobs.hw.gpu.memory.utilization.max",
    }
    assert value(points, "hw.gpu.utilization", {**GPU0, **GENERAL}) == pytest.approx(0.87)
    assert value(points, "hw.power", GPU0) == pytest.approx(245.0)
    assert "llmobs.collector.errors" not in names(points)  # not supported is not an error


def test_lost_gpu_is_failed_and_counted_then_recovers(host: Host) -> None:
    host.configure([H100, {**H100, "lost_after": 40}])  # about the third sample
    child = host.start()
    points = host.until(child, lambda p: status(p, GPU1, "failed") == 1 and status(p, GPU0, "ok") == 1)

    assert status(points, GPU1, "ok") == 0
    assert of(points, GPU1) == {"hw.status", "llmobs.collector.errors", "hw.energy", "hw.errors", "hw.gpu.io"}
    lost = value(points, "llmobs.collector.errors", {**GPU1, "error.type": "gpu_is_lost"})
    assert lost is not None and lost >= 1
    assert value(points, "hw.gpu.utilization", {**GPU0, **GENERAL}) == pytest.approx(0.87)

    host.configure([H100, H100])
    points = host.until(child, lambda p: status(p, GPU1, "ok") == 1)
    assert value(points, "hw.gpu.utilization", {**GPU1, **GENERAL}) == pytest.approx(0.87)
    assert status(points, GPU1, "failed") == 0


def test_only_the_chosen_devices(host: Host) -> None:
    host.configure([H100, A100, H100])
    child = host.start(LLMOBS_GPU_DEVICES="1")
    points = host.until(child, lambda p: status(p, GPU1, "ok") == 1)
    assert {p.attributes["hw.id"] for p in points if "hw.id" in p.attributes} == {uuid(1)}


@pytest.mark.parametrize(
    ("library", "init", "reason"), [(False, None, "library_not_found"), (True, DRIVER_NOT_LOADED, "driver_not_loaded")]
)
def test_without_nvml_one_info_line_and_host_readings_go_on(
    host: Host, library: bool, init: int | None, reason: str
) -> None:
    if not library and ctypes.util.find_library("nvidia-ml"):
        pytest.skip("a real libnvidia-ml is installed: it cannot be hidden from the child")
    host.configure([H100], init=init)
    child = host.start(library=library)
    points = host.until(child, lambda p: "system.cpu.utilization" in names(p))

    assert {"system.memory.usage", "process.memory.usage", "process.cpu.utilization"} <= names(points)
    assert not [n for n in names(points) if n.startswith(("hw.", "llmobs.gpu", "llmobs.hw"))]
    logged = child.finish()
    assert logged.count("no NVIDIA GPU readings") == 1
    assert f"llmobs INFO llmobs: no NVIDIA GPU readings ({reason}" in logged


def test_hung_nvml_call_blocks_neither_calls_nor_export_and_is_not_exported_as_fresh(host: Host) -> None:
    host.configure([H100])
    child = host.start(export_ms=200)
    general = {**GPU0, **GENERAL}
    host.until(child, lambda p: value(p, "hw.gpu.utilization", general), flush=False)
    before = float(child.send("measure"))

    host.configure([{**H100, "sleep": ("power", 2)}])  # every sample now hangs 2 s in one call
    host.until(child, lambda p: value(p, "llmobs.collector.errors", {"error.type": "sample_timeout"}), flush=False)
    during = float(child.send("measure"))
    assert during <= 2 * before + 0.001, (before, during)

    exports = len({p.time_unix_nano for p in host.receiver.metrics()})
    # Export goes on: two more of the 0.2 s exports while every sample hangs 2 s (polled, as a loaded
    # machine runs them late; the samples keep hanging all the while).
    eventually(lambda: len({p.time_unix_nano for p in host.receiver.metrics()}) >= exports + 2)
    points = host.snapshot(child)
    assert not [p.name for p in points if p.kind == "gauge" and "hw.id" in p.attributes]  # counters stay
    assert value(points, "process.memory.usage") is not None  # the host sampler is not held up

    host.configure([H100])
    host.until(child, lambda p: value(p, "hw.gpu.utilization", general) == pytest.approx(0.87), flush=False)

    timeouts = {"error.type": "sample_timeout"}
    hung = value(host.snapshot(child), "llmobs.collector.errors", timeouts) or 0
    host.configure([{**H100, "sleep": ("power", 30)}])  # hung far longer than shutdown's 5 s budget
    host.until(child, lambda p: (value(p, "llmobs.collector.errors", timeouts) or 0) > hung, flush=False)
    started = time.monotonic()
    logged = child.finish()  # shutdown does not wait for the stuck sampler
    # Waiting for it would take the 30 s hang, or the 5 s budget and its "gave up" line; the margin is
    # the exit of a process on a loaded machine.
    assert time.monotonic() - started < 4 and "gave up" not in logged


def test_one_hung_gpu_withdraws_only_its_own_readings(host: Host) -> None:
    host.configure([H100, {**H100, "sleep": ("power", 5)}])  # GPU 1 hangs in every sample from the first
    # A sample is late after two intervals: at 0.5 s, GPU 0's first one is not, however loaded the machine.
    child = host.start(collect_ms=500)
    timeout = {**GPU1, "error.type": "sample_timeout"}
    points = host.until(child, lambda p: value(p, "llmobs.collector.errors", timeout) and status(p, GPU0, "ok") == 1)

    assert value(points, "llmobs.collector.errors", timeout) == 1  # counted once per hang, as GPU 1's
    assert not [p.name for p in points if p.kind == "gauge" and p.attributes.get("hw.id") == uuid(1)]
    assert value(points, "hw.power", GPU0) == pytest.approx(245.0)
    assert status(points, GPU0, "ok") == 1

    host.configure([{**H100, "util": 20}, {**H100, "sleep": ("power", 5)}])  # GPU 0 stays fresh
    points = host.until(child, lambda p: value(p, "hw.gpu.utilization", {**GPU0, **GENERAL}) == pytest.approx(0.20))
    assert value(points, "llmobs.collector.errors", {"error.type": "sample_timeout", **GPU0}) is None
    assert not [p.name for p in points if p.kind == "gauge" and p.attributes.get("hw.id") == uuid(1)]


def test_each_process_reports_its_own_gpu_memory(host: Host) -> None:
    host.configure([H100, H100])
    a, b = host.start(), host.start()
    host.configure(
        [
            {**H100, "processes": [(a.pid, 3 * GIB), (b.pid, 5 * GIB), (1, 7 * GIB)]},
            {**H100, "processes": [(a.pid, 1 * GIB)]},
        ]
    )
    name = "llmobs.gpu.process.memory.usage"
    pa = host.until(a, lambda p: value(p, name, GPU0) and value(p, name, GPU1))
    pb = host.until(b, lambda p: value(p, name, GPU0))

    assert (value(pa, name, GPU0), value(pa, name, GPU1)) == (3 * GIB, 1 * GIB)
    assert (value(pb, name, GPU0), value(pb, name, GPU1)) == (5 * GIB, None)
    # Device-level readings come from one of them only.
    assert ["hw.gpu.utilization" in names(p) for p in (pa, pb)].count(True) == 1


def test_forked_process_collects_with_its_own_nvml(host: Host) -> None:
    host.configure([H100])
    # HTTP export: this test is about NVML after fork, not about gRPC's own fork support.
    parent = host.start(
        export_ms=200,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=host.receiver.http_endpoint,
    )
    host.until(parent, lambda p: value(p, "hw.gpu.utilization", {**GPU0, **GENERAL}), flush=False)
    forked = int(parent.send("fork").split()[1])
    host.configure([{**H100, "processes": [(parent.pid, 1 * GIB), (forked, 2 * GIB)]}])

    def exported(used: int) -> MetricPoint | None:
        return next(
            (p for p in host.receiver.metrics() if p.name == "llmobs.gpu.process.memory.usage" and p.value == used),
            None,
        )

    theirs, mine = eventually(lambda: exported(2 * GIB)), eventually(lambda: exported(1 * GIB))
    assert theirs.resource["service.instance.id"] != mine.resource["service.instance.id"]


def test_summary_shows_the_gpus(host: Host) -> None:
    host.configure([H100])
    child = host.start(OTEL_METRICS_EXPORTER="console,otlp")
    host.until(child, lambda p: value(p, "hw.gpu.utilization", {**GPU0, **GENERAL}))
    child.send("call")
    child.send("flush")
    assert "  gpu0 util 87% (max 87%) mem 31.0/80.0 GiB 245 W 71°C" in child.finish()


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        (pynvml.NVML_ERROR_NOT_SUPPORTED, None),
        (pynvml.NVML_ERROR_NO_PERMISSION, None),
        (pynvml.NVML_ERROR_FUNCTION_NOT_FOUND, None),
        (pynvml.NVML_ERROR_GPU_IS_LOST, "gpu_is_lost"),
        (pynvml.NVML_ERROR_RESET_REQUIRED, "reset_required"),
        (pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH, "lib_rm_version_mismatch"),
        (12345, "nvml_error_12345"),
    ],
)
def test_nvml_errors_are_told_apart_by_the_bindings_own_codes(code: int, error_type: str | None) -> None:
    bindings = Bindings(pynvml)
    assert bindings.errors.expected == (pynvml.NVMLError,)
    assert bindings.errors.classify(pynvml.NVMLError(code)) == error_type
    assert bindings.lost == {"gpu_is_lost", "reset_required"}
