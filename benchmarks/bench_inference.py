"""Per-call overhead of ``@llmobs.monitor_inference`` against prometheus_client and hand-written
OpenTelemetry SDK code, all in one process: ``python -m benchmarks.bench_inference [--quick]``.

Each case runs ``repeats`` times, cases interleaved, with the GC off as in timeit; the median ns per
call is reported and the bare call subtracted. Span cases run last (a global TracerProvider cannot be
unset) with a quarter of the calls, since each costs tens of µs. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import platform
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from functools import partial
from pathlib import Path

import prometheus_client
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import llmobs

ITEMS = 1000
"""Items yielded by each stream."""
ATTRS = {"gen_ai.request.model": "m", "gen_ai.operation.name": "chat"}


def f(x: int) -> int:
    """The function under test."""
    return x


def tokens() -> Iterator[int]:
    """A stream of ``ITEMS`` items."""
    yield from range(ITEMS)


async def atokens() -> AsyncIterator[int]:
    """An async stream of ``ITEMS`` items."""
    for i in range(ITEMS):
        yield i


class NullExporter(SpanExporter):
    """Accepts spans and drops them, counting them to prove they were made."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


def prometheus_case() -> Callable[[int], int]:
    """``Histogram.time()`` plus two counters, one pre-bound label, own registry."""
    registry = prometheus_client.CollectorRegistry()
    latency = prometheus_client.Histogram("latency_seconds", "", ["model"], registry=registry).labels("m")
    requests = prometheus_client.Counter("requests", "", ["model"], registry=registry).labels("m")
    used = prometheus_client.Counter("tokens", "", ["model"], registry=registry).labels("m")

    def call(x: int) -> int:
        with latency.time():
            result = f(x)
        requests.inc()
        used.inc()
        return result

    return call


def sdk_case(tracer: trace.Tracer | None) -> Callable[[int], int]:
    """A histogram and a counter with 2 attributes via the OpenTelemetry SDK; a span too if ``tracer``."""
    meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("bench")
    duration = meter.create_histogram("duration", "s")
    requests = meter.create_counter("requests")
    perf_counter = time.perf_counter

    def metrics(x: int) -> int:
        start = perf_counter()
        result = f(x)
        duration.record(perf_counter() - start, ATTRS)
        requests.add(1, ATTRS)
        return result

    if tracer is None:
        return metrics

    def traced(x: int) -> int:
        with tracer.start_as_current_span("chat m"):
            return metrics(x)

    return traced


def tenant_case(monitor: Callable[[Callable[[int], int]], Callable[[int], int]], fresh: bool) -> Callable[[int], int]:
    """A call that names its tenant at run time: always the same one, or a new one each call (past the
    series cap once ``max_series`` calls have run)."""
    tenants = itertools.count() if fresh else itertools.repeat(0)

    @monitor
    def call(x: int) -> int:
        llmobs.current_inference().set_attribute("tenant", next(tenants))
        return x

    for _ in range(2100 if fresh else 1):  # the default cap is 2000 attribute sets
        call(0)
    return call


def per_call(call: Callable[[int], int], number: int) -> float:
    """ns per ``call(1)`` over ``number`` calls in a timeit loop."""
    return timeit.Timer("call(1)", globals={"call": call}).timeit(number) * 1e9 / number


def per_item(stream: Callable[[], Iterator[int]], number: int) -> float:
    """ns per item of ``number`` streams drained by a ``for`` loop."""
    timer = timeit.Timer("for _ in stream(): pass", globals={"stream": stream})
    return timer.timeit(number) * 1e9 / (number * ITEMS)


def per_async_item(loop: asyncio.AbstractEventLoop, stream: Callable[[], AsyncIterator[int]], number: int) -> float:
    """ns per item of ``number`` async streams drained by ``async for`` in ``loop``."""

    async def drain() -> int:
        start = time.perf_counter_ns()
        for _ in range(number):
            async for _ in stream():
                pass
        return time.perf_counter_ns() - start

    gc.disable()
    try:
        return loop.run_until_complete(drain()) / (number * ITEMS)
    finally:
        gc.enable()


Case = tuple[Callable[[int], float], int]
"""``(measure, count)``: ``measure(count)`` times ``count`` calls (or streams) and returns ns per unit."""


def run(cases: dict[str, Case], repeats: int, samples: dict[str, list[float]]) -> None:
    """Warm each case up, then time every case ``repeats`` times, interleaved."""
    for measure, count in cases.values():
        measure(max(1, count // 100))
    for _ in range(repeats):
        for name, (measure, count) in cases.items():
            samples.setdefault(name, []).append(measure(count))


def git_commit() -> str:
    """The short commit of the checkout, or '?'."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def verdict(value: float, target: float) -> str:
    """PASS or MISS against a target that ``value`` must not exceed."""
    return "PASS" if value <= target else "MISS"


def at_least(value: float, target: float) -> str:
    """PASS or MISS against a target that ``value`` must reach."""
    return "PASS" if value >= target else "MISS"


def spread(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    """``min-max`` of ``values`` times ``scale``: the range beside a median."""
    return f"{min(values) * scale:.{digits}f}-{max(values) * scale:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k calls, 3 repeats")
    args = parser.parse_args(argv)
    number, repeats = (20_000, 3) if args.quick else (200_000, 7)
    streams = number // ITEMS
    print(f"command: python -m benchmarks.bench_inference{' --quick' if args.quick else ''}")
    print(
        f"python {platform.python_version()} ({platform.python_implementation()}), {platform.platform()}, "
        f"{os.cpu_count()} cpus, commit {git_commit()}"
    )
    print(f"{number} calls x {repeats} repeats (span cases {number // 4}); streams of {ITEMS} items x {streams}")

    os.environ["OTEL_METRICS_EXPORTER"] = "none"  # no summary printed, no exporter thread
    llmobs.init(service_name="bench", traces=False, export_interval=3600, gpu=False, host=False)
    monitor = llmobs.monitor_inference(model="m", operation="chat")
    monitored = monitor(f)
    loop = asyncio.new_event_loop()
    samples: dict[str, list[float]] = {}
    run(
        {
            "bare call": (partial(per_call, f), number),
            "prometheus_client": (partial(per_call, prometheus_case()), number),
            "OTel SDK metrics": (partial(per_call, sdk_case(None)), number),
            "llmobs metrics-only": (partial(per_call, monitored), number),
            "llmobs known attribute set": (partial(per_call, tenant_case(monitor, fresh=False)), number),
            "llmobs past the series cap": (partial(per_call, tenant_case(monitor, fresh=True)), number),
            "stream bare /item": (partial(per_item, tokens), streams),
            "stream llmobs /item": (partial(per_item, monitor(tokens)), streams),
            "async stream bare /item": (partial(per_async_item, loop, atokens), streams),
            "async stream llmobs /item": (partial(per_async_item, loop, monitor(atokens)), streams),
        },
        repeats,
        samples,
    )
    loop.close()

    llmobs.shutdown()
    exporter = NullExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    llmobs.init(service_name="bench", export_interval=3600, gpu=False, host=False)
    span_calls = number // 4
    run(
        {
            "bare call": (partial(per_call, f), number),
            "OTel SDK span+metrics": (partial(per_call, sdk_case(provider.get_tracer("bench"))), span_calls),
            "llmobs with spans": (partial(per_call, monitored), span_calls),
        },
        repeats,
        samples,
    )
    llmobs.shutdown()
    provider.shutdown()
    expected_spans = 2 * (span_calls // 100 + repeats * span_calls)

    median = {name: statistics.median(values) for name, values in samples.items()}
    base = {"stream": median["stream bare /item"], "async": median["async stream bare /item"]}
    overhead = {name: value - base.get(name.split()[0], median["bare call"]) for name, value in median.items()}
    print(f"\n{'case':<28}{'ns/call':>10}{'min':>10}{'overhead ns':>13}")
    for name, value in median.items():
        print(f"{name:<28}{value:>10.0f}{min(samples[name]):>10.0f}{overhead[name]:>13.0f}")
    print(f"spans exported: {exporter.spans} of {expected_spans}")

    metrics_ratio = overhead["llmobs metrics-only"] / overhead["prometheus_client"]
    spans_ratio = overhead["llmobs with spans"] / overhead["OTel SDK span+metrics"]
    overflow_ratio = overhead["llmobs past the series cap"] / overhead["llmobs known attribute set"]
    sync_us = overhead["stream llmobs /item"] / 1000
    async_us = overhead["async stream llmobs /item"] / 1000
    print()
    print(
        f"llmobs metrics-only / prometheus_client overhead: {metrics_ratio:6.2f}  "
        f"(target <= 0.5)  {verdict(metrics_ratio, 0.5)}"
    )
    print(
        f"llmobs with spans / OTel SDK span+metrics:        {spans_ratio:6.2f}  "
        f"(target <= 1.0)  {verdict(spans_ratio, 1.0)}"
    )
    print(
        f"past the series cap / known attribute set:        {overflow_ratio:6.2f}  "
        f"(target <= 1.2)  {verdict(overflow_ratio, 1.2)}"
    )
    print(
        f"stream overhead per token, sync:                  {sync_us:6.3f} µs (target <= 0.3)  {verdict(sync_us, 0.3)}"
    )
    print(
        f"stream overhead per token, async:                 {async_us:6.3f} µs (target <= 0.3)  "
        f"{verdict(async_us, 0.3)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
