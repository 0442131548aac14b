"""Merged snapshots rendered for a scrape by prometheus_client's own encoders: the text format 0.0.4,
or OpenMetrics 1.0 (with exemplars on histogram buckets) when the scraper asks for it in ``Accept``."""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Exemplar

from .._attributes import Attributes
from .._version import __version__
from ..semconv import SERVICE_INSTANCE_ID, SERVICE_NAME, Instrument, Kind
from .names import family_name, labels, unit
from .snapshot import COUNTER, GAUGE, HISTOGRAM, Families, Family, HistogramValue

SCOPE = {"otel_scope_name": "llmobs", "otel_scope_version": __version__}
"""The labels every point carries, as the compatibility specification asks of exporters."""
KINDS = {HISTOGRAM: Kind.HISTOGRAM, COUNTER: Kind.COUNTER, GAUGE: Kind.GAUGE}


def render(families: Families, target: dict[str, str], accept: str = "") -> tuple[bytes, str]:
    """The body and its content type for one scrape."""
    encoder, content_type = choose_encoder(accept)
    return encoder(_Collector(families, target)), content_type


def target_labels(resource: Attributes, instance: str) -> dict[str, str]:
    """``target_info``'s labels: the resource attributes, ``job`` from ``service.name``, and ``instance``
    (the endpoint, which serves every worker of the service on this host)."""
    found = labels(tuple((k, v) for k, v in resource if k != SERVICE_INSTANCE_ID))
    found["job"] = str(dict(resource).get(SERVICE_NAME, "unknown_service"))
    found["instance"] = instance
    return found


class _Collector:
    """What prometheus_client's encoders walk: ``target_info`` and the merged families."""

    def __init__(self, families: Families, target: dict[str, str]) -> None:
        self._families = families
        self._target = target

    def collect(self) -> Iterator[Metric]:
        info = Metric("target", "Target metadata", "info")
        info.add_sample("target_info", self._target, 1)
        yield info
        for name, family in sorted(self._families.items()):
            yield _metric(name, family)


def _metric(name: str, family: Family) -> Metric:
    instrument = Instrument(name, KINDS.get(family.kind, Kind.IN_FLIGHT), family.unit, family.description)
    prom, suffix = family_name(instrument), unit(instrument)
    typ = {HISTOGRAM: "histogram", COUNTER: "counter"}.get(family.kind, "gauge")
    metric = Metric(prom, family.description, typ, suffix if prom.endswith(f"_{suffix}") else "")
    for attributes, value in family.points.items():
        point = {**SCOPE, **labels(attributes)}
        if isinstance(value, tuple):
            _histogram(metric, prom, point, family.bounds, value)
        elif math.isfinite(value):
            metric.add_sample(f"{prom}_total" if typ == "counter" else prom, point, value)
    return metric


def _histogram(
    metric: Metric, prom: str, point: dict[str, str], bounds: tuple[float, ...], value: HistogramValue
) -> None:
    counts, total, count, exemplars = value
    running = 0
    for i, bucket in enumerate(counts):
        running += bucket
        le = repr(float(bounds[i])) if i < len(bounds) else "+Inf"
        found = exemplars[i] if exemplars else None
        exemplar = None
        if found is not None:
            exemplar = Exemplar({"trace_id": found[1], "span_id": found[2]}, found[0], found[3])
        metric.add_sample(f"{prom}_bucket", {**point, "le": le}, running, exemplar=exemplar)
    metric.add_sample(f"{prom}_count", point, count)
    metric.add_sample(f"{prom}_sum", point, total)
