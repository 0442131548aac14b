"""Export points: delta temporality per exporter, series that are removed and come back, baselines that
move only on success, and values or attributes OTLP cannot carry, sent through the real encoder."""

from __future__ import annotations

import logging
import time

import pytest
from opentelemetry.sdk.metrics.export import MetricExportResult, NumberDataPoint
from opentelemetry.sdk.resources import Resource

from llmobs import semconv as names
from llmobs._aggregation import Collected, HistogramSnapshot, Registry, ValueSnapshot
from llmobs._config import OTLPTarget
from llmobs._otlp import metric_exporter
from llmobs._points import Points
from tests.otlp_receiver import OTLPReceiver

ATTRS = ((names.INTERFACE, "veth0"),)
GOOD = (("gen_ai.request.model", "m"),)


def values(points: Points, registry: Registry, commit: bool = True) -> list[float]:
    data = points.build(registry.collect())
    if commit:
        points.commit(data)
    return [
        p.value
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        for p in m.data.data_points
        if isinstance(p, NumberDataPoint)
    ]


def send(receiver: OTLPReceiver, points: Points, collected: Collected) -> None:
    exporter = metric_exporter(OTLPTarget("grpc", receiver.grpc_endpoint, {}, 5))
    try:
        assert exporter.export(points.build(collected)) is MetricExportResult.SUCCESS
    finally:
        exporter.shutdown()


def llmobs_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "llmobs" and r.levelno >= logging.WARNING]


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


def test_delta_baseline_moves_only_when_the_export_was_committed() -> None:
    registry, points = Registry(), Points(Resource({}), delta=True)
    series = registry.series(names.BATCH_TOKENS, GOOD)
    series.record(5)
    assert values(points, registry) == [5]
    series.record(3)
    assert values(points, registry, commit=False) == [3]  # this export failed
    series.record(4)
    assert values(points, registry) == [7]  # the failed export's increments go out with this one
    assert values(points, registry) == []


def test_values_otlp_cannot_carry_are_dropped_once_and_the_rest_is_exported(
    receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    start = time.time_ns()
    huge, inf = ValueSnapshot(2**63, start), ValueSnapshot(1e308 + 1e308, start)
    bad_histogram = HistogramSnapshot((0,) * 14 + (2,), 1e308 + 1e308, 2, 1e308, 1e308, start)
    collected: Collected = [
        (names.BATCH_TOKENS, [(GOOD, ValueSnapshot(3, start)), ((("k", "huge"),), huge)]),
        (names.BATCH_ITEMS, [(GOOD, inf)]),
        (names.REQUEST_DURATION, [(GOOD, bad_histogram)]),
        (names.GPU_POWER, [(GOOD, ValueSnapshot(float("nan"), start))]),
        (names.SYSTEM_MEMORY_USAGE, [(GOOD, ValueSnapshot(1e20, start))]),  # a finite double: kept
    ]
    points = Points(Resource({}))
    send(receiver, points, collected)
    send(receiver, points, collected)
    assert [(p.name, p.attributes, p.value) for p in receiver.metrics()] == 2 * [
        (names.BATCH_TOKENS.name, dict(GOOD), 3),
        (names.SYSTEM_MEMORY_USAGE.name, dict(GOOD), 1e20),
    ]
    warned = llmobs_warnings(caplog)
    bad = (names.BATCH_TOKENS, names.BATCH_ITEMS, names.REQUEST_DURATION, names.GPU_POWER)
    assert len(warned) == 4 and all(any(i.name in w for w in warned) for i in bad)


def test_an_attribute_that_is_not_valid_unicode_drops_its_series_once(
    receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    start = time.time_ns()
    surrogate = (("gen_ai.request.model", "bad\ud800"),)
    too_big = (("n", 2**64),)
    collected: Collected = [
        (names.BATCH_TOKENS, [(surrogate, ValueSnapshot(1, start)), (GOOD, ValueSnapshot(2, start))]),
        (names.BATCH_ITEMS, [(too_big, ValueSnapshot(1, start)), (GOOD, ValueSnapshot(4, start))]),
    ]
    points = Points(Resource({}))
    for _ in range(3):
        send(receiver, points, collected)
    assert sorted((p.name, p.value) for p in receiver.latest(names.BATCH_TOKENS.name)) == [("llmobs.batch.tokens", 2)]
    assert [p.attributes for p in receiver.metrics()] == [dict(GOOD)] * 6
    assert len(llmobs_warnings(caplog)) == 2
    assert [r for r in caplog.records if r.name.startswith("opentelemetry")] == []  # no encoder traceback
