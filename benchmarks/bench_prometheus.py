"""Render time of one Prometheus scrape, llmobs against prometheus_client, for N histogram series:
``python -m benchmarks.bench_prometheus [--series 100,2000,10000] [--repeat 5] [--quick] [--profile]``.

Every series is one ``gen_ai.request.model`` value of ``gen_ai.server.request.duration`` (the GenAI
duration buckets) with ``VALUES`` recorded values per process. Four cases, each scraped as text 0.0.4:

- llmobs, 1 process: what ``Endpoint.scrape`` does without a share: ``Points.build(registry.collect())``
  -> ``from_metrics`` -> ``merge`` -> ``render``.
- llmobs, 8 workers: 8 workers' snapshots published by ``Share.publish`` into a private temp directory
  (8 ``Share`` objects in this process, each holding its own ``.alive`` lock, so all count as live);
  worker 0 holds the scrape and does what ``Endpoint.scrape`` does: its own snapshot, ``Share.gather``
  (reads the 7 other files), ``merge``, ``render``.
- prometheus_client, 1 process: a ``Histogram`` with the same buckets and N label values,
  ``generate_latest``.
- prometheus_client multiprocess, 8 workers: 8 fresh interpreters started with
  ``PROMETHEUS_MULTIPROC_DIR`` set before prometheus_client is imported each observe the same N label
  values (8 ``histogram_<pid>.db`` files); the parent, not in multiprocess mode itself, times
  ``MultiProcessCollector(registry)`` + ``generate_latest(registry)`` as the documented handler does.

Each scrape is checked once (series and total observation count) before timing. Scrapes run with the
GC on, as a server's would; cases are interleaved, and the median of ``--repeat`` scrapes is printed.
Timings are printed, never asserted; exits 0.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import prometheus_client
import prometheus_client.values
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from llmobs._aggregation import Registry
from llmobs._points import Points
from llmobs._prometheus.exposition import render, target_labels
from llmobs._prometheus.share import Share
from llmobs._prometheus.snapshot import Snapshot, from_metrics, merge
from llmobs.semconv import DURATION_BUCKETS, REQUEST_DURATION

WORKERS = 8
VALUES = 5
"""Values recorded per series in each process."""
MODEL = "gen_ai.request.model"
LABEL = "gen_ai_request_model"
CLIENT_NAME = "gen_ai_server_request_duration_seconds"
SERVICE = "bench"
TARGET = 0.5
"""llmobs's 8-worker scrape may take at most this fraction of prometheus_client multiprocess's."""
ROOT = Path(__file__).resolve().parent.parent
RESOURCE = Resource.create({"service.name": SERVICE})
_COUNT = re.compile(rb"_count\{[^}]*\} (\S+)")

Scrape = Callable[[], bytes]


def model(index: int) -> str:
    return f"model-{index:05d}"


def values(index: int, worker: int) -> Iterator[float]:
    """The values series ``index`` records in ``worker``: spread over the buckets, different per worker."""
    for j in range(VALUES):
        yield 0.004 * 2 ** ((index + 3 * j + worker) % 16) * (1.0 + j / 10)


# llmobs


def llmobs_registry(series: int, worker: int) -> Registry:
    registry = Registry(max_series=series + 1)
    for i in range(series):
        recorder = registry.series(REQUEST_DURATION, ((MODEL, model(i)),))
        for value in values(i, worker):
            recorder.record(value)
    return registry


class LlmobsScrape:
    """``Endpoint.scrape`` for text 0.0.4, without the HTTP server (the steps, verbatim)."""

    def __init__(self, registry: Registry, share: Share | None) -> None:
        self._registry = registry
        self._points = Points(RESOURCE)
        self._share = share
        self._target = target_labels(self._own().resource, "bench:9464")

    def _own(self) -> Snapshot:
        return from_metrics(self._points.build(self._registry.collect()))

    def __call__(self) -> bytes:
        own = self._own()
        snapshots = [own] if self._share is None else self._share.gather(own)
        return render(merge(snapshots), self._target, "")[0]


class LlmobsWorkers:
    """8 workers' snapshot files in a private temp directory; worker 0 answers the scrape."""

    def __init__(self, series: int) -> None:
        self.root = tempfile.mkdtemp(prefix="bench-llmobs-")  # 0700, as Share requires
        self.shares = [Share(SERVICE, root=self.root) for _ in range(WORKERS)]
        holder = llmobs_registry(series, 0)
        for worker, share in enumerate(self.shares):
            registry = holder if worker == 0 else llmobs_registry(series, worker)
            share.publish(from_metrics(Points(RESOURCE).build(registry.collect()), pid=100_000 + worker))
        files = [name for name in os.listdir(self.shares[0].path) if name.endswith(".snap")]
        if len(files) != WORKERS:
            raise RuntimeError(f"expected {WORKERS} snapshot files, found {sorted(files)}")
        self.scrape = LlmobsScrape(holder, self.shares[0])

    def close(self) -> None:
        for share in self.shares:
            share.leave()
        shutil.rmtree(self.root, ignore_errors=True)


# prometheus_client


def client_histogram(series: int, worker: int, registry: CollectorRegistry | None) -> None:
    histogram = Histogram(
        CLIENT_NAME, REQUEST_DURATION.description, [LABEL], buckets=DURATION_BUCKETS, registry=registry
    )
    for i in range(series):
        child = histogram.labels(model(i))
        for value in values(i, worker):
            child.observe(value)


def client_scrape(series: int) -> Scrape:
    registry = CollectorRegistry()
    client_histogram(series, 0, registry)
    return lambda: generate_latest(registry)


def client_worker(series: int, worker: int) -> int:
    """Runs in a fresh interpreter started with PROMETHEUS_MULTIPROC_DIR: records, and exits."""
    if prometheus_client.values.ValueClass is prometheus_client.values.MutexValue:
        print("prometheus_client is not in multiprocess mode", file=sys.stderr)
        return 1
    client_histogram(series, worker, None)  # multiprocess mode: values go to histogram_<pid>.db
    return 0


class ClientWorkers:
    """8 multiprocess-mode workers' db files; the parent collects them for each scrape."""

    def __init__(self, series: int) -> None:
        self.path = tempfile.mkdtemp(prefix="bench-prometheus-client-")
        env = {k: v for k, v in os.environ.items() if k.lower() != "prometheus_multiproc_dir"}
        env["PROMETHEUS_MULTIPROC_DIR"] = self.path
        command = [sys.executable, "-m", "benchmarks.bench_prometheus", "--series", str(series), "--client-worker"]
        workers = [subprocess.Popen([*command, str(w)], env=env, cwd=ROOT) for w in range(WORKERS)]
        if any(worker.wait(timeout=600) != 0 for worker in workers):
            raise RuntimeError("a prometheus_client worker failed")
        files = [name for name in os.listdir(self.path) if name.endswith(".db")]
        if len(files) != WORKERS or not all(name.startswith("histogram_") for name in files):
            raise RuntimeError(f"expected {WORKERS} histogram_<pid>.db files, found {sorted(files)}")

    def scrape(self) -> bytes:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.path)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


# measuring


def check(name: str, body: bytes, series: int, processes: int) -> None:
    """The body has every series, with every observation of every process."""
    counts = [float(found) for found in _COUNT.findall(body)]
    expected = series * VALUES * processes
    if len(counts) != series or sum(counts) != expected:
        raise RuntimeError(
            f"{name}: {len(counts)} series, {sum(counts):.0f} observations; expected {series}, {expected}"
        )


def timed(scrape: Scrape) -> float:
    start = time.perf_counter()
    scrape()
    return (time.perf_counter() - start) * 1e3


CASES = ("llmobs 1 proc", "prometheus_client 1 proc", "llmobs 8 workers", "prometheus_client mp 8 workers")


def measure(series: int, repeat: int, profile: bool) -> tuple[dict[str, float], dict[str, int]]:
    """Median ms per scrape of each case, and the size of each body."""
    llmobs_workers, client_workers = LlmobsWorkers(series), ClientWorkers(series)
    try:
        scrapes: dict[str, Scrape] = {
            CASES[0]: LlmobsScrape(llmobs_registry(series, 0), None),
            CASES[1]: client_scrape(series),
            CASES[2]: llmobs_workers.scrape,
            CASES[3]: client_workers.scrape,
        }
        sizes = {}
        for name, scrape in scrapes.items():  # the first scrape warms up and is checked
            body = scrape()
            check(name, body, series, WORKERS if "8" in name else 1)
            sizes[name] = len(body)
        samples: dict[str, list[float]] = {name: [] for name in scrapes}
        for _ in range(repeat):
            for name, scrape in scrapes.items():
                samples[name].append(timed(scrape))
        if profile:
            print_profile(series, llmobs_workers.scrape)
        return {name: statistics.median(found) for name, found in samples.items()}, sizes
    finally:
        llmobs_workers.close()
        client_workers.close()


def print_profile(series: int, scrape: Scrape) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(scrape)
    print(f"\ncProfile of one llmobs 8-worker scrape, {series} series (top 20 by own time):")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(20)


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--series", help="comma-separated series counts (default 100,2000,10000; --quick 100,2000)")
    parser.add_argument("--repeat", type=int, help="scrapes timed per case (default 5; --quick 3)")
    parser.add_argument("--quick", action="store_true", help="100 and 2000 series, 3 scrapes each: a rough figure")
    parser.add_argument("--profile", action="store_true", help="cProfile one llmobs 8-worker scrape per size")
    parser.add_argument("--client-worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [int(n) for n in (args.series or ("100,2000" if args.quick else "100,2000,10000")).split(",")]
    if args.client_worker is not None:
        return client_worker(sizes[0], args.client_worker)
    if prometheus_client.values.ValueClass is not prometheus_client.values.MutexValue:
        parser.error("unset PROMETHEUS_MULTIPROC_DIR: the single-process case must not run in multiprocess mode")
    repeat = args.repeat or (3 if args.quick else 5)
    print(f"command: python -m benchmarks.bench_prometheus {' '.join(sys.argv[1:] if argv is None else argv)}".strip())
    print(
        f"python {platform.python_version()}, prometheus_client {prometheus_version()}, {platform.platform()}, "
        f"{os.cpu_count()} cpus, commit {git_commit()}"
    )
    print(f"{VALUES} values per series per process, {WORKERS} workers; median of {repeat} scrapes, text format 0.0.4")
    results = {}
    for series in sizes:
        results[series] = measure(series, repeat, args.profile)
    header = ("series", "llmobs 1p ms", "prom 1p ms", "llmobs 8w ms", "prom mp 8w ms", "1p ratio", "8w ratio")
    print("\n" + "".join(f"{h:>15}" for h in header))
    for series, (ms, _) in results.items():
        row = [ms[CASES[0]], ms[CASES[1]], ms[CASES[2]], ms[CASES[3]]]
        ratios = f"{row[0] / row[1]:14.2f}x{row[2] / row[3]:14.2f}x"
        print(f"{series:>15}" + "".join(f"{value:15.1f}" for value in row) + ratios)
    print("\nbody KiB (llmobs adds otel_scope_name/otel_scope_version labels; prometheus_client adds _created)")
    for series, (_, size) in results.items():
        print(f"{series:>15}" + "".join(f"{size[case] / 1024:15.0f}" for case in CASES))
    print()
    for series, (ms, _) in results.items():
        ratio = ms[CASES[2]] / ms[CASES[3]]
        verdict = "PASS" if ratio <= TARGET else "MISS"
        print(f"{verdict}: {series} series, llmobs 8 workers / prometheus_client multiprocess = {ratio:.2f}x "
              f"(target <= {TARGET}x)")  # fmt: skip
    return 0


def prometheus_version() -> str:
    from importlib.metadata import version

    return version("prometheus_client")


if __name__ == "__main__":
    sys.exit(main())
