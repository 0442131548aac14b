"""The resource collector: GPU readings through NVML and host readings through psutil, sampled on
daemon threads every ``collect_interval`` and written into the registry, so they leave through the
same export as everything else. Importing this package imports neither pynvml nor psutil.

Device- and host-level readings, and the dependency probe, come from the one process per host and
service holding the host lock; per-process readings (CPU, memory, GPU memory) from every process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from .._config import Settings
from .._failsafe import guarded
from .host_lock import HostLock
from .probe import Prober
from .publish import Publisher, SeriesSource
from .sampler import Sampler, Source

Sampled = Sampler | Prober


class Collector:
    """Started by ``llmobs.init`` (unless ``gpu`` and ``host`` are off and no probe targets are set),
    stopped by ``shutdown``;
    ``service`` is the resource's ``service.name``, whichever way it was set."""

    def __init__(self, settings: Settings, registry: SeriesSource, service: str | None) -> None:
        self._interval = settings.collect_interval
        self._lock = HostLock(service)
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
        samplers: tuple[Sampled, ...] = _samplers(settings, registry) + _probers(settings, registry)
        self._loop(samplers)
        for sampler in samplers:
            sampler.stop()

    @guarded(where="resource collector")
    def _loop(self, samplers: Sequence[Sampled]) -> None:
        """Ask the samplers for a sample every interval until stopped."""
        while True:
            holder = self._lock.acquire()
            for sampler in samplers:
                sampler.request(holder)
            if self._stop.wait(self._interval):
                break


@guarded(where="starting the resource collector", default=())
def _samplers(settings: Settings, registry: SeriesSource) -> tuple[Sampler, ...]:
    """The sources are imported here, on the collector's thread, to keep psutil and pynvml off ``init``."""

    def sampler(name: str, source: Source) -> Sampler:
        publisher = Publisher(registry, settings.export_interval, settings.max_series)
        return Sampler(name, source, publisher, 2 * settings.collect_interval)

    samplers = []
    if settings.gpu:
        from .gpu import GpuSource

        samplers.append(sampler("gpu", GpuSource(settings.gpu_devices, sampler)))
        from .torch_memory import TorchMemorySource

        samplers.append(sampler("torch", TorchMemorySource()))
    if settings.host:
        from .host import HostSource

        samplers.append(sampler("host", HostSource()))
    return tuple(samplers)


@guarded(where="starting the dependency probe", default=())
def _probers(settings: Settings, registry: SeriesSource) -> tuple[Prober, ...]:
    if not settings.probe_targets:
        return ()
    return (Prober(settings.probe_targets, registry, settings.probe_interval, settings.probe_timeout),)
