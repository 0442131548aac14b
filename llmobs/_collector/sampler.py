"""Runs one source on its own daemon thread, one sample at a time, when the collector asks.

A sample still running ``stale_after`` seconds after it was asked for has its gauges withdrawn:
an NVML call can hang for seconds, and a hung reading must show as missing, never as fresh.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from .._attributes import Attributes
from .._failsafe import guarded, warn_once
from ..semconv import COLLECTOR_SOURCE, ERROR_TYPE
from .publish import Publisher
from .reading import Reading, extend

TIMEOUT = (ERROR_TYPE, "sample_timeout")


class Source(Protocol):
    """What a sampler runs: ``GpuSource``, one GPU's ``DeviceSource``, or ``HostSource``."""

    @property
    def attributes(self) -> Attributes:
        """What a timeout of this source is counted with: a GPU's attributes, or none."""

    def read(self, holder: bool) -> Reading:
        """One sample; device- and host-level readings only when ``holder`` (of the host lock)."""

    def close(self) -> None:
        """Release what the source opened, on the sampler's own thread."""


class Sampler:
    """One source's thread; ``request`` is called by the collector every interval."""

    def __init__(self, name: str, source: Source, publisher: Publisher, stale_after: float) -> None:
        self._name = name
        self._timed: Attributes = ((COLLECTOR_SOURCE, name),)
        self._source = source
        self._publisher = publisher
        self._stale_after = stale_after
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._asked: float | None = None  # when the sample in progress was asked for
        self._holder = False
        self._stale = False
        self._stopping = False
        threading.Thread(target=self._run, name=f"llmobs-{name}", daemon=True).start()

    def request(self, holder: bool) -> None:
        """Ask for a sample; if the previous one is still running, check whether it went stale."""
        now = time.monotonic()
        with self._lock:
            if self._asked is None:
                self._asked, self._holder = now, holder
                self._wake.set()
            elif not self._stale and now - self._asked > self._stale_after:
                self._stale = True
                self._publisher.withdraw()
                self._publisher.count(extend(self._source.attributes, TIMEOUT))
                warn_once(
                    f"stale:{self._name}",
                    "llmobs: a %s sample has not finished after %.1fs; its "
                    "readings are not exported until a sample completes",
                    self._name,
                    self._stale_after,
                )

    def stop(self) -> None:
        """End the thread after the sample in progress, if any."""
        self._stopping = True
        self._wake.set()

    @property
    def busy(self) -> bool:
        """A sample is in progress (perhaps stuck in a call that never returns)."""
        with self._lock:
            return self._asked is not None

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                break
            began = time.monotonic()
            reading = self._sample() or Reading(failed=True)
            ended = time.monotonic()
            with self._lock:
                asked = self._asked if self._asked is not None else began
                fresh = not self._stale and ended - asked <= self._stale_after
                self._asked, self._stale = None, False
            self._publisher.publish(reading, fresh)
            self._publisher.timed(self._timed, max(0.0, began - asked), ended - began)
        self._close()

    @guarded(where="resource collector sample")
    def _sample(self) -> Reading:
        return self._source.read(self._holder)

    @guarded(where="closing the resource collector")
    def _close(self) -> None:
        self._source.close()
