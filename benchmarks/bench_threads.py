"""Calls per second of a monitored function called from N threads at once, llmobs metrics-only beside
prometheus_client (``Histogram.time()`` plus a counter), in one process:
``python -m benchmarks.bench_threads [--quick]``.

The same number of calls is split over 1, 2, 4, 8 and 16 threads started together; the two cases
alternate in each repeat, and the median calls/s with its range is printed. Plain ``def`` FastAPI
endpoints and threaded gunicorn or Flask servers call instrumented code like this. Timings are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable

import llmobs

from .bench_inference import at_least, f, git_commit, prometheus_case, spread

THREADS = (1, 2, 4, 8, 16)


def calls_per_second(call: Callable[[int], int], calls: int, threads: int) -> float:
    """Calls per second of ``calls`` calls of ``call`` split over ``threads`` threads started together."""
    each = calls // threads
    start = threading.Barrier(threads + 1)

    def work() -> None:
        start.wait()
        for _ in range(each):
            call(1)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    return each * threads / (time.perf_counter() - began)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k calls, 3 repeats")
    args = parser.parse_args(argv)
    calls, repeats = (20_000, 3) if args.quick else (200_000, 5)
    print(f"command: python -m benchmarks.bench_threads{' --quick' if args.quick else ''}")
    print(f"{os.cpu_count()} cpus, commit {git_commit()}")
    print(f"{calls} calls split over each thread count, {repeats} repeats, cases alternating")
    os.environ["OTEL_METRICS_EXPORTER"] = "none"
    llmobs.init(service_name="bench", traces=False, export_interval=3600, gpu=False, host=False)
    cases = {"llmobs": llmobs.monitor_inference(model="m", operation="chat")(f), "prometheus_client": prometheus_case()}
    samples: dict[tuple[str, int], list[float]] = {}
    for call in cases.values():
        calls_per_second(call, calls // 10, 2)  # warm up
    for _ in range(repeats):
        for threads in THREADS:
            for name, call in cases.items():
                samples.setdefault((name, threads), []).append(calls_per_second(call, calls, threads))
    llmobs.shutdown()

    median = {key: statistics.median(values) for key, values in samples.items()}
    single = median[("llmobs", 1)]
    print(f"\n{'threads':>7}{'llmobs M/s':>12}{'range':>14}{'prom M/s':>10}{'range':>14}{'vs prom':>9}{'vs 1 thr':>10}")
    for threads in THREADS:
        ours, theirs = samples[("llmobs", threads)], samples[("prometheus_client", threads)]
        versus, own = (
            median[("llmobs", threads)] / median[("prometheus_client", threads)],
            median[("llmobs", threads)] / single,
        )
        print(
            f"{threads:>7}{median[('llmobs', threads)] / 1e6:>12.3f}{spread(ours, 1e-6):>14}"
            f"{median[('prometheus_client', threads)] / 1e6:>10.3f}{spread(theirs, 1e-6):>14}"
            f"{versus:>8.2f}x{own:>9.2f}x  {at_least(versus, 2.0)} {at_least(own, 0.8)}"
        )
    print("\ntargets: vs prometheus_client >= 2x (first verdict); vs llmobs's own 1-thread figure >= 0.8x (second)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
