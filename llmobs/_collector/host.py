"""Host readings (CPU, memory, disk and network bytes; the container's CPU and memory limits when
it has them) and this process's CPU and memory, through psutil."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import psutil

from .. import semconv as names
from .._attributes import Attributes
from .cgroup import Cgroup
from .reading import Errors, Reading, Value, extend, snake

USED = ((names.MEMORY_STATE, "used"),)
DIRECTIONS = (("transmit", "bytes_sent"), ("receive", "bytes_recv"))


class Ratio:
    """The change of one running total over the change of another since the previous call."""

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None

    def update(self, part: float, whole: float) -> float | None:
        last, self._last = self._last, (part, whole)
        if last is None or whole <= last[1]:
            return None
        return max(0.0, (part - last[0]) / (whole - last[1]))


class HostSource:
    """Each reading fails alone; the first sample only sets the baselines of the utilizations."""

    attributes: Attributes = ()

    def __init__(self) -> None:
        self._cgroup = Cgroup()
        self._process = psutil.Process()
        self._process_cpu = Ratio()
        self._system_cpu = Ratio()

    def read(self, holder: bool) -> Reading:
        reading = Reading()
        readers: list[Callable[[], list[Value]]] = [self._process_readings]
        if holder:
            readers += [self._cpu, self._memory, self._disk, self._network]
        for read in readers:
            reading.add(read, ERRORS)
        return reading

    def close(self) -> None:
        """Nothing to release: psutil opens nothing between samples."""

    def _process_readings(self) -> list[Value]:
        times = self._process.cpu_times()
        cpus = min(self._cgroup.cpu_quota() or float("inf"), len(os.sched_getaffinity(0)))
        share = self._process_cpu.update(times.user + times.system, time.monotonic() * cpus)
        values: list[Value] = [(names.PROCESS_MEMORY_USAGE, (), self._process.memory_info().rss)]
        if share is not None:
            values.append((names.PROCESS_CPU_UTILIZATION, (), share))
        return values

    def _cpu(self) -> list[Value]:
        quota = self._cgroup.cpu_quota()
        if quota is not None:
            used = self._cgroup.cpu_seconds()
            share = None if used is None else self._system_cpu.update(used, time.monotonic() * quota)
        else:
            t = psutil.cpu_times()
            # Linux counts guest time inside user and nice already.
            total = sum(t) - getattr(t, "guest", 0) - getattr(t, "guest_nice", 0)
            share = self._system_cpu.update(total - t.idle - getattr(t, "iowait", 0), total)
        return [] if share is None else [(names.SYSTEM_CPU_UTILIZATION, (), share)]

    def _memory(self) -> list[Value]:
        limit = self._cgroup.memory_limit()
        used = self._cgroup.memory_used() if limit is not None else None
        if limit is None or used is None:
            memory = psutil.virtual_memory()
            limit, used = memory.total, memory.total - memory.available
        return [
            (names.SYSTEM_MEMORY_LIMIT, (), limit),
            (names.SYSTEM_MEMORY_USAGE, USED, used),
            (names.SYSTEM_MEMORY_UTILIZATION, USED, used / limit),
        ]

    def _disk(self) -> list[Value]:
        disk = psutil.disk_io_counters()
        if disk is None:  # no disks at all
            return []
        return [
            (names.SYSTEM_DISK_IO, ((names.DISK_DIRECTION, "read"),), disk.read_bytes),
            (names.SYSTEM_DISK_IO, ((names.DISK_DIRECTION, "write"),), disk.write_bytes),
        ]

    def _network(self) -> list[Value]:
        return [
            (names.SYSTEM_NETWORK_IO, _interface(name, direction), getattr(counters, field))
            for name, counters in psutil.net_io_counters(pernic=True).items()
            if name != "lo"
            for direction, field in DIRECTIONS
        ]


def _interface(name: str, direction: str) -> Attributes:
    return extend(((names.INTERFACE, name),), (names.IO_DIRECTION, direction))


def _error_type(exc: Exception) -> str:
    return snake(type(exc).__name__)


# psutil's own errors (a process gone, access denied), unreadable /proc or /sys files, and cgroup
# files whose numbers do not parse.
ERRORS = Errors((psutil.Error, OSError, ValueError), _error_type)
