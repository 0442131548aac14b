"""Cost of the local history: ``python -m benchmarks.bench_history [--intervals 20] [--days 7]``.

1. Writing one interval at 2000 series (1000 duration histograms, 1000 counters, all changed), as the
   export thread does: open, one transaction, prune, close. Median and worst per interval, and the
   file's growth per interval.
2. ``llmobs report`` (load, text, charts, HTML) over 7 days of 10 s intervals of a typical embedded
   default (3 models, errors, TTFT/TPOT, tokens, host readings: 22 series), generated straight into
   SQLite. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import tempfile
import time

from llmobs import semconv as names
from llmobs._aggregation import Registry
from llmobs._attributes import freeze
from llmobs._history import connect, write
from llmobs._points import Points

SERIES = 2000


def bench_write(directory: str, intervals: int) -> None:
    from opentelemetry.sdk.resources import Resource

    registry, points = Registry(max_series=SERIES), Points(Resource({"service.name": "bench"}), delta=True)
    path = os.path.join(directory, "write.db")
    durations, sizes = [], []
    for i in range(intervals):
        for n in range(SERIES // 2):
            registry.series(names.REQUEST_DURATION, freeze({names.MODEL: f"model-{n}"})).record(0.01 * (n % 50 + 1))
            registry.series(names.BATCH_ITEMS, freeze({names.BATCH_NAME: f"job-{n}"})).record(1)
        data = points.build(registry.collect())
        start = time.perf_counter()
        write(path, data, i, i + 10, 7 * 86_400, 2**30)
        durations.append(time.perf_counter() - start)
        points.commit(data)
        sizes.append(os.path.getsize(path))
    growth = (sizes[-1] - sizes[0]) / max(intervals - 1, 1)
    print(
        f"history write, {SERIES} series: median {statistics.median(durations) * 1000:.1f} ms per interval, "
        f"worst {max(durations) * 1000:.1f} ms; file grows {growth / 1024:.0f} KiB per interval"
    )


def bench_report(directory: str, days: float) -> None:
    path = os.path.join(directory, "report.db")
    end = time.time()
    intervals = int(days * 86_400 / 10)
    generated = time.perf_counter()
    _generate(path, end - intervals * 10, intervals)
    size = os.path.getsize(path) >> 20
    print(f"generated {intervals} intervals in {time.perf_counter() - generated:.1f} s ({size} MiB)")
    from llmobs._assets.thresholds import DEFAULTS
    from llmobs._report.data import load_history
    from llmobs._report.html import page
    from llmobs._report.plots import charts
    from llmobs._report.text import lines

    start = time.perf_counter()
    report = load_history(path, end - days * 86_400 - 10, end + 1)
    loaded = time.perf_counter()
    summary = lines(report)
    document = page(summary, charts(report, DEFAULTS))
    done = time.perf_counter()
    print(
        f"report over {days:g} days of 10 s intervals: {done - start:.1f} s "
        f"(load {loaded - start:.1f} s, text + charts + HTML {done - loaded:.1f} s; {len(document) >> 10} KiB of HTML)"
    )


def _generate(path: str, first: float, intervals: int) -> None:
    """``intervals`` intervals of 22 series each, written in one transaction."""
    connect(path).close()  # the schema
    bounds = list(names.DURATION_BUCKETS)
    counts = json.dumps([0, 5, 10, 3, 1])  # stored without trailing zeros
    rows = []
    for model in ("chat-70b", "chat-8b", "embed"):
        m = {names.MODEL: model}
        rows += [
            (names.REQUEST_DURATION.name, m, 0.4, 19, counts),
            (names.REQUEST_DURATION.name, {**m, names.ERROR_TYPE: "TimeoutError"}, 0.1, 1, counts),
            (names.TIME_TO_FIRST_TOKEN.name, m, 0.2, 19, counts),
            (names.TIME_PER_OUTPUT_TOKEN.name, m, 0.1, 19, counts),
            (names.TOKEN_USAGE.name, {**m, names.TOKEN_TYPE: "input"}, 900.0, 19, counts),
            (names.TOKEN_USAGE.name, {**m, names.TOKEN_TYPE: "output"}, 1800.0, 19, counts),
            (names.OUTPUT_THROUGHPUT.name, m, 900.0, 19, counts),
        ]
    gauges = [(names.SYSTEM_CPU_UTILIZATION.name, 0.3), (names.SYSTEM_MEMORY_UTILIZATION.name, 0.5)]
    with sqlite3.connect(path) as db:
        ids = []
        for name, attrs, *_ in rows:
            ids.append(_series(db, name, json.dumps(attrs), "histogram", json.dumps(bounds)))
        gauge_ids = [(_series(db, name, "{}", "gauge", "[]"), value) for name, value in gauges]
        for i in range(intervals):
            start = first + i * 10
            interval = db.execute(
                "INSERT INTO intervals (service, instance, pid, start, end) VALUES ('bench', 'a', 1, ?, ?)",
                (start, start + 10),
            ).lastrowid
            db.executemany(
                "INSERT INTO points VALUES (?, ?, ?, ?, NULL, NULL, ?)",
                [
                    (interval, id_, value, count, buckets)
                    for id_, (_, _, value, count, buckets) in zip(ids, rows, strict=True)
                ],
            )
            db.executemany(
                "INSERT INTO points VALUES (?, ?, ?, NULL, NULL, NULL, NULL)",
                [(interval, id_, value) for id_, value in gauge_ids],
            )


def _series(db: sqlite3.Connection, metric: str, attributes: str, kind: str, bounds: str) -> int:
    query = "INSERT INTO series (metric, attributes, kind, unit, bounds) VALUES (?, ?, ?, '', ?)"
    row_id = db.execute(query, (metric, attributes, kind, bounds)).lastrowid
    assert row_id is not None
    return row_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--intervals", type=int, default=20, help="intervals written in the write benchmark")
    parser.add_argument("--days", type=float, default=7.0, help="days of 10 s intervals in the report benchmark")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        bench_write(directory, args.intervals)
        bench_report(directory, args.days)


if __name__ == "__main__":
    main()
