"""OTLP specifics: exports split under a byte budget measured with the real encoder (and a receiver with
the Collector's 4 MiB gRPC limit), Retry-After parsing, URLs fit for a log line."""

from __future__ import annotations

import logging
import time
from email.utils import formatdate

import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics.export import MetricsData
from opentelemetry.sdk.resources import Resource

from llmobs import semconv as names
from llmobs._aggregation import Registry
from llmobs._config import OTLPTarget
from llmobs._otlp import metric_exporter, public_url, retry_after, split
from llmobs._periodic import PeriodicExport
from llmobs._points import Points
from tests.otlp_receiver import OTLPReceiver

MIB = 1024 * 1024


def points_of(data: list[MetricsData]) -> list[tuple[str, object]]:
    return [
        (m.name, p.attributes)
        for d in data
        for rm in d.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        for p in m.data.data_points
    ]


def registry_of(series: int, width: int) -> Registry:
    registry = Registry(max_series=series)
    for i in range(series):
        attrs = tuple((key, f"{i}-{key}".ljust(width, "x")) for key in ("a", "b", "c"))
        registry.series(names.REQUEST_DURATION, attrs).record(0.5)
        if i % 10 == 0:
            registry.series(names.BATCH_TOKENS, attrs[:1]).record(i)
    return registry


def test_split_keeps_every_point_in_order_in_requests_under_the_budget(caplog: pytest.LogCaptureFixture) -> None:
    registry = registry_of(60, 40)
    giant = (("a", "x" * 5000),)
    registry.series(names.GPU_POWER, giant).record(1)  # alone larger than one request
    data = Points(Resource({"service.name": "s"})).build(registry.collect())
    split_up = split(data, 3000)
    requests = [request for request, _ in split_up]
    assert len(requests) > 5 and all(encode_metrics(r).ByteSize() == size <= 3000 for r, size in split_up)
    assert points_of(requests) == [p for p in points_of([data]) if p[1] != dict(giant)]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "llmobs: a point of hw.power is too large to export"
    ]
    assert split(data, 10 * MIB) == [(data, encode_metrics(data).ByteSize())]


@pytest.mark.parametrize("max_bytes", [4_000_000, 10**9])
def test_a_large_export_arrives_whole_at_a_receiver_with_the_collectors_limit(max_bytes: int) -> None:
    with OTLPReceiver(max_receive_bytes=4 * MIB) as receiver:
        registry = registry_of(5000, 250)  # about 5.5 MB encoded
        exporter = metric_exporter(OTLPTarget("grpc", receiver.grpc_endpoint, {}, 10))
        export = PeriodicExport(
            registry, exporter, Points(Resource({})), 3600, 10, max_bytes=max_bytes, endpoint=receiver.grpc_endpoint
        )
        try:
            accepted, received = export.export_once(), receiver.metrics()
            sizes = [r.size for r in receiver.requests]
        finally:
            export.shutdown(time.monotonic() + 2)
    if max_bytes > 4 * MIB:  # the control: unsplit, the receiver refuses it all
        assert not accepted and sizes == []
        return
    assert accepted and len(sizes) >= 2 and max(sizes) <= max_bytes
    durations = [p for p in received if p.name == names.REQUEST_DURATION.name]
    assert len(durations) == 5000 and sum(p.count or 0 for p in durations) == 5000
    assert len([p for p in received if p.name == names.BATCH_TOKENS.name]) == 500


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after("120") == 120
    assert retry_after(" 7 ") == 7
    assert retry_after(formatdate(time.time() - 60, usegmt=True)) == 0
    later = retry_after(formatdate(time.time() + 60, usegmt=True))
    assert later is not None and 55 < later <= 60
    assert [retry_after(v) for v in (None, "", "soon", "-3", "1e9999")] == [None] * 5


def test_public_url_drops_credentials_query_and_fragment() -> None:
    assert public_url("https://u:p%40ss@otel.example:4318/v1/metrics?key=s#f") == "https://otel.example:4318/v1/metrics"
    assert public_url("http://collector:4317") == "http://collector:4317"
