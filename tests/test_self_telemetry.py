"""llmobs reports what its own OTLP exports cost and lose, under the SDK self-observability names:
points exported by outcome, export duration, and the registry lock's longest hold per snapshot."""

from __future__ import annotations

import time

import pytest
from opentelemetry.sdk.resources import Resource

from llmobs import semconv as names
from llmobs._aggregation import Registry
from llmobs._config import OTLPTarget
from llmobs._otlp import metric_exporter
from llmobs._periodic import PeriodicExport
from llmobs._points import Points
from tests.otlp_receiver import OTLPReceiver

ATTRS = (("gen_ai.request.model", "m"),)
COMPONENTS = {"grpc": "otlp_grpc_metric_exporter", "http/protobuf": "otlp_http_metric_exporter"}


def export_to(receiver: OTLPReceiver, protocol: str, registry: Registry) -> PeriodicExport:
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint + "/v1/metrics"
    exporter = metric_exporter(OTLPTarget(protocol, endpoint, {}, 10))
    return PeriodicExport(registry, exporter, Points(Resource({})), 3600, 5, endpoint=endpoint)


@pytest.mark.parametrize("protocol", sorted(COMPONENTS))
def test_an_export_reports_its_points_duration_and_lock_hold_in_the_next(receiver: OTLPReceiver, protocol: str) -> None:
    registry = Registry()
    registry.series(names.BATCH_TOKENS, ATTRS).record(3)
    export = export_to(receiver, protocol, registry)
    try:
        receiver.mode = "refuse"
        assert not export.export_once()  # 1 point, refused
        receiver.mode = "ok"
        assert export.export_once()  # 4 points: tokens, the lock hold, the refused export's two
    finally:
        export.shutdown(time.monotonic() + 2)  # the final export reports the one before
    last = {(p.name, tuple(sorted(p.attributes.items()))): p for p in receiver.metrics()}
    component = ("otel.component.type", COMPONENTS[protocol])
    exported = names.EXPORTED_POINTS.name
    assert last[(exported, (("error.type", "_OTHER"), component))].value == 1
    assert last[(exported, (component,))].value == 4
    durations = last[(names.EXPORT_DURATION.name, (component,))]
    assert durations.count == 1 and 0 < (durations.sum or 0) < 5
    assert last[(names.EXPORT_DURATION.name, (("error.type", "_OTHER"), component))].count == 1
    hold = last[(names.LOCK_HOLD.name, ())]
    assert hold.count == 2 and 0 < (hold.max or 0) < 1  # one per snapshot sent before the last
