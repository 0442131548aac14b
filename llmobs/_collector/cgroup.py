"""The limits of the cgroup v2 this process runs in, as a container sees them under /sys/fs/cgroup
(its own cgroup namespace). On a host, or without limits, every answer is None."""

from __future__ import annotations

import os

ROOT = "/sys/fs/cgroup"


class Cgroup:
    def __init__(self, root: str | None = None) -> None:
        self._root = root or ROOT
        # A host's root cgroup has neither file: then no file is opened (and fails) every sample.
        self._container = any(os.path.exists(f"{self._root}/{name}") for name in ("cpu.max", "memory.max"))

    def cpu_quota(self) -> float | None:
        """CPUs the container may use (``cpu.max`` quota / period); None when unlimited."""
        fields = (self._read("cpu.max") or "max").split()
        if fields[0] == "max" or len(fields) != 2:
            return None
        return int(fields[0]) / int(fields[1])

    def cpu_seconds(self) -> float | None:
        """CPU time the container used, all its processes together."""
        usage = self._stat("cpu.stat").get("usage_usec")
        return None if usage is None else usage / 1e6

    def memory_limit(self) -> int | None:
        value = (self._read("memory.max") or "max").strip()
        return None if value == "max" else int(value)

    def memory_used(self) -> int | None:
        """``memory.current`` less the inactive page cache the kernel reclaims first, as ``docker stats``
        and the kubelet's working set count it."""
        current = self._read("memory.current")
        if current is None:
            return None
        return int(current) - self._stat("memory.stat").get("inactive_file", 0)

    def _stat(self, name: str) -> dict[str, int]:
        pairs = (line.split() for line in (self._read(name) or "").splitlines())
        return {p[0]: int(p[1]) for p in pairs if len(p) == 2}

    def _read(self, name: str) -> str | None:
        if not self._container:
            return None
        try:
            with open(f"{self._root}/{name}") as f:
                return f.read()
        except OSError:
            return None
