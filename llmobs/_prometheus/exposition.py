"""Merged snapshots rendered for a scrape: OpenMetrics 1.0 (with exemplars on histogram buckets) by
prometheus_client's encoder when the scraper asks for it in ``Accept``, else the text format 0.0.4,
written here byte for byte as prometheus_client writes it but 10x faster (docs/prometheus.md):
its encoder re-checks and re-escapes every label of every line, 170,000 lines at 10,000 series."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import cast

from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Exemplar
from prometheus_client.utils import floatToGoString

from .._attributes import Attributes
from .._version import __version__
from ..semconv import SERVICE_INSTANCE_ID, SERVICE_NAME, Instrument, Kind
from .names import family_name, labels, unit
from .snapshot import COUNTER, GAUGE, HISTOGRAM, Families, Family, HistogramValue

SCOPE = {"otel_scope_name": "llmobs", "otel_scope_version": __version__}
"""The labels every point carries, as the compatibility specification asks of exporters."""
KINDS = {HISTOGRAM: Kind.HISTOGRAM, COUNTER: Kind.COUNTER, GAUGE: Kind.GAUGE}
number = cast(Callable[[float], str], floatToGoString)
"""A value as Prometheus (Go) writes it: ``1.0``, ``+Inf``, ``6.7108864e+07``."""


def render(families: Families, target: dict[str, str], accept: str = "") -> tuple[bytes, str]:
    """The body and its content type for one scrape."""
    encoder, content_type = choose_encoder(accept)
    if content_type.startswith("text/plain"):
        return text(families, target), content_type
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
        le = number(bounds[i]) if i < len(bounds) else "+Inf"
        found = exemplars[i] if exemplars else None
        exemplar = None
        if found is not None:
            exemplar = Exemplar({"trace_id": found[1], "span_id": found[2]}, found[0], found[3])
        metric.add_sample(f"{prom}_bucket", {**point, "le": le}, running, exemplar=exemplar)
    metric.add_sample(f"{prom}_count", point, count)
    metric.add_sample(f"{prom}_sum", point, total)


def text(families: Families, target: dict[str, str]) -> bytes:
    """The text format 0.0.4, as prometheus_client's ``generate_latest`` writes the same families."""
    out = ["# HELP target_info Target metadata\n# TYPE target_info gauge\n",
           f"target_info{{{_pairs(sorted(target.items()))}}} 1.0\n"]  # fmt: skip
    for name, family in sorted(families.items()):
        instrument = Instrument(name, KINDS.get(family.kind, Kind.IN_FLIGHT), family.unit, family.description)
        prom = family_name(instrument)
        typ = {HISTOGRAM: "histogram", COUNTER: "counter"}.get(family.kind, "gauge")
        sample = f"{prom}_total" if typ == "counter" else prom
        help_text = family.description.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {sample} {help_text}\n# TYPE {sample} {typ}\n")
        if typ == "histogram":
            les = [f'le="{number(b)}"' for b in family.bounds] + ['le="+Inf"']
            for attributes, value in family.points.items():
                assert isinstance(value, tuple)
                _histogram_lines(out, prom, sorted({**SCOPE, **labels(attributes)}.items()), les, value)
        else:
            for attributes, value in family.points.items():
                if not isinstance(value, tuple) and math.isfinite(value):
                    pairs = _pairs(sorted({**SCOPE, **labels(attributes)}.items()))
                    out.append(f"{sample}{{{pairs}}} {number(value)}\n")
    return "".join(out).encode()


def _histogram_lines(out: list[str], prom: str, pairs: list[tuple[str, str]], les: list[str],
                     value: HistogramValue) -> None:  # fmt: skip
    """A point's buckets (``le`` sorted among its labels, as prometheus_client sorts them), count and sum."""
    before, after = _pairs([p for p in pairs if p[0] < "le"]), _pairs([p for p in pairs if p[0] > "le"])
    head = f"{prom}_bucket{{{before}," if before else f"{prom}_bucket{{"
    tail = f",{after}}} " if after else "} "
    running = 0
    for le, count in zip(les, value[0], strict=True):
        running += count
        out.append(f"{head}{le}{tail}{number(running)}\n")
    every = _pairs(pairs)
    out.append(f"{prom}_count{{{every}}} {number(value[2])}\n{prom}_sum{{{every}}} {number(value[1])}\n")


def _pairs(pairs: list[tuple[str, str]]) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
