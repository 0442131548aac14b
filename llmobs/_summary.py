"""The embedded default: a compact table of the last interval on stderr, for users who run no
backend. It is an ordinary metric exporter fed delta points, so it sees what OTLP would."""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    Metric,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
)
from typing_extensions import override

from . import semconv as names
from ._periodic import InProcessExporter


def percentile(
    bounds: Sequence[float],
    counts: Sequence[int],
    q: float,
    lo: float | None = None,
    hi: float | None = None,
    mean: float | None = None,
) -> float | None:
    """Estimate the ``q`` quantile of a bucketed histogram, interpolating linearly inside the bucket (as
    Prometheus's ``histogram_quantile`` does) between its edges clamped to the values' ``lo``/``hi``
    when known: 2 ms calls in the (0, 10 ms] bucket read 2 ms, not 5 ms. With the values' ``mean``
    known and the other buckets pinning down the mean of this bucket's own values, it spreads them
    evenly around that mean from the nearer edge instead, so that a few slow outliers do not drag the
    median of fast calls towards the far edge of their bucket. None for an empty histogram."""
    total = sum(counts)
    if total == 0:
        return None
    edges = [_edges(bounds, i, lo, hi) for i in range(len(counts))]
    rank = q * total
    seen = 0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            lower, upper = edges[i]
            if upper <= lower:
                return upper
            fraction = (rank - seen) / count
            inside = None if mean is None else _bucket_mean(counts, edges, i, mean * total, lo, hi)
            if inside is not None and lower < inside < upper:
                half = min(inside - lower, upper - inside)
                return inside - half + 2 * half * fraction
            return lower + (upper - lower) * fraction
        seen += count
    return bounds[-1] if hi is None else min(bounds[-1], hi)


def _edges(bounds: Sequence[float], i: int, lo: float | None, hi: float | None) -> tuple[float, float]:
    """Bucket ``i``'s edges, the open last bucket ending at ``hi`` (or its lower edge), clamped to ``lo``/``hi``."""
    lower = bounds[i - 1] if i > 0 else 0.0
    upper = bounds[i] if i < len(bounds) else bounds[-1] if hi is None else hi
    return max(lower, lo) if lo is not None else lower, min(upper, hi) if hi is not None else upper


def _bucket_mean(
    counts: Sequence[int],
    edges: Sequence[tuple[float, float]],
    i: int,
    total: float,
    lo: float | None,
    hi: float | None,
) -> float | None:
    """The mean of bucket ``i``'s values: the sum less the other buckets' values, the lowest one at
    ``lo`` and the highest at ``hi`` where known (the edges clamped to them), the rest at their
    buckets' middles; None when the middles leave it uncertain by more than a quarter of the bucket."""
    filled = [j for j, count in enumerate(counts) if count]
    others = uncertainty = 0.0
    for j in filled:
        if j == i:
            continue
        lower, upper = edges[j]
        known = [
            edge for edge, end, at in ((lower, lo, filled[0]), (upper, hi, filled[-1])) if end is not None and at == j
        ]
        others += sum(known) + (counts[j] - len(known)) * (lower + upper) / 2
        uncertainty += (counts[j] - len(known)) * (upper - lower) / 2
    lower, upper = edges[i]
    if uncertainty > counts[i] * (upper - lower) / 4:
        return None
    return (total - others) / counts[i]


@dataclass
class Buckets:
    """Bucket counts summed over points, with the lowest min and highest max they carry (if all do):
    the summary's and ``llmobs report``'s histograms."""

    bounds: Sequence[float] = ()
    counts: list[int] = field(default_factory=list)
    lo: float | None = None
    hi: float | None = None
    ranged: bool = True
    total: float = 0.0

    def add_point(self, point: HistogramDataPoint) -> None:
        self.add(point.explicit_bounds, point.bucket_counts, point.sum, point.min, point.max)

    def add(
        self, bounds: Sequence[float], counts: Sequence[int], total: float, low: float | None, high: float | None
    ) -> None:
        self.bounds = bounds
        if not self.counts:
            self.counts = [0] * len(counts)
        for i, count in enumerate(counts):
            self.counts[i] += count
        self.total += total
        if low is None or high is None or not self.ranged:
            self.ranged, self.lo, self.hi = False, None, None
            return
        self.lo = low if self.lo is None else min(self.lo, low)
        self.hi = high if self.hi is None else max(self.hi, high)

    @property
    def count(self) -> int:
        return sum(self.counts)

    def quantile(self, q: float) -> float | None:
        if not self.counts:
            return None
        return percentile(self.bounds, self.counts, q, self.lo, self.hi, self.total / max(self.count, 1))


@dataclass
class Calls:
    """One model's calls over a span of time: an interval here, a time bin of ``llmobs report``."""

    calls: int = 0
    errors: int = 0
    output_tokens: float = 0.0
    latency: Buckets = field(default_factory=Buckets)
    ttft: Buckets = field(default_factory=Buckets)
    tpot: Buckets = field(default_factory=Buckets)


@dataclass
class _Model(Calls):
    def add(self, name: str, attrs: Mapping[str, Any], point: HistogramDataPoint) -> None:
        if name == names.REQUEST_DURATION.name:
            self.calls += point.count
            self.errors += point.count if names.ERROR_TYPE in attrs else 0
            self.latency.add_point(point)
        elif name == names.TIME_TO_FIRST_TOKEN.name:
            self.ttft.add_point(point)
        elif name == names.TOKEN_USAGE.name and attrs.get(names.TOKEN_TYPE) == "output":
            self.output_tokens += point.sum

    def row(self, name: str, elapsed: float) -> str:
        ttft = "/".join(short_duration(self.ttft.quantile(q)) for q in (0.5, 0.95)) if self.ttft.counts else "-"
        latency = [short_duration(self.latency.quantile(q)) for q in (0.5, 0.95, 0.99)]
        return (
            f"  {name[:23]:<24}{self.calls:>7}{100 * self.errors / self.calls:>6.1f}%"
            f"{latency[0]:>9}{latency[1]:>9}{latency[2]:>9}{ttft:>17}{_rate(self.output_tokens, elapsed):>9}"
        )


GIB = 2**30
_GPU_FIELDS = {
    names.GPU_UTILIZATION.name: "util",
    names.WINDOW_MAX[names.GPU_UTILIZATION].name: "max",
    names.GPU_MEMORY_USAGE.name: "used",
    names.GPU_MEMORY_LIMIT.name: "limit",
    names.GPU_POWER.name: "power",
    names.GPU_TEMPERATURE.name: "temperature",
}
_HOST_FIELDS = {names.SYSTEM_CPU_UTILIZATION.name: "cpu", names.SYSTEM_MEMORY_UTILIZATION.name: "mem"}


class _Resources:
    """The collector's latest host and GPU gauges, as one line (wrapped at 120 characters):
    ``host cpu 12% mem 41%  gpu0 util 87% (max 99%) mem 31.2/80.0 GiB 245 W 71°C``."""

    def __init__(self) -> None:
        self.host: dict[str, float] = {}
        self.gpus: dict[str, dict[str, float]] = defaultdict(dict)

    def add(self, name: str, attrs: Mapping[str, Any], value: float) -> None:
        if name in _HOST_FIELDS:
            self.host[_HOST_FIELDS[name]] = value
        elif name in _GPU_FIELDS and names.HW_NAME in attrs and attrs.get(names.GPU_TASK, "general") == "general":
            self.gpus[printable(str(attrs[names.HW_NAME]))][_GPU_FIELDS[name]] = value

    def lines(self) -> list[str]:
        host = [f"{key} {self.host[key]:.0%}" for key in ("cpu", "mem") if key in self.host]
        parts = [" ".join(["host", *host])] if host else []
        parts += [" ".join([name, *_gpu(gpu)]) for name, gpu in sorted(self.gpus.items())]
        return _wrapped(parts)


def _gpu(g: Mapping[str, float]) -> list[str]:
    out = [f"util {g['util']:.0%}" + (f" (max {g['max']:.0%})" if "max" in g else "")] if "util" in g else []
    if "used" in g and "limit" in g:
        out.append(f"mem {g['used'] / GIB:.1f}/{g['limit'] / GIB:.1f} GiB")
    if "power" in g:
        out.append(f"{g['power']:.0f} W")
    if "temperature" in g:
        out.append(f"{g['temperature']:.0f}°C")
    return out


@dataclass
class _Probe:
    """One probed target: its ``up`` gauge, the p50 of its successful phases, its last failure."""

    up: float | None = None
    phases: dict[str, Buckets] = field(default_factory=lambda: defaultdict(Buckets))
    error: str | None = None

    def add(self, attrs: Mapping[str, Any], point: HistogramDataPoint | NumberDataPoint) -> None:
        if isinstance(point, NumberDataPoint):
            self.up = float(point.value)
        elif names.ERROR_TYPE in attrs:
            self.error = printable(str(attrs[names.ERROR_TYPE])) if point.count else self.error
        elif point.count:
            self.phases[str(attrs.get(names.PROBE_PHASE, ""))].add_point(point)

    def part(self, name: str) -> str:
        if not self.up:
            return f"{name} down" + (f" ({self.error})" if self.error else "")
        timings = [
            f"{phase} {_duration(self.phases[phase].quantile(0.5))}" for phase in _PHASES if phase in self.phases
        ]
        return " ".join([name, "up", *timings])


_PHASES = ("dns", "connect", "http")


class _Probes:
    """The dependency probe, one line wrapped at 120 characters:
    ``probe db:5432 up connect 0.4ms  https://svc/health down (timeout)``."""

    def __init__(self) -> None:
        self.targets: dict[str, _Probe] = defaultdict(_Probe)

    def add(self, attrs: Mapping[str, Any], point: HistogramDataPoint | NumberDataPoint) -> None:
        self.targets[printable(str(attrs.get(names.PROBE_TARGET, "(overflow)")))].add(attrs, point)

    @property
    def down(self) -> bool:
        return any(probe.up == 0 for probe in self.targets.values())

    def lines(self) -> list[str]:
        parts = [probe.part(name) for name, probe in sorted(self.targets.items()) if probe.up is not None]
        return _wrapped(["probe " + parts[0], *parts[1:]] if parts else [])


def _wrapped(parts: list[str]) -> list[str]:
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + len(part) < 118:
            lines[-1] += "  " + part
        else:
            lines.append("  " + part)
    return lines


@dataclass
class _Batch:
    done: float = 0.0
    failed: float = 0.0
    progress: float | None = None

    def add(self, name: str, attrs: Mapping[str, Any], value: float) -> None:
        if name == names.BATCH_ITEMS.name:
            if attrs.get(names.BATCH_OUTCOME) == "failure":
                self.failed += value
            else:
                self.done += value
        elif name == names.BATCH_PROGRESS.name:
            self.progress = float(value)

    def line(self, name: str, elapsed: float) -> str:
        progress = f", {100 * self.progress:.0f}% done" if self.progress is not None else ""
        return (
            f"  batch {name}: {self.done:.0f} items ({self.done / elapsed:.1f}/s), {self.failed:.0f} failed{progress}"
        )


@dataclass
class _Route:
    """One HTTP route of the middleware: requests, 5xx responses and their latency."""

    requests: int = 0
    server_errors: int = 0
    latency: Buckets = field(default_factory=Buckets)

    def add(self, attrs: Mapping[str, Any], point: HistogramDataPoint) -> None:
        self.requests += point.count
        status = attrs.get(names.HTTP_STATUS_CODE)
        self.server_errors += point.count if isinstance(status, int) and status >= 500 else 0
        self.latency.add_point(point)

    def row(self, name: str, elapsed: float) -> str:
        p95 = short_duration(self.latency.quantile(0.95))
        return (
            f"  {name[:39]:<40}{self.requests / elapsed:>9.1f}{100 * self.server_errors / self.requests:>6.1f}%{p95:>9}"
        )


@dataclass
class _Interval:
    """What one export holds, by model, HTTP route, batch job and resource; names already made printable."""

    models: dict[str, _Model] = field(default_factory=lambda: defaultdict(_Model))
    routes: dict[str, _Route] = field(default_factory=lambda: defaultdict(_Route))
    batches: dict[str, _Batch] = field(default_factory=lambda: defaultdict(_Batch))
    resources: _Resources = field(default_factory=_Resources)
    probes: _Probes = field(default_factory=_Probes)
    dropped: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """``llmobs.metric_data_point.dropped`` of the interval, by reason."""

    def add(self, metric: Metric) -> None:
        probe = metric.name in (names.PROBE_DURATION.name, names.PROBE_UP.name)
        http = metric.name == names.HTTP_SERVER_DURATION.name
        dropped = metric.name == names.DROPPED_POINTS.name
        for point in metric.data.data_points:
            attrs = point.attributes or {}
            if dropped and isinstance(point, NumberDataPoint):
                self.dropped[printable(str(attrs.get(names.ERROR_TYPE)))] += int(point.value)
            elif probe and isinstance(point, (HistogramDataPoint, NumberDataPoint)):
                self.probes.add(attrs, point)
            elif http and isinstance(point, HistogramDataPoint):
                self.routes[_route(attrs)].add(attrs, point)
            elif isinstance(point, HistogramDataPoint):
                self.models[printable(str(attrs.get(names.MODEL, "(overflow)")))].add(metric.name, attrs, point)
            elif isinstance(point, NumberDataPoint):
                self.resources.add(metric.name, attrs, point.value)
                if names.BATCH_NAME in attrs:
                    self.batches[printable(str(attrs[names.BATCH_NAME]))].add(metric.name, attrs, point.value)


class SummaryExporter(InProcessExporter):
    """Prints, each interval with activity (or a probed target down), per model: calls, error %,
    latency p50/p95/p99, TTFT p50/p95 and output tokens/s; per batch job: items, rate, failures and
    progress; the resources; and each probed target, up (with its phases' p50) or down (and why)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self._stream = stream
        self._last = time.monotonic()

    @override
    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        now = time.monotonic()
        elapsed, self._last = max(now - self._last, 1e-9), now
        lines = render(_metrics(metrics_data), elapsed)
        if lines:
            stream = self._stream or sys.stderr
            stream.write("\n".join(lines) + "\n")
            stream.flush()
        return MetricExportResult.SUCCESS


def _metrics(data: MetricsData) -> Iterator[Metric]:
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            yield from scope_metrics.metrics


def render(metrics: Iterator[Metric], elapsed: float) -> list[str]:
    """The summary's lines for one interval of ``elapsed`` seconds; empty when nothing happened. The
    header names this process: each worker of a pre-fork server prints its own table."""
    interval = _Interval()
    for metric in metrics:
        interval.add(metric)
    active = {name: m for name, m in interval.models.items() if m.calls}
    routes = {name: r for name, r in interval.routes.items() if r.requests}
    busy = {name: b for name, b in interval.batches.items() if b.done or b.failed}
    if not active and not routes and not busy and not interval.probes.down and not interval.dropped:
        return []  # idle: the resources alone are not news
    lines = [f"llmobs {time.strftime('%H:%M:%S')}  pid {os.getpid()}  last {elapsed:.0f}s"]
    if active:
        lines.append(
            f"  {'model':<24}{'calls':>7}{'err%':>7}{'p50':>9}{'p95':>9}{'p99':>9}{'ttft p50/p95':>17}{'tok/s':>9}"
        )
        lines += [m.row(name, elapsed) for name, m in sorted(active.items())]
    if routes:
        lines.append(f"  {'http route':<40}{'req/s':>9}{'5xx%':>7}{'p95':>9}")
        lines += [r.row(name, elapsed) for name, r in sorted(routes.items())]
    lines += [b.line(name, elapsed) for name, b in sorted(busy.items())]
    return lines + interval.resources.lines() + interval.probes.lines() + _dropped(interval.dropped)


def _dropped(by_reason: Mapping[str, int]) -> list[str]:
    """The footer, when llmobs lost records or points this interval: how many, by reason; else nothing."""
    total = sum(by_reason.values())
    if not total:
        return []
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(by_reason.items()))
    return [f"  llmobs dropped {total} data point{'s' if total != 1 else ''} ({reasons})"]


def _route(attrs: Mapping[str, Any]) -> str:
    """``GET /chat/{id}``: the method and route template (``-`` when the route is unknown)."""
    method, route = attrs.get(names.HTTP_METHOD, "_OTHER"), attrs.get(names.HTTP_ROUTE, "-")
    return printable(f"{method} {route}")


def printable(name: str) -> str:
    """``name`` with every control or other unprintable character escaped (``\\n``, ``\\x1b``,
    ``\\u2028``): a model or batch name must not start a line or recolour the terminal."""
    if name.isprintable():
        return name
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in name)


def _rate(tokens: float, elapsed: float) -> str:
    return f"{tokens / elapsed:.1f}" if tokens else "-"


def short_duration(seconds: float | None) -> str:
    """A latency: ``0.4ms`` below 10 ms, then as ``_duration``."""
    return f"{seconds * 1000:.1f}ms" if seconds is not None and seconds < 0.01 else _duration(seconds)


def _duration(seconds: float | None) -> str:
    """A latency as the table shows it: ``16ms`` below a second, ``1.25s`` above, ``-`` for none."""
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else f"{seconds:.2f}s"
