"""Export points: delta temporality per exporter, and series that are removed and come back."""

from __future__ import annotations

import time

from opentelemetry.sdk.resources import Resource

from llmobs import semconv as names
from llmobs._aggregation import Registry
from llmobs._points import Points

ATTRS = ((names.INTERFACE, "veth0"),)


def values(points: Points, registry: Registry) -> list[float]:
    data = points.build(registry.collect())
    return [
        p.value
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        for p in m.data.data_points
    ]


def test_delta_of_a_series_that_started_over_is_its_new_value() -> None:
    registry, points = Registry(), Points(Resource({}), delta=True)
    registry.series(names.SYSTEM_NETWORK_IO, ATTRS).record(5)
    assert values(points, registry) == [5]
    registry.series(names.SYSTEM_NETWORK_IO, ATTRS).record(3)
    assert values(points, registry) == [3]
    registry.remove(names.SYSTEM_NETWORK_IO, ATTRS)
    assert values(points, registry) == [] and points._previous == {}  # nothing kept for a gone series
    time.sleep(0.001)  # a new start time
    registry.series(names.SYSTEM_NETWORK_IO, ATTRS).record(2)
    assert values(points, registry) == [2]  # not 2 - 8
