"""The exposition: llmobs's own text writer equals prometheus_client's encoder byte for byte (escaping
included), OpenMetrics comes from prometheus_client, and promtool accepts both."""

from __future__ import annotations

import os

from opentelemetry.sdk.resources import Resource
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from llmobs import semconv
from llmobs._aggregation import Registry
from llmobs._points import Points
from llmobs._prometheus.exposition import _Collector, render, target_labels, text
from llmobs._prometheus.snapshot import Families, from_metrics, merge
from tests.prometheus.server import needs_promtool, promtool_check

ODD = 'a "quoted" back\\slash\nnew line, ünïcode'


def families() -> tuple[Families, dict[str, str]]:
    registry = Registry()
    for model in ("plain", ODD):
        duration = registry.series(semconv.REQUEST_DURATION, ((semconv.MODEL, model), (semconv.OPERATION, "chat")))
        for value in (0.005, 0.03, 0.03, 2.0, 100.0):
            duration.record(value)
    registry.series(semconv.REQUEST_DURATION, ((semconv.MODEL, "m"), (semconv.ERROR_TYPE, "KeyError"))).record(1.0)
    registry.series(semconv.TOKEN_USAGE, ((semconv.TOKEN_TYPE, "input"),)).record(70_000_000)
    registry.series(semconv.GPU_ENERGY, ((semconv.HW_ID, "GPU-1"),)).record(1.5e12)
    registry.series(semconv.GPU_UTILIZATION, ((semconv.HW_ID, "GPU-1"), ("le_like", "x"))).record(0.25)
    registry.series(semconv.ACTIVE_REQUESTS, ()).record(1)
    resource = Resource.create({"service.name": "svc", "deployment.environment": ODD})
    snapshot = from_metrics(Points(resource).build(registry.collect()))
    return merge([snapshot]), target_labels(snapshot.resource, "host:9464")


def test_the_text_writer_equals_prometheus_clients_encoder_byte_for_byte() -> None:
    merged, target = families()
    assert text(merged, target) == generate_latest(_Collector(merged, target))


def test_the_scraper_gets_openmetrics_when_it_asks() -> None:
    merged, target = families()
    body, content_type = render(merged, target, "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    parsed = {f.name: f for f in text_string_to_metric_families(body.decode())}  # type: ignore[no-untyped-call]
    duration = parsed["gen_ai_server_request_duration_seconds"]
    assert duration.unit == "seconds" and duration.type == "histogram"
    counts = [
        s.value for s in duration.samples if s.name.endswith("_count") and s.labels["gen_ai_request_model"] == ODD
    ]
    assert counts == [5]
    assert parsed["hw_energy_joules"].type == "counter"
    assert parsed["target"].samples[0].labels["deployment_environment"] == ODD


@needs_promtool
def test_promtool_accepts_the_text_format() -> None:
    """promtool 2.42 lints the text format only; OpenMetrics is checked by prometheus_client's strict
    parser above and by the real Prometheus in the other tests, which asks for it."""
    merged, target = families()
    body, _ = render(merged, target)
    checked = promtool_check(body)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_large_scrape_is_written_the_same_way() -> None:
    registry = Registry(max_series=3000)
    for i in range(2000):
        registry.series(semconv.REQUEST_DURATION, ((semconv.MODEL, f"m{i}"),)).record(i / 100)
    snapshot = from_metrics(Points(Resource.create({})).build(registry.collect()), pid=os.getpid())
    merged, target = merge([snapshot]), target_labels((), "h:1")
    assert text(merged, target) == generate_latest(_Collector(merged, target))


def test_the_overflow_series_is_exposed_like_any_other() -> None:
    registry = Registry(max_series=2)
    for model in ("a", "b", "c", "d"):
        registry.series(semconv.REQUEST_DURATION, ((semconv.MODEL, model),)).record(0.1)
    snapshot = from_metrics(Points(Resource.create({})).build(registry.collect()))
    body = text(merge([snapshot]), target_labels((), "h:1")).decode()
    counts = [line for line in body.splitlines() if line.startswith("gen_ai_server_request_duration_seconds_count")]
    assert len(counts) == 3  # a, b and the overflow series holding c and d
    (overflow,) = [line for line in counts if 'otel_metric_overflow="true"' in line]
    assert overflow.endswith(" 2.0")
