"""What a report shows, in one shape whatever its source: per model, time bins of calls, errors, tokens
and latency buckets; evaluations, batch jobs, HTTP routes, GPU and host readings; fired alerts. The
local history fills it here; ``prometheus.py`` fills it from a Prometheus server."""

from __future__ import annotations

import functools
import json
import math
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .. import semconv as names
from .._history import HistoryError, connect
from .._summary import Buckets, Calls, printable

BINS = 96  # time bins across the report's window: enough for a trend, few enough to read

Timeline = list[tuple[float, float]]
"""(unix time, value) pairs, oldest first."""


class SourceError(Exception):
    """The source cannot give a report; the message says why, in one line."""


@dataclass
class Model:
    bins: dict[int, Calls] = field(default_factory=lambda: defaultdict(Calls))
    error_types: Counter[str] = field(default_factory=Counter)
    input_tokens: float = 0.0

    @property
    def calls(self) -> int:
        return sum(b.calls for b in self.bins.values())

    @property
    def errors(self) -> int:
        return sum(b.errors for b in self.bins.values())

    @property
    def output_tokens(self) -> float:
        return sum(b.output_tokens for b in self.bins.values())

    def overall(self, which: str) -> Buckets:
        """The window's ``latency``, ``ttft`` or ``tpot`` buckets, all bins merged."""
        merged = Buckets()
        for b in self.bins.values():
            _merge(merged, getattr(b, which))
        return merged


@dataclass
class Evaluation:
    scores: dict[int, Buckets] = field(default_factory=lambda: defaultdict(Buckets))
    accuracy: Timeline = field(default_factory=list)
    labels: Counter[str] = field(default_factory=Counter)


@dataclass
class Batch:
    done: float = 0.0
    failed: float = 0.0
    progress: float | None = None


@dataclass
class Route:
    requests: int = 0
    server_errors: int = 0
    latency: Buckets = field(default_factory=Buckets)


@dataclass
class Alert:
    name: str
    labels: dict[str, str]
    first: float
    last: float


@dataclass
class Report:
    source: str
    start: float
    end: float
    models: dict[str, Model] = field(default_factory=lambda: defaultdict(Model))
    evaluations: dict[tuple[str, str], Evaluation] = field(default_factory=lambda: defaultdict(Evaluation))
    batches: dict[str, Batch] = field(default_factory=lambda: defaultdict(Batch))
    routes: dict[str, Route] = field(default_factory=lambda: defaultdict(Route))
    gpus: dict[str, dict[str, Timeline]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    host: dict[str, Timeline] = field(default_factory=lambda: defaultdict(list))
    energy_joules: float = 0.0
    alerts: list[Alert] = field(default_factory=list)
    first: float | None = None
    last: float | None = None
    """When the data starts and ends (the first interval's start, the last one's end)."""
    resolution: float = 0.0
    """The source's own step (the longest stored interval, the query step): no bin is narrower, or a
    rate per bin would divide an interval's tokens by a fraction of its length."""

    @property
    def step(self) -> float:
        return max((self.end - self.start) / BINS, self.resolution, 1e-9)

    @property
    def bins(self) -> int:
        return max(1, min(BINS, math.ceil((self.end - self.start) / self.step)))

    def bin(self, when: float) -> int:
        return max(0, min(int((when - self.start) / self.step), self.bins - 1))

    def time(self, index: int) -> float:
        """The middle of bin ``index`` (the window's end for a last bin that reaches past it)."""
        return min(self.start + (index + 0.5) * self.step, self.end)

    @property
    def seconds(self) -> float:
        """How long the data covers: what rates are per."""
        return max((self.last or 0.0) - (self.first or 0.0), 1e-9)

    def saw(self, start: float, end: float) -> None:
        self.first = start if self.first is None else min(self.first, start)
        self.last = end if self.last is None else max(self.last, end)

    @property
    def empty(self) -> bool:
        return not (self.models or self.evaluations or self.batches or self.routes or self.gpus or self.host)


def load_history(path: str, start: float, end: float) -> Report:
    """The history's intervals that ended in ``[start, end]``; SourceError naming what is wrong."""
    try:
        connection = connect(path, readonly=True)
    except FileNotFoundError:
        raise SourceError(
            f"no history at {path}: run llmobs (the embedded default writes one) or pass --history FILE"
        ) from None
    except (sqlite3.Error, OSError, HistoryError) as exc:
        raise SourceError(f"the history {path} cannot be read: {exc}") from None
    try:
        report = Report(f"history {path}", *_span(connection, start, end))
        report.resolution = _longest_interval(connection, report.start, report.end)
        for begun, metric, point in _rows(connection, start, end):
            report.saw(begun, point.when)
            add(report, metric, point)
    except (sqlite3.Error, ValueError) as exc:
        raise SourceError(f"the history {path} cannot be read: {exc}") from None
    finally:
        connection.close()
    return report


QUERY = """
SELECT i.start, i.end, s.metric, s.attributes, p.value, p.min, p.max, p.buckets, s.bounds
FROM points p JOIN intervals i ON p.interval = i.id JOIN series s ON s.id = p.series
WHERE i.end >= ? AND i.end <= ? AND s.metric IN ({}) ORDER BY i.end
"""

Row = tuple[
    float, float, str, dict[str, Any], float, int | None, float | None, float | None, list[int] | None, list[float]
]


def _span(connection: sqlite3.Connection, start: float, end: float) -> tuple[float, float]:
    """The window the report covers: ``[start, end]`` narrowed to the intervals stored in it."""
    first, last = connection.execute(
        "SELECT min(start), max(end) FROM intervals WHERE end >= ? AND end <= ?", (start, end)
    ).fetchone()
    return (start, end) if first is None else (max(start, first), last)


def _longest_interval(connection: sqlite3.Connection, start: float, end: float) -> float:
    row = connection.execute("SELECT max(end - start) FROM intervals WHERE end >= ? AND end <= ?", (start, end))
    return float(row.fetchone()[0] or 0.0)


def _rows(connection: sqlite3.Connection, start: float, end: float) -> Iterator[tuple[float, str, Point]]:
    """(interval start, metric, point) of every stored point the report reads, oldest first."""
    wanted = sorted(HANDLERS)
    query = QUERY.format(", ".join("?" * len(wanted)))
    for begun, when, metric, attrs, value, lo, hi, buckets, bounds_text in connection.execute(
        query, (start, end, *wanted)
    ):
        bounds = _bounds(bounds_text)
        counts = json.loads(buckets) if buckets else []
        counts += [0] * (len(bounds) + 1 - len(counts)) if counts else []  # stored without trailing zeros
        yield begun, metric, Point(when, _attributes(attrs), value, Buckets(bounds, counts, lo, hi, True, value))


@functools.lru_cache(maxsize=4096)
def _bounds(text: str) -> tuple[float, ...]:
    return tuple(json.loads(text))


@functools.lru_cache(maxsize=4096)
def _attributes(text: str) -> Mapping[str, Any]:
    """A series' attributes: the same few strings recur on every interval, so each is parsed once."""
    return MappingProxyType(json.loads(text))


@dataclass(frozen=True)
class Point:
    """One stored point: when its interval ended, its attributes, its value (a histogram's sum, a
    counter's increase, a gauge's level) and, for a histogram, its buckets."""

    when: float
    attrs: Mapping[str, Any]
    value: float
    buckets: Buckets


def add(report: Report, metric: str, point: Point) -> None:
    """One point of ``metric`` into ``report``; metrics the report does not show are skipped."""
    handler = HANDLERS.get(metric)
    if handler is not None:
        handler(report, point)


Handler = Callable[[Report, Point], None]


def _model(report: Report, p: Point) -> Model:
    return report.models[printable(str(p.attrs.get(names.MODEL, "(overflow)")))]


def _bin(report: Report, p: Point) -> Calls:
    return _model(report, p).bins[report.bin(p.when)]


def _merge(into: Buckets, part: Buckets) -> None:
    """Add ``part``'s counts; a process configured with other bucket bounds for the metric is left out."""
    if part.counts and (not into.counts or tuple(into.bounds) == tuple(part.bounds)):
        into.add(part.bounds, part.counts, part.total, part.lo, part.hi)


def _duration(report: Report, p: Point) -> None:
    bin_, calls = _bin(report, p), p.buckets.count
    bin_.calls += calls
    if names.ERROR_TYPE in p.attrs:
        bin_.errors += calls
        _model(report, p).error_types[printable(str(p.attrs[names.ERROR_TYPE]))] += calls
    _merge(bin_.latency, p.buckets)


def _ttft(report: Report, p: Point) -> None:
    _merge(_bin(report, p).ttft, p.buckets)


def _tpot(report: Report, p: Point) -> None:
    _merge(_bin(report, p).tpot, p.buckets)


def _tokens(report: Report, p: Point) -> None:
    if p.attrs.get(names.TOKEN_TYPE) == "output":
        _bin(report, p).output_tokens += p.value
    elif p.attrs.get(names.TOKEN_TYPE) == "input":
        _model(report, p).input_tokens += p.value


def _evaluation(report: Report, p: Point) -> Evaluation:
    name = printable(str(p.attrs.get(names.EVALUATION_NAME, "(overflow)")))
    return report.evaluations[name, printable(str(p.attrs.get(names.MODEL, "")))]


def _score(report: Report, p: Point) -> None:
    _merge(_evaluation(report, p).scores[report.bin(p.when)], p.buckets)


def _accuracy(report: Report, p: Point) -> None:
    _evaluation(report, p).accuracy.append((p.when, p.value))


def _label(report: Report, p: Point) -> None:
    _evaluation(report, p).labels[printable(str(p.attrs.get(names.EVALUATION_SCORE_LABEL, "")))] += int(p.value)


def _batch(report: Report, p: Point) -> Batch:
    return report.batches[printable(str(p.attrs.get(names.BATCH_NAME, "(overflow)")))]


def _batch_items(report: Report, p: Point) -> None:
    batch = _batch(report, p)
    if p.attrs.get(names.BATCH_OUTCOME) == "failure":
        batch.failed += p.value
    else:
        batch.done += p.value


def _batch_progress(report: Report, p: Point) -> None:
    _batch(report, p).progress = p.value


def _http(report: Report, p: Point) -> None:
    route = report.routes[printable(f"{p.attrs.get(names.HTTP_METHOD, '_OTHER')} {p.attrs.get(names.HTTP_ROUTE, '-')}")]
    count = p.buckets.count
    route.requests += count
    status = p.attrs.get(names.HTTP_STATUS_CODE)
    route.server_errors += count if isinstance(status, int) and status >= 500 else 0
    _merge(route.latency, p.buckets)


def _gpu(reading: str) -> Handler:
    def handle(report: Report, p: Point) -> None:
        if names.HW_NAME in p.attrs and p.attrs.get(names.GPU_TASK, "general") == "general":
            report.gpus[printable(str(p.attrs[names.HW_NAME]))][reading].append((p.when, p.value))

    return handle


def _host(reading: str) -> Handler:
    def handle(report: Report, p: Point) -> None:
        report.host[reading].append((p.when, p.value))

    return handle


def _energy(report: Report, p: Point) -> None:
    report.energy_joules += p.value


HANDLERS: dict[str, Handler] = {
    names.REQUEST_DURATION.name: _duration,
    names.TIME_TO_FIRST_TOKEN.name: _ttft,
    names.TIME_PER_OUTPUT_TOKEN.name: _tpot,
    names.TOKEN_USAGE.name: _tokens,
    names.EVALUATION_SCORE.name: _score,
    names.EVALUATION_ACCURACY.name: _accuracy,
    names.EVALUATION_LABELS.name: _label,
    names.BATCH_ITEMS.name: _batch_items,
    names.BATCH_PROGRESS.name: _batch_progress,
    names.HTTP_SERVER_DURATION.name: _http,
    names.GPU_UTILIZATION.name: _gpu("utilization"),
    names.GPU_MEMORY_USAGE.name: _gpu("memory"),
    names.GPU_MEMORY_LIMIT.name: _gpu("memory limit"),
    names.GPU_TEMPERATURE.name: _gpu("temperature"),
    names.GPU_POWER.name: _gpu("power"),
    names.GPU_ENERGY.name: _energy,
    names.SYSTEM_CPU_UTILIZATION.name: _host("cpu"),
    names.SYSTEM_MEMORY_UTILIZATION.name: _host("memory"),
}
"""What the report reads, by metric name; a handler adds one point to the report."""
