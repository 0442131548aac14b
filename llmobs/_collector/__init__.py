"""The resource collector: GPU readings through NVML and host readings through psutil, sampled on
daemon threads every ``collect_interval`` and written into the registry, so they leave through the
same export as everything else. Importing this package imports neither pynvml nor psutil.

Device- and host-level readings come from the one process per host and service holding the host lock;
per-process readings (CPU, memory, GPU memory) from every process.
"""

from __future__ import annotations

import threading
import time

from .._config import Settings
from .._failsafe import internal_error
from .host_lock import HostLock
from .publish import Publisher, SeriesSource
from .sampler import Sampler


class Collector:
    """Started by ``llmobs.init`` (unless ``gpu`` and ``host`` are both off), stopped by ``shutdown``."""

    def __init__(self, settings: Settings, registry: SeriesSource) -> None:
        self._interval = settings.collect_interval
        self._lock = HostLock(settings.service_name)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(settings, registry), name="llmobs-collector", daemon=True
        )
        self._thread.start()

    def stop(self, deadline: float) -> None:
        """Stop sampling and hand the host lock over. Samplers are not waited for: one may be stuck in
        NVML, and they have nothing left to flush."""
        self._stop.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._lock.release()

    def _run(self, settings: Settings, registry: SeriesSource) -> None:
        samplers: list[Sampler] = []
        try:
            samplers = _samplers(settings, registry)
            while True:
                holder = self._lock.acquire()
                for sampler in samplers:
                    sampler.request(holder)
                if self._stop.wait(self._interval):
                    break
        except Exception:
            internal_error("resource collector")
        for sampler in samplers:
            sampler.stop()


def _samplers(settings: Settings, registry: SeriesSource) -> list[Sampler]:
    """The sources are imported here, on the collector's thread, to keep psutil and pynvml off ``init``."""
    stale_after = 2 * settings.collect_interval
    samplers = []
    if settings.gpu:
        from .gpu import GpuSource

        samplers.append(Sampler("gpu", GpuSource(settings.gpu_devices), _publisher(settings, registry), stale_after))
    if settings.host:
        from .host import HostSource

        samplers.append(Sampler("host", HostSource(), _publisher(settings, registry), stale_after))
    return samplers


def _publisher(settings: Settings, registry: SeriesSource) -> Publisher:
    return Publisher(registry, settings.export_interval, settings.max_series)
