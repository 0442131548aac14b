"""GPU readings through NVML (nvidia-ml-py), initialized lazily on a sampler thread, in the process
that uses it. Each GPU is read on a sampler thread of its own, so that a hung device withdraws only its
own readings. Each field fails alone: unsupported ones (MIG, consumer cards, permissions) are skipped,
never reported as 0; a lost GPU is asked for again every sample until it answers."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from .. import semconv as names
from .._attributes import Attributes
from .._failsafe import logger, warn_once
from .reading import Errors, Reading, Value, extend, snake
from .sampler import Sampler, Source

Reader = Callable[[Any, Any, Attributes], list[Value]]
"""(pynvml module, device handle, device attributes) -> values."""

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
NO_GPU = "llmobs: no NVIDIA GPU readings (%s: %s); host readings go on"


def _scalar(
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
    fields = nvml.nvmlDeviceGetFieldValues(
        h, [nvml.NVML_FI_DEV_PCIE_COUNT_TX_BYTES, nvml.NVML_FI_DEV_PCIE_COUNT_RX_BYTES]
    )
    return [
        (names.GPU_IO, extend(a, (names.IO_DIRECTION, direction)), f.value.ullVal)
        for direction, f in zip(("transmit", "receive"), fields, strict=True)
        if f.nvmlReturn == nvml.NVML_SUCCESS
    ]


DEVICE_READERS: tuple[Reader, ...] = (
    _utilization,
    _memory,
    _throttle,
    _pcie_bytes,
    _scalar(
        names.GPU_UTILIZATION,
        ((names.GPU_TASK, "encoder"),),
        0.01,
        lambda n, h: n.nvmlDeviceGetEncoderUtilization(h)[0],
    ),
    _scalar(
        names.GPU_UTILIZATION,
        ((names.GPU_TASK, "decoder"),),
        0.01,
        lambda n, h: n.nvmlDeviceGetDecoderUtilization(h)[0],
    ),
    _scalar(names.GPU_TEMPERATURE, (), 1, lambda n, h: n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU)),
    _scalar(names.GPU_POWER, (), 1e-3, lambda n, h: n.nvmlDeviceGetPowerUsage(h)),
    _scalar(names.GPU_ENERGY, (), 1e-3, lambda n, h: n.nvmlDeviceGetTotalEnergyConsumption(h)),
    _scalar(
        names.GPU_CLOCK, ((names.CLOCK_TYPE, "sm"),), 1e6, lambda n, h: n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_SM)
    ),
    _scalar(
        names.GPU_CLOCK,
        ((names.CLOCK_TYPE, "memory"),),
        1e6,
        lambda n, h: n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_MEM),
    ),
    _scalar(
        names.GPU_ERRORS,
        ((names.ERROR_TYPE, "corrected"),),
        1,
        lambda n, h: n.nvmlDeviceGetTotalEccErrors(h, n.NVML_MEMORY_ERROR_TYPE_CORRECTED, n.NVML_VOLATILE_ECC),
    ),
    _scalar(
        names.GPU_ERRORS,
        ((names.ERROR_TYPE, "uncorrected"),),
        1,
        lambda n, h: n.nvmlDeviceGetTotalEccErrors(h, n.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, n.NVML_VOLATILE_ECC),
    ),
    _scalar(
        names.GPU_PCIE_THROUGHPUT,
        ((names.IO_DIRECTION, "transmit"),),
        1024,
        lambda n, h: n.nvmlDeviceGetPcieThroughput(h, n.NVML_PCIE_UTIL_TX_BYTES),
    ),
    _scalar(
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


class Bindings:
    """The loaded pynvml module, and its errors told apart by its own class and NVML_ERROR_* constants."""

    def __init__(self, nvml: Any) -> None:
        self.nvml = nvml
        self._names: dict[int, str] = {
            value: key.removeprefix("NVML_ERROR_").lower()
            for key, value in vars(nvml).items()
            if key.startswith("NVML_ERROR_") and isinstance(value, int)
        }
        # The field is not there (MIG, consumer cards, permissions, old drivers): no error.
        self._absent = {
            nvml.NVML_ERROR_NOT_SUPPORTED,
            nvml.NVML_ERROR_NO_PERMISSION,
            nvml.NVML_ERROR_FUNCTION_NOT_FOUND,
        }
        self.unavailable = {nvml.NVML_ERROR_LIBRARY_NOT_FOUND, nvml.NVML_ERROR_DRIVER_NOT_LOADED}
        # Stop asking the device; fetch its handle again next sample.
        self.lost = {self._names[nvml.NVML_ERROR_GPU_IS_LOST], self._names[nvml.NVML_ERROR_RESET_REQUIRED]}
        self.errors = Errors((nvml.NVMLError,), self._classify)

    def error_type(self, exc: Exception) -> str:
        """NVML's name for an ``NVMLError`` (``gpu_is_lost``)."""
        value: int = getattr(exc, "value", -1)
        return self._names.get(value, f"nvml_error_{value}")

    def _classify(self, exc: Exception) -> str | None:
        return None if getattr(exc, "value", None) in self._absent else self.error_type(exc)


class GpuSource:
    """NVML devices ``devices`` (None: all), each read by a sampler that ``sampler`` makes for it.
    Without an NVML library or driver: one info line, then nothing."""

    attributes: Attributes = ()

    def __init__(self, devices: Sequence[int] | None, sampler: Callable[[str, Source], Sampler]) -> None:
        self._wanted = devices
        self._sampler = sampler
        self._bindings: Bindings | None = None
        self._off = False
        self._devices: list[Sampler] | None = None

    def read(self, holder: bool) -> Reading:
        """Start NVML and find the devices (once), then ask each device's sampler for a sample."""
        reading = Reading()
        bindings = self._bindings or (None if self._off else self._start())
        if bindings is None:
            return reading
        if self._devices is None and reading.add(partial(self._discover, bindings), bindings.errors) is not None:
            return reading
        for device in self._devices or ():
            device.request(holder)
        return reading

    def close(self) -> None:
        """Stop the devices' samplers, and NVML unless a call is still in it: shutting NVML down under a
        hung call is not safe, and the process lets it go at exit anyway."""
        devices = self._devices or []
        for device in devices:
            device.stop()
        if self._bindings is not None and not any(device.busy for device in devices):
            self._bindings.nvml.nvmlShutdown()

    def _start(self) -> Bindings | None:
        """Load and initialize NVML on first use; None (GPU readings off for good) when it cannot."""
        self._off = True  # unless it starts, whatever it raises
        try:
            import pynvml
        except ImportError as exc:
            logger.info(NO_GPU, snake(type(exc).__name__), exc)
            return None
        bindings = Bindings(pynvml)
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            if getattr(exc, "value", None) in bindings.unavailable:
                logger.info(NO_GPU, bindings.error_type(exc), exc)
            else:
                warn_once(
                    "nvml-init",
                    "llmobs: NVML did not start (%s: %s); GPU readings are off",
                    bindings.error_type(exc),
                    exc,
                )
            return None
        self._off = False
        self._bindings = bindings
        return bindings

    def _discover(self, bindings: Bindings) -> list[Value]:
        """Find the devices to read and start their samplers (through ``Reading.add``, so that a
        failure is counted)."""
        count = bindings.nvml.nvmlDeviceGetCount()
        indices = range(count) if self._wanted is None else self._wanted
        missing = [i for i in indices if i >= count]
        if missing:
            warn_once("gpu-devices", "llmobs: GPU index(es) %s not present (%d GPUs); they are skipped", missing, count)
        self._devices = [self._sampler(f"gpu{i}", DeviceSource(bindings, i)) for i in indices if i < count]
        return []


class DeviceSource:
    """One GPU, on a sampler thread of its own. ``attributes`` are its series' attributes: provisional
    until its handle is fetched, then with its UUID and model."""

    def __init__(self, bindings: Bindings, index: int) -> None:
        self._bindings = bindings
        self._index = index
        self._handle: Any = None
        self._process = _process_memory(os.getpid())
        self.attributes: Attributes = (
            (names.HW_ID, f"gpu{index}"),
            (names.HW_NAME, f"gpu{index}"),
            (names.HW_TYPE, "gpu"),
        )

    def read(self, holder: bool) -> Reading:
        reading = Reading()
        errors, lost = self._bindings.errors, self._bindings.lost
        error = None if self._handle is not None else reading.add(self._connect, errors, self.attributes)
        answered = 0
        if error is None:
            for read in (*DEVICE_READERS, self._process) if holder else (self._process,):
                error = reading.add(
                    partial(read, self._bindings.nvml, self._handle, self.attributes), errors, self.attributes
                )
                if error in lost:  # what it answered before is not to be trusted either
                    self._handle = None
                    reading.values.clear()
                    break
                answered += error is None  # "not supported" is an answer too
        if holder:
            state = _state(error in lost or not answered, bool(reading.errors))
            reading.values += [
                (names.GPU_STATUS, extend(self.attributes, (names.HW_STATE, s)), float(s == state)) for s in STATES
            ]
        return reading

    def close(self) -> None:
        """Nothing to release: NVML is the ``GpuSource``'s."""

    def _connect(self) -> list[Value]:
        nvml = self._bindings.nvml
        handle = nvml.nvmlDeviceGetHandleByIndex(self._index)
        model, uuid = nvml.nvmlDeviceGetName(handle), nvml.nvmlDeviceGetUUID(handle)
        self.attributes = (
            (names.HW_ID, uuid),
            (names.HW_MODEL, model),
            (names.HW_NAME, f"gpu{self._index}"),
            (names.HW_TYPE, "gpu"),
            (names.HW_VENDOR, "NVIDIA"),
        )
        self._handle = handle
        return []


def _state(failed: bool, errors: bool) -> str:
    return "failed" if failed else "degraded" if errors else "ok"


def _reset_bindings_lock() -> None:
    """A fork while another thread held the bindings' load lock would leave the child deadlocked on it."""
    import sys

    pynvml: Any = sys.modules.get("pynvml")
    if pynvml is not None:
        pynvml.libLoadLock = threading.Lock()


os.register_at_fork(after_in_child=_reset_bindings_lock)
