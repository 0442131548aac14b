"""One process's cumulative metrics as plain values (what a worker hands to the process serving the
scrape endpoint), and the exact merge of several of them.

A snapshot is ``marshal``-able: loading one runs no code and costs a few microseconds per series.
"""

from __future__ import annotations

import marshal
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from opentelemetry.sdk.metrics.export import Gauge, Histogram, HistogramDataPoint, MetricsData, NumberDataPoint, Sum

from .._attributes import Attributes
from ..semconv import GPU_PROCESS_MEMORY, PROCESS_CPU_UTILIZATION, PROCESS_MEMORY_USAGE, PROCESS_PID, WINDOW_MAX

Exemplar = tuple[float, str, str, float]
"""value, trace id (32 hex digits), span id (16 hex digits), time in seconds."""
HistogramValue = tuple[tuple[int, ...], float, int, tuple[Exemplar | None, ...]]
"""bucket counts, sum, count, and per bucket the exemplar of its largest recent value (or None)."""

HISTOGRAM, COUNTER, UP_DOWN, GAUGE = "histogram", "counter", "updown", "gauge"

PER_PROCESS = frozenset(
    i.name
    for i in (PROCESS_CPU_UTILIZATION, PROCESS_MEMORY_USAGE, GPU_PROCESS_MEMORY, WINDOW_MAX[PROCESS_CPU_UTILIZATION])
)
"""Readings of one process: kept apart by ``process.pid`` when workers merge, never added up."""


@dataclass
class Family:
    """One metric: its metadata and its points by attribute set."""

    kind: str
    unit: str
    description: str
    bounds: tuple[float, ...] = ()
    points: dict[Attributes, float | HistogramValue] = field(default_factory=dict)


Families = dict[str, Family]


@dataclass
class Snapshot:
    """What one process had recorded at ``time``, cumulatively since it started."""

    pid: int
    time: float
    families: Families
    resource: Attributes = ()

    def dumps(self) -> bytes:
        flat = {
            name: (f.kind, f.unit, f.description, f.bounds, list(f.points.items())) for name, f in self.families.items()
        }
        return marshal.dumps((1, self.pid, self.time, self.resource, flat))

    @classmethod
    def loads(cls, data: bytes) -> Snapshot:
        version, pid, when, resource, flat = marshal.loads(data)
        if version != 1:
            raise ValueError(f"unknown snapshot version {version}")
        families = {name: Family(kind, unit, description, tuple(bounds), dict(points))
                    for name, (kind, unit, description, bounds, points) in flat.items()}  # fmt: skip
        return cls(pid, when, families, tuple(resource))


def from_metrics(data: MetricsData, pid: int | None = None) -> Snapshot:
    """The cumulative points of ``data`` (llmobs's own export of this process) as a snapshot."""
    families: Families = {}
    resource: Attributes = ()
    for resource_metrics in data.resource_metrics:
        resource = tuple(
            sorted(
                (k, v)
                for k, v in resource_metrics.resource.attributes.items()
                if isinstance(v, (str, bool, int, float))
            )
        )
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                family = _family(metric.data, metric.unit or "", metric.description or "")
                if family is None:
                    continue
                for point in metric.data.data_points:
                    key: Attributes = tuple(sorted((point.attributes or {}).items()))  # type: ignore[arg-type]
                    if isinstance(point, HistogramDataPoint):
                        family.bounds = tuple(point.explicit_bounds)
                        family.points[key] = (tuple(point.bucket_counts), point.sum, point.count, _exemplars(point))
                    elif isinstance(point, NumberDataPoint):
                        family.points[key] = point.value
                if family.points:
                    families[metric.name] = family
    return Snapshot(os.getpid() if pid is None else pid, time.time(), families, resource)


def _family(data: object, unit: str, description: str) -> Family | None:
    if isinstance(data, Histogram):
        return Family(HISTOGRAM, unit, description)
    if isinstance(data, Sum):
        return Family(COUNTER if data.is_monotonic else UP_DOWN, unit, description)
    if isinstance(data, Gauge):
        return Family(GAUGE, unit, description)
    return None


def _exemplars(point: HistogramDataPoint) -> tuple[Exemplar | None, ...]:
    """Per bucket, the largest exemplar that falls into it (the specification's rule for pull endpoints)."""
    if not point.exemplars:
        return ()
    best: list[Exemplar | None] = [None] * len(point.bucket_counts)
    for exemplar in point.exemplars:
        if exemplar.trace_id is None or exemplar.span_id is None:
            continue
        index = _bucket(point.explicit_bounds, exemplar.value)
        current = best[index]
        if current is None or exemplar.value > current[0]:
            best[index] = (float(exemplar.value), f"{exemplar.trace_id:032x}", f"{exemplar.span_id:016x}",
                           exemplar.time_unix_nano / 1e9)  # fmt: skip
    return tuple(best)


def _bucket(bounds: Sequence[float], value: float) -> int:
    for index, bound in enumerate(bounds):
        if value <= bound:
            return index
    return len(bounds)


def merge(snapshots: Iterable[Snapshot]) -> Families:
    """The exact merge: histograms, counters and in-flight counts added up; a process's own readings
    (PER_PROCESS) kept apart by ``process.pid``; other gauges from the newest snapshot that has them."""
    merged: Families = {}
    for snapshot in sorted(snapshots, key=lambda s: s.time):
        for name, family in snapshot.families.items():
            into = merged.get(name)
            if into is None:
                into = merged[name] = Family(family.kind, family.unit, family.description, family.bounds)
            elif into.kind != family.kind or into.bounds != family.bounds:
                continue  # a worker running another llmobs version: its points would corrupt the sums
            _add(into, family, snapshot.pid if name in PER_PROCESS else None)
    return merged


def _add(into: Family, family: Family, pid: int | None) -> None:
    points = into.points
    for key, value in family.points.items():
        if pid is not None:
            key = tuple(sorted((*key, (PROCESS_PID, pid))))
        before = points.get(key)
        if before is None or family.kind == GAUGE:
            points[key] = value
        elif isinstance(value, tuple) and isinstance(before, tuple):
            points[key] = _add_histograms(before, value)
        elif not isinstance(value, tuple) and not isinstance(before, tuple):
            points[key] = before + value


def _add_histograms(a: HistogramValue, b: HistogramValue) -> HistogramValue:
    counts = tuple(x + y for x, y in zip(a[0], b[0], strict=True))
    exemplars = b[3] or a[3]
    if a[3] and b[3]:
        exemplars = tuple(_larger(x, y) for x, y in zip(a[3], b[3], strict=True))
    return counts, a[1] + b[1], a[2] + b[2], exemplars


def _larger(a: Exemplar | None, b: Exemplar | None) -> Exemplar | None:
    if a is None or b is None:
        return a or b
    return a if a[0] >= b[0] else b


def monotonic(families: Families) -> Families:
    """Only what must never go backwards (histograms and counters): what a process that is gone leaves."""
    return {name: f for name, f in families.items() if f.kind in (HISTOGRAM, COUNTER)}
