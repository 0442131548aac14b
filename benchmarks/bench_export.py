"""What an export costs the callers and the process as the number of attribute sets grows, llmobs beside
the plain OpenTelemetry SDK: ``python -m benchmarks.bench_export [--quick]``.

- Lock hold: the longest time one export holds the registry lock, at 2000 attribute sets (the lock is
  wrapped, before any series exists, by a proxy that times what the export thread holds).
- Worst call: a thread records into one series while another exports 2000 sets every 20 ms; the same
  export of a second registry of the same size, whose lock no caller shares, is the baseline (the same
  GIL contention, no lock contention). Cases alternate; medians of the worst call per round.
- Memory: heap (tracemalloc) per attribute set of 10000 duration-only calls that name a tenant,
  ``@monitor_inference`` against one SDK ``histogram.record`` per set.
- Export CPU: thread CPU time of one export of 10000 sets into points, llmobs
  (``Points.build(registry.collect())``) against the SDK's ``InMemoryMetricReader.get_metrics_data()``.

Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from types import TracebackType

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

import llmobs
from llmobs import _lifecycle
from llmobs._aggregation import Registry
from llmobs._points import Points
from llmobs.semconv import REQUEST_DURATION

from .bench_inference import git_commit, spread, verdict

SETS = 2000
BIG = 10000
PERIOD = 0.02
RESOURCE = Resource.create({"service.name": "bench"})


class TimedLock:
    """A re-entrant lock that remembers the longest hold of one thread (the exporter's)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.owner = -1
        self.longest = 0.0
        self._since = 0.0
        self._depth = 0

    def __enter__(self) -> bool:
        self._lock.acquire()
        if threading.get_ident() == self.owner:
            self._depth += 1
            if self._depth == 1:
                self._since = time.perf_counter()
        return True

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if threading.get_ident() == self.owner:
            self._depth -= 1
            if self._depth == 0:
                self.longest = max(self.longest, time.perf_counter() - self._since)
        self._lock.release()

    def _at_fork_reinit(self) -> None:
        self._lock._at_fork_reinit()  # type: ignore[attr-defined]


def registry_of(sets: int) -> tuple[Registry, TimedLock]:
    """A registry of ``sets`` duration series, each with a few values, behind a timed lock."""
    registry = Registry(max_series=sets + 1)
    lock = registry._lock = TimedLock()  # type: ignore[assignment]
    for index in range(sets):
        series = registry.series(REQUEST_DURATION, (("gen_ai.request.model", f"m{index}"),))
        for value in (0.02, 0.1, 0.3):
            series.record(value)
    return registry, lock


def worst_call(recorded: Registry, exported: Registry, seconds: float) -> float:
    """The longest single record into ``recorded`` while another thread exports ``exported``."""
    series = recorded.series(REQUEST_DURATION, (("gen_ai.request.model", "m0"),))
    points, stop, worst = Points(RESOURCE), threading.Event(), 0.0

    def export() -> None:
        while not stop.wait(PERIOD):
            points.build(exported.collect())

    exporter = threading.Thread(target=export)
    exporter.start()
    clock, end = time.perf_counter, time.perf_counter() + seconds
    while (now := clock()) < end:
        series.record(0.1)
        worst = max(worst, clock() - now)
    stop.set()
    exporter.join()
    return worst


def hold(registry: Registry, lock: TimedLock, exports: int) -> float:
    """The longest lock hold of one of ``exports`` exports, run on this thread."""
    lock.owner, lock.longest, points = threading.get_ident(), 0.0, Points(RESOURCE)
    for _ in range(exports):
        points.build(registry.collect())
    lock.owner = -1
    return lock.longest


def heap_per_set(record: Callable[[int], object], sets: int) -> float:
    """Bytes of heap per attribute set that ``record(index)`` for ``sets`` indexes leaves allocated."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for index in range(sets):
        record(index)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / sets


def cpu(export: Callable[[], object]) -> float:
    """Thread CPU seconds of one ``export()``."""
    began = time.thread_time()
    export()
    return time.thread_time() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer and shorter rounds")
    args = parser.parse_args(argv)
    rounds, seconds = (3, 0.5) if args.quick else (7, 2.0)
    print(f"command: python -m benchmarks.bench_export{' --quick' if args.quick else ''}")
    print(f"{os.cpu_count()} cpus, commit {git_commit()}, {rounds} rounds")

    shared, shared_lock = registry_of(SETS)
    other, _ = registry_of(SETS)
    holds, contended, alone = [], [], []
    for _ in range(rounds):
        holds.append(hold(shared, shared_lock, 5))
        contended.append(worst_call(shared, shared, seconds))
        alone.append(worst_call(shared, other, seconds))
    hold_ms = statistics.median(holds) * 1e3
    ratio = statistics.median(contended) / statistics.median(alone)
    print(f"\nat {SETS} sets, export every {PERIOD * 1e3:.0f} ms:")
    print(f"  lock held per export        {hold_ms:8.2f} ms ({spread(holds, 1e3)})")
    print(f"  worst call, shared lock     {statistics.median(contended) * 1e3:8.2f} ms ({spread(contended, 1e3)})")
    print(f"  worst call, unshared lock   {statistics.median(alone) * 1e3:8.2f} ms ({spread(alone, 1e3)})")

    os.environ["OTEL_METRICS_EXPORTER"] = "none"
    llmobs.init(service_name="bench", traces=False, export_interval=3600, gpu=False, host=False, max_series=BIG + 10)

    @llmobs.monitor_inference(model="m", operation="chat")
    def call(tenant: int) -> int:
        llmobs.current_inference().set_attribute("tenant", tenant)
        return tenant

    reader = InMemoryMetricReader()
    histogram = MeterProvider(metric_readers=[reader]).get_meter("bench").create_histogram("duration", "s")
    ours = heap_per_set(call, BIG)
    theirs = heap_per_set(lambda i: histogram.record(0.1, {"gen_ai.request.model": "m", "tenant": i}), BIG)
    registry, points = _lifecycle.state.registry, Points(RESOURCE)
    assert isinstance(registry, Registry)
    export_ours, export_theirs = [], []
    for _ in range(rounds):
        export_ours.append(cpu(lambda: points.build(registry.collect())))
        export_theirs.append(cpu(reader.get_metrics_data))
    llmobs.shutdown()
    cpu_ratio = statistics.median(export_ours) / statistics.median(export_theirs)
    print(f"\nat {BIG} duration-only attribute sets:")
    print(f"  heap per set                llmobs {ours:6.0f} B   OTel SDK {theirs:6.0f} B")
    print(
        f"  export CPU                  llmobs {statistics.median(export_ours) * 1e3:6.1f} ms  "
        f"OTel SDK {statistics.median(export_theirs) * 1e3:6.1f} ms"
    )
    print()
    print(f"lock held per export at {SETS} sets:      {hold_ms:6.2f} ms (target <= 1)     {verdict(hold_ms, 1.0)}")
    print(f"worst call, shared / unshared lock:   {ratio:6.2f}    (target <= 2)     {verdict(ratio, 2.0)}")
    print(f"heap per duration-only set:           {ours:6.0f} B  (target <= 1024)  {verdict(ours, 1024)}")
    print(f"export CPU at {BIG} sets / OTel SDK:  {cpu_ratio:6.2f}    (target <= 1)     {verdict(cpu_ratio, 1.0)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
