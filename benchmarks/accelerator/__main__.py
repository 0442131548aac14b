"""Metrics-only overhead per call: pure-Python llmobs, llmobs with the prototype's C histogram record, the
prototype's whole C wrapper, and prometheus_client, interleaved in one process (bench_inference's timing).
Before timing, checks that the C wrapper behaves as the Python one where a user can tell."""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import types
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import llmobs
from llmobs import _handle, _lifecycle
from llmobs import semconv as names
from llmobs._aggregation import HistogramSeries
from llmobs._call import NO_USAGE, Site
from llmobs._profiling import PLAN

from ..bench_inference import f, git_commit, per_call, prometheus_case, run, spread
from . import build


def site_of(wrapper: Callable[..., Any]) -> Site:
    """The ``Site`` a monitored function's closure holds."""
    assert isinstance(wrapper, types.FunctionType) and wrapper.__closure__ is not None
    site = wrapper.__closure__[wrapper.__code__.co_freevars.index("site")].cell_contents
    assert isinstance(site, Site)
    return site


def with_c_histogram(accel: Any, monitor: Callable[[Any], Any]) -> Callable[[int], int]:
    """The pure-Python wrapper recording its duration into the prototype's histogram."""
    monitored: Callable[[int], int] = monitor(f)
    monitored(1)  # binds the site
    site_of(monitored).duration = accel.Histogram(names.REQUEST_DURATION.buckets)
    return monitored


def c_wrapper(accel: Any, monitor: Callable[[Any], Any], fn: Callable[..., Any] = f) -> Any:
    """The prototype's whole wrapper, falling back to the pure-Python one off its fast path."""
    python = monitor(fn)
    site = site_of(python)

    def end(entry: _handle.Entry, result: Any) -> None:
        site.end(_handle.call_of(entry), None, result)

    def fail(entry: _handle.Entry, exc: BaseException) -> None:
        site.end(_handle.call_of(entry), exc)

    duration = accel.Histogram(names.REQUEST_DURATION.buckets)
    return accel.Monitored(fn, site, _lifecycle.state, PLAN, _handle._current, NO_USAGE, python, end, fail, duration)


def check(accel: Any, monitor: Callable[[Any], Any]) -> None:
    """What a user can tell: the handle inside the call, the same exception object, nothing left current
    or in flight, every call counted; the C histogram buckets as the Python one does."""
    monitored = c_wrapper(accel, monitor)
    monitored(1)  # binds the site, through the Python wrapper
    for _ in range(100):
        assert monitored(1) == 1
    assert sum(monitored.duration.snapshot()[0]) == 100 and monitored.in_flight == 0

    def tokens(x: int) -> int:
        llmobs.current_inference().record_tokens(input=x)
        return x

    error = ValueError("the user's")

    def fails() -> None:
        raise error

    assert c_wrapper(accel, monitor, tokens)(3) == 3 and _handle.current() is None
    try:
        c_wrapper(accel, monitor, fails)()
    except ValueError as raised:
        assert raised is error and _handle.current() is None
    python = _lifecycle.state.registry.series(names.REQUEST_DURATION, (("check", True),))
    assert isinstance(python, HistogramSeries)
    c = accel.Histogram(python.bounds)
    for value in (-1.0, 0.0, 0.005, 0.01, 0.5, 1.0, 2.0, 100.0, float("nan"), 2.0**64, 10**400):
        python.record(value)
        c.record(value)
    assert c.snapshot() == (tuple(python.counts), python.sum, python.min, python.max)


def record_case(series: Any) -> Callable[[int], int]:
    """One histogram record per call, in a function shaped as the bare one."""

    def call(x: int) -> int:
        series.record(x * 0.001)
        return x

    return call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k calls, 3 repeats")
    args = parser.parse_args(argv)
    number, repeats = (20_000, 3) if args.quick else (200_000, 7)
    print(f"command: python -m benchmarks.accelerator{' --quick' if args.quick else ''}")
    print(f"{os.cpu_count()} cpus, commit {git_commit()}, {number} calls x {repeats} repeats")
    os.environ["OTEL_METRICS_EXPORTER"] = "none"
    llmobs.init(service_name="bench", traces=False, export_interval=3600, gpu=False, host=False)
    monitor = llmobs.monitor_inference(model="m", operation="chat")
    with tempfile.TemporaryDirectory() as directory:
        accel = build(Path(directory))
    logging.disable(logging.WARNING)  # the check's dropped values are warned about
    check(accel, monitor)
    logging.disable(logging.NOTSET)
    bounds = names.REQUEST_DURATION.buckets
    samples: dict[str, list[float]] = {}
    run(
        {
            "bare call": (partial(per_call, f), number),
            "prometheus_client": (partial(per_call, prometheus_case()), number),
            "llmobs metrics-only": (partial(per_call, monitor(f)), number),
            "llmobs, C histogram": (partial(per_call, with_c_histogram(accel, monitor)), number),
            "C wrapper": (partial(per_call, c_wrapper(accel, monitor)), number),
            "record: Python": (
                partial(per_call, record_case(_lifecycle.state.registry.series(names.REQUEST_DURATION, ()))),
                number,
            ),
            "record: C": (partial(per_call, record_case(accel.Histogram(bounds))), number),
        },
        repeats,
        samples,
    )
    llmobs.shutdown()
    bare = statistics.median(samples["bare call"])
    prometheus = statistics.median(samples["prometheus_client"]) - bare
    print(f"\n{'case':<24}{'ns/call':>9}{'overhead':>10}{'range':>14}{'/ prometheus':>14}")
    for name, values in samples.items():
        overhead = statistics.median(values) - bare
        ratio = f"{overhead / prometheus:14.2f}" if name != "bare call" else ""
        print(f"{name:<24}{statistics.median(values):>9.0f}{overhead:>10.0f}{spread(values, digits=0):>14}{ratio}")
    python = statistics.median(samples["llmobs metrics-only"]) - bare
    for name in ("llmobs, C histogram", "C wrapper"):
        print(f"{name} / pure-Python llmobs overhead: {(statistics.median(samples[name]) - bare) / python:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
