"""GPU readings through NVML (nvidia-ml-py), initialized lazily on the sampler's own thread, in the
process that uses it. Each field fails alone: unsupported ones (MIG, consumer cards, permissions)
are skipped, never reported as 0; a lost GPU is asked for again every sample until it answers."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from .. import semconv as names
from .._attributes import Attributes
from .._failsafe import logger, warn_once
from .reading import Reading, Value, extend, snake

Reader = Callable[[Any, Any, Attributes], list[Value]]
"""(pynvml module, device handle, device attributes) -> values."""

NOT_SUPPORTED, NO_PERMISSION, FUNCTION_NOT_FOUND = 3, 4, 13  # NVML_ERROR_*: the field is not there
LOST = ("gpu_is_lost", "reset_required")  # stop asking this device; fetch its handle again next sample
STATES = ("ok", "degraded", "failed")
# Bits of nvmlClocksEventReason* (formerly nvmlClocksThrottleReason*).
REASONS = (
    ("gpu_idle", 0x1),
    ("applications_clocks_setting", 0x2),
    ("sw_power_cap", 0x4),
    ("hw_slowdown", 0x8),
    ("sync_boost", 0x10),
    ("sw_thermal_slowdown", 0x20),
    ("hw_thermal_slowdown", 0x40),
    ("hw_power_brake_slowdown", 0x80),
    ("display_clock_setting", 0x100),
)
PCIE_BYTES = 197, 198  # NVML_FI_DEV_PCIE_COUNT_TX_BYTES, _RX_BYTES


def _field(
    instrument: names.Instrument, extra: tuple[tuple[str, str], ...], scale: float, call: Callable[[Any, Any], float]
) -> Reader:
    """A reader for one NVML call that returns one number."""
    return lambda nvml, h, a: [(instrument, extend(a, *extra), call(nvml, h) * scale)]


def _utilization(nvml: Any, h: Any, a: Attributes) -> list[Value]:
    rates = nvml.nvmlDeviceGetUtilizationRates(h)
    return [
        (names.GPU_UTILIZATION, extend(a, (names.GPU_TASK, "general")), rates.gpu / 100),
        (names.GPU_MEMORY_BANDWIDTH, a, rates.memory / 100),
    ]


def _memory(nvml: Any, h: Any, a: Attributes) -> list[Value]:
    memory = nvml.nvmlDeviceGetMemoryInfo(h)
    values = [(names.GPU_MEMORY_USAGE, a, memory.used), (names.GPU_MEMORY_LIMIT, a, memory.total)]
    if memory.total:
        values.append((names.GPU_MEMORY_UTILIZATION, a, memory.used / memory.total))
    return values


def _throttle(nvml: Any, h: Any, a: Attributes) -> list[Value]:
    try:
        mask = nvml.nvmlDeviceGetCurrentClocksEventReasons(h)
    except nvml.NVMLError_FunctionNotFound:  # drivers before 535
        mask = nvml.nvmlDeviceGetCurrentClocksThrottleReasons(h)
    return [
        (names.GPU_THROTTLE, extend(a, (names.THROTTLE_REASON, reason)), float(bool(mask & bit)))
        for reason, bit in REASONS
    ]


def _pcie_bytes(nvml: Any, h: Any, a: Attributes) -> list[Value]:
    fields = nvml.nvmlDeviceGetFieldValues(h, list(PCIE_BYTES))
    return [
        (names.GPU_IO, extend(a, (names.IO_DIRECTION, direction)), f.value.ullVal)
        for direction, f in zip(("transmit", "receive"), fields, strict=True)
        if f.nvmlReturn == 0
    ]


DEVICE_READERS: tuple[Reader, ...] = (
    _utilization,
    _memory,
    _throttle,
    _pcie_bytes,
    _field(
        names.GPU_UTILIZATION,
        ((names.GPU_TASK, "encoder"),),
        0.01,
        lambda n, h: n.nvmlDeviceGetEncoderUtilization(h)[0],
    ),
    _field(
        names.GPU_UTILIZATION,
        ((names.GPU_TASK, "decoder"),),
        0.01,
        lambda n, h: n.nvmlDeviceGetDecoderUtilization(h)[0],
    ),
    _field(names.GPU_TEMPERATURE, (), 1, lambda n, h: n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU)),
    _field(names.GPU_POWER, (), 1e-3, lambda n, h: n.nvmlDeviceGetPowerUsage(h)),
    _field(names.GPU_ENERGY, (), 1e-3, lambda n, h: n.nvmlDeviceGetTotalEnergyConsumption(h)),
    _field(
        names.GPU_CLOCK, ((names.CLOCK_TYPE, "sm"),), 1e6, lambda n, h: n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_SM)
    ),
    _field(
        names.GPU_CLOCK,
        ((names.CLOCK_TYPE, "memory"),),
        1e6,
        lambda n, h: n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_MEM),
    ),
    _field(
        names.GPU_ERRORS,
        ((names.ERROR_TYPE, "corrected"),),
        1,
        lambda n, h: n.nvmlDeviceGetTotalEccErrors(h, n.NVML_MEMORY_ERROR_TYPE_CORRECTED, n.NVML_VOLATILE_ECC),
    ),
    _field(
        names.GPU_ERRORS,
        ((names.ERROR_TYPE, "uncorrected"),),
        1,
        lambda n, h: n.nvmlDeviceGetTotalEccErrors(h, n.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, n.NVML_VOLATILE_ECC),
    ),
    _field(
        names.GPU_PCIE_THROUGHPUT,
        ((names.IO_DIRECTION, "transmit"),),
        1024,
        lambda n, h: n.nvmlDeviceGetPcieThroughput(h, n.NVML_PCIE_UTIL_TX_BYTES),
    ),
    _field(
        names.GPU_PCIE_THROUGHPUT,
        ((names.IO_DIRECTION, "receive"),),
        1024,
        lambda n, h: n.nvmlDeviceGetPcieThroughput(h, n.NVML_PCIE_UTIL_RX_BYTES),
    ),
)
"""Device-level readings, taken by the host lock's holder only."""


def _process_memory(pid: int) -> Reader:
    """This process's GPU memory, found by PID (per-process readings come from every process)."""

    def read(nvml: Any, h: Any, a: Attributes) -> list[Value]:
        used = [
            p.usedGpuMemory
            for p in nvml.nvmlDeviceGetComputeRunningProcesses(h)
            if p.pid == pid and p.usedGpuMemory is not None
        ]
        return [(names.GPU_PROCESS_MEMORY, a, sum(used))] if used else []

    return read


class _Device:
    def __init__(self, index: int) -> None:
        self.index = index
        self.handle: Any = None
        self.attributes: Attributes = (
            (names.HW_ID, f"gpu{index}"),
            (names.HW_NAME, f"gpu{index}"),
            (names.HW_TYPE, "gpu"),
        )


class GpuSource:
    """NVML devices ``devices`` (None: all). Without an NVML library or driver: one info line, then nothing."""

    def __init__(self, devices: Sequence[int] | None) -> None:
        self._wanted = devices
        self._nvml: Any = None
        self._off = False
        self._devices: list[_Device] | None = None
        self._process = _process_memory(os.getpid())

    def read(self, holder: bool) -> Reading:
        reading = Reading()
        if self._off or (self._nvml is None and not self._start()):
            return reading
        if self._devices is None and reading.add(self._discover, _classify) is not None:
            return reading
        for device in self._devices or ():
            self._read_device(device, holder, reading)
        return reading

    def close(self) -> None:
        if self._nvml is not None:
            self._nvml.nvmlShutdown()

    def _start(self) -> bool:
        """Load and initialize NVML on first use; False (GPU readings off for good) when it cannot."""
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception as exc:
            self._off = True
            error = _error_name(exc)
            if error in ("library_not_found", "driver_not_loaded", "module_not_found_error"):
                logger.info("llmobs: no NVIDIA GPU readings (%s: %s); host readings go on", error, exc)
            else:
                warn_once("nvml-init", "llmobs: NVML did not start (%s: %s); GPU readings are off", error, exc)
            return False
        self._nvml = pynvml
        return True

    def _discover(self) -> list[Value]:
        """Find the devices to read (through ``Reading.add``, so that a failure is counted)."""
        count = self._nvml.nvmlDeviceGetCount()
        indices = range(count) if self._wanted is None else self._wanted
        missing = [i for i in indices if i >= count]
        if missing:
            warn_once("gpu-devices", "llmobs: GPU index(es) %s not present (%d GPUs); they are skipped", missing, count)
        self._devices = [_Device(i) for i in indices if i < count]
        return []

    def _read_device(self, device: _Device, holder: bool, reading: Reading) -> None:
        errors, values = len(reading.errors), len(reading.values)
        error = (
            None
            if device.handle is not None
            else reading.add(partial(self._connect, device), _classify, device.attributes)
        )
        answered = 0
        if error is None:
            for read in (*DEVICE_READERS, self._process) if holder else (self._process,):
                error = reading.add(
                    partial(read, self._nvml, device.handle, device.attributes), _classify, device.attributes
                )
                if error in LOST:  # what it answered before is not to be trusted either
                    device.handle = None
                    del reading.values[values:]
                    break
                answered += error is None  # "not supported" is an answer too
        if holder:
            state = _state(error in LOST or not answered, len(reading.errors) > errors)
            reading.values += [
                (names.GPU_STATUS, extend(device.attributes, (names.HW_STATE, s)), float(s == state)) for s in STATES
            ]

    def _connect(self, device: _Device) -> list[Value]:
        nvml = self._nvml
        handle = nvml.nvmlDeviceGetHandleByIndex(device.index)
        model, uuid = nvml.nvmlDeviceGetName(handle), nvml.nvmlDeviceGetUUID(handle)
        device.attributes = (
            (names.HW_ID, uuid),
            (names.HW_MODEL, model),
            (names.HW_NAME, f"gpu{device.index}"),
            (names.HW_TYPE, "gpu"),
            (names.HW_VENDOR, "NVIDIA"),
        )
        device.handle = handle
        return []


def _state(failed: bool, errors: bool) -> str:
    return "failed" if failed else "degraded" if errors else "ok"


def _error_name(exc: Exception) -> str:
    """NVML's name for the error (``gpu_is_lost``), else the exception's class name in snake case."""
    name, value = type(exc).__name__, getattr(exc, "value", None)
    if not name.startswith("NVMLError") or not isinstance(value, int):
        return snake(name)
    name = name.removeprefix("NVMLError").lstrip("_")
    return snake(name) if name else f"nvml_error_{value}"


def _classify(exc: Exception) -> str | None:
    """The error type to count; None for a field this device does not have."""
    if type(exc).__name__.startswith("NVMLError") and getattr(exc, "value", None) in (
        NOT_SUPPORTED,
        NO_PERMISSION,
        FUNCTION_NOT_FOUND,
    ):
        return None
    return _error_name(exc)


def _reset_bindings_lock() -> None:
    """A fork while another thread held the bindings' load lock would leave the child deadlocked on it."""
    import sys

    pynvml: Any = sys.modules.get("pynvml")
    if pynvml is not None:
        pynvml.libLoadLock = threading.Lock()


os.register_at_fork(after_in_child=_reset_bindings_lock)
