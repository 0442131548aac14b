"""Reading what several processes exported: each sends its own cumulative totals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tests.otlp_receiver import MetricPoint, OTLPReceiver


def final(receiver: OTLPReceiver, name: str, attributes: Mapping[str, object] | None = None) -> list[MetricPoint]:
    """The newest points of metric ``name`` from each process (by ``service.instance.id``): with
    cumulative temporality, the totals; kept when all ``attributes`` match."""
    newest: dict[str, list[MetricPoint]] = {}
    for point in receiver.metrics():
        if point.name != name:
            continue
        kept = newest.setdefault(point.resource["service.instance.id"], [point])
        if point.time_unix_nano > kept[0].time_unix_nano:
            kept[:] = [point]
        elif point.time_unix_nano == kept[0].time_unix_nano and point is not kept[0]:
            kept.append(point)
    want = (attributes or {}).items()
    return [p for points in newest.values() for p in points if all(p.attributes.get(k) == v for k, v in want)]


@dataclass(frozen=True)
class Totals:
    """A histogram's points merged over processes and attribute sets."""

    count: int
    sum: float
    min: float
    max: float
    attributes: list[dict[str, object]]


def total(receiver: OTLPReceiver, name: str, attributes: Mapping[str, object] | None = None) -> Totals:
    points = final(receiver, name, attributes)
    return Totals(
        sum(p.count or 0 for p in points),
        sum(p.sum or 0.0 for p in points),
        min((p.min for p in points if p.min is not None), default=float("nan")),
        max((p.max for p in points if p.max is not None), default=float("nan")),
        [p.attributes for p in points],
    )


def count(receiver: OTLPReceiver, attributes: Mapping[str, object]) -> int:
    """Requests recorded in http.server.request.duration with these attributes, all processes together."""
    return total(receiver, "http.server.request.duration", attributes).count
