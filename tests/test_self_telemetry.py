"""llmobs reports what its own work costs and loses: under the SDK self-observability names (metric points,
spans and log records exported by outcome, export duration) and under ``llmobs.`` (points dropped by reason,
request bytes, the registry lock's hold, collector sample duration and lag, its own time per call)."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import MetricsData, NumberDataPoint
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from typing_extensions import override

import llmobs
from llmobs import _config, _lifecycle, _logs
from llmobs import semconv as names
from llmobs._aggregation import Registry, Snapshot
from llmobs._collector.publish import Publisher
from llmobs._collector.reading import Reading
from llmobs._collector.sampler import Sampler
from llmobs._config import OTLPTarget
from llmobs._otlp import metric_exporter
from llmobs._periodic import PeriodicExport
from llmobs._points import Points
from llmobs._self_telemetry import CallTiming, counted_spans
from llmobs._summary import SummaryExporter, render
from llmobs.testing import _LastExport
from tests.helpers import exported, one
from tests.otlp_receiver import OTLPReceiver

ATTRS = (("gen_ai.request.model", "m"),)
COMPONENTS = {"grpc": "otlp_grpc_metric_exporter", "http/protobuf": "otlp_http_metric_exporter"}


def export_to(receiver: OTLPReceiver, protocol: str, registry: Registry) -> PeriodicExport:
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint + "/v1/metrics"
    exporter = metric_exporter(OTLPTarget(protocol, endpoint, {}, 10))
    return PeriodicExport(registry, exporter, Points(Resource({})), 3600, 5, endpoint=endpoint)


def dropped(registry: Registry) -> dict[str, float]:
    """``llmobs.metric_data_point.dropped`` by ``error.type``, as one collection of ``registry`` has it."""
    return {
        str(dict(attributes)[names.ERROR_TYPE]): snapshot.value  # type: ignore[union-attr]
        for instrument, points in registry.collect()
        if instrument == names.DROPPED_POINTS
        for attributes, snapshot in points
    }


@pytest.mark.parametrize("protocol", sorted(COMPONENTS))
def test_an_export_reports_its_points_duration_size_and_lock_hold_in_the_next(
    receiver: OTLPReceiver, protocol: str
) -> None:
    registry = Registry()
    registry.series(names.BATCH_TOKENS, ATTRS).record(3)
    export = export_to(receiver, protocol, registry)
    try:
        receiver.mode = "refuse"
        assert not export.export_once()  # 1 point, refused
        receiver.mode = "ok"
        # 6 points: tokens, the lock hold, the call overhead, the refused export's count, duration and size
        assert export.export_once()
    finally:
        export.shutdown(time.monotonic() + 2)  # the final export reports the one before
    last = {(p.name, tuple(sorted(p.attributes.items()))): p for p in receiver.metrics()}
    component = ("otel.component.type", COMPONENTS[protocol])
    failed = (("error.type", "_OTHER"), component)
    exported_points = names.EXPORTED_POINTS.name
    assert last[(exported_points, failed)].value == 1
    assert last[(exported_points, (component,))].value == 6
    durations = last[(names.EXPORT_DURATION.name, (component,))]
    assert durations.count == 1 and 0 < (durations.sum or 0) < 5
    assert last[(names.EXPORT_DURATION.name, failed)].count == 1
    size = last[(names.EXPORT_SIZE.name, (component,))]
    assert (size.count, size.sum) == (1, receiver.requests[0].size)  # the bytes the receiver got
    assert last[(names.EXPORT_SIZE.name, failed)].count == 1
    hold = last[(names.LOCK_HOLD.name, ())]
    assert hold.count == 2 and 0 < (hold.max or 0) < 1  # one per snapshot sent before the last
    overhead = last[(names.CALL_OVERHEAD.name, ())].value or 0
    assert 0 < overhead < 1e-3  # about a microsecond; never more than a millisecond


def test_records_past_the_series_cap_count_as_overflow_exactly() -> None:
    registry = Registry(max_series=2)
    for tenant in range(5):
        registry.series(names.REQUEST_DURATION, (("tenant", str(tenant)),)).record(0.1)
    registry.series(names.REQUEST_DURATION, (("tenant", "4"),)).record(0.2)  # past the cap again
    registry.series(names.REQUEST_DURATION, (("tenant", "0"),)).record(0.2)  # a kept set: no loss
    assert dropped(registry) == {names.OVERFLOWED: 4}


def test_calls_past_a_functions_own_cap_count_as_overflow_and_reach_the_summary_footer() -> None:
    settings = _config.load(summary=False, gpu=False, host=False, traces=False, max_series=3, env={})
    sink = _LastExport()
    _lifecycle.start(settings, [sink], fresh=True)
    tenants = iter(range(6))

    @llmobs.monitor_inference(model="m")
    def predict() -> None:
        llmobs.current_inference().set_attribute("tenant", next(tenants))

    for _ in range(6):
        predict()  # the site keeps its base set and 2 tenants; 4 calls go to the overflow series
    assert llmobs.force_flush()
    assert sink.data is not None
    lines = render(_metrics(sink.data), 10.0)
    assert lines[-1] == "  llmobs dropped 4 data points (overflow 4)"


def test_values_dropped_as_invalid_are_counted_where_they_are_recorded() -> None:
    registry = Registry()
    registry.series(names.BATCH_TOKENS, ATTRS).record(2.0**63)
    registry.series(names.REQUEST_DURATION, ATTRS).record(float("nan"))
    registry.series(names.REQUEST_DURATION, ATTRS).record(0.5)
    assert dropped(registry) == {names.INVALID_VALUE: 2}


def test_points_otlp_cannot_carry_are_counted_by_the_export_that_left_them_out() -> None:
    registry = Registry()
    registry.series(names.BATCH_TOKENS, (("tenant", "\ud800"),)).record(1)  # a lone surrogate
    registry.series(names.BATCH_TOKENS, ATTRS).record(1)
    sink = _LastExport()
    export = PeriodicExport(registry, sink, Points(Resource({})), 3600, 5)
    try:
        assert export.export_once() and export.export_once()
    finally:
        export.shutdown(time.monotonic() + 2)
    assert dropped(registry) == {names.UNENCODABLE: 3}  # one per export, the final one included


def test_a_point_larger_than_one_request_is_counted_as_unencodable(receiver: OTLPReceiver) -> None:
    registry = Registry()
    registry.series(names.GPU_POWER, (("a", "x" * 5000),)).record(1)  # alone larger than a request
    registry.series(names.BATCH_TOKENS, ATTRS).record(1)
    endpoint = receiver.grpc_endpoint
    exporter = metric_exporter(OTLPTarget("grpc", endpoint, {}, 10))
    export = PeriodicExport(registry, exporter, Points(Resource({})), 3600, 5, max_bytes=3000, endpoint=endpoint)
    try:
        assert export.export_once()
        assert dropped(registry) == {names.UNENCODABLE: 1}
    finally:
        export.shutdown(time.monotonic() + 2)


def test_points_a_failed_final_export_could_not_deliver_are_counted_as_lost(
    receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    registry = Registry()
    registry.series(names.BATCH_TOKENS, ATTRS).record(3)
    registry.series(names.REQUEST_DURATION, ATTRS).record(0.5)
    export = export_to(receiver, "http/protobuf", registry)
    receiver.mode = "refuse"
    assert not export.export_once()  # sent again with the final export: not lost
    export.shutdown(time.monotonic() + 2)
    # The final export held the two points and the first export's self-telemetry: lock hold, overhead,
    # exported count, duration and size.
    assert dropped(registry) == {names.EXPORT_FAILED: 7}
    assert "the final metric export did not deliver 7 data points" in caplog.text


def test_the_summary_prints_a_footer_only_when_something_was_dropped() -> None:
    registry = Registry(max_series=1)
    registry.series(names.REQUEST_DURATION, names_of("a")).record(0.1)
    stream = io.StringIO()
    export = PeriodicExport(registry, SummaryExporter(stream), Points(Resource({}), delta=True), 3600, 5)
    try:
        assert export.export_once()
        assert "dropped" not in stream.getvalue() and stream.getvalue()
        registry.series(names.REQUEST_DURATION, names_of("b")).record(0.1)
        registry.series(names.REQUEST_DURATION, names_of("c")).record(0.1)
        registry.series(names.BATCH_TOKENS, ATTRS).record(2.0**63)
        assert export.export_once()
        assert stream.getvalue().splitlines()[-1] == "  llmobs dropped 3 data points (invalid_value 1, overflow 2)"
        stream.truncate(0)
        registry.series(names.REQUEST_DURATION, names_of("a")).record(0.1)
        assert export.export_once()  # a delta reader: the drops of the interval before are not repeated
        assert "dropped" not in stream.getvalue()
    finally:
        export.shutdown(time.monotonic() + 2)


class RefusingSpans(SpanExporter):
    """A span exporter that refuses every other export."""

    def __init__(self) -> None:
        self.calls = 0

    @override
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        return SpanExportResult.FAILURE if self.calls % 2 else SpanExportResult.SUCCESS


def traced_with_refusing_spans() -> tuple[_LastExport, Callable[[], None]]:
    """Start llmobs exporting metrics to a sink and spans to ``RefusingSpans``; a decorated no-op."""
    settings = _config.load(summary=False, gpu=False, host=False, traces=None, env={})
    sink = _LastExport()
    _lifecycle.start(settings, [sink], [RefusingSpans()], fresh=True)

    @llmobs.monitor_inference(model="m")
    def predict() -> None:
        pass

    return sink, predict


def test_span_exports_are_counted_by_outcome_under_the_exporters_type() -> None:
    sink, predict = traced_with_refusing_spans()
    for batch in (3, 2):
        for _ in range(batch):
            predict()
        assert llmobs.force_flush()  # one span export each: 3 spans refused, then 2 accepted
    assert llmobs.force_flush()  # the second export's count, recorded after the metrics were collected
    component = {names.COMPONENT_TYPE: f"{__name__}.RefusingSpans"}
    assert _value(sink, names.EXPORTED_SPANS.name, {**component, names.ERROR_TYPE: "_OTHER"}) == 3
    assert _value(sink, names.EXPORTED_SPANS.name, component) == 2
    assert _point(sink, names.EXPORT_DURATION.name, component).count == 1


class BrokenSpans(SpanExporter):
    @override
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        raise ConnectionError("down")


def test_a_span_export_that_raises_is_counted_by_the_exceptions_type_and_raises_on() -> None:
    registry = Registry()
    counted = counted_spans(registry, BrokenSpans())
    with pytest.raises(ConnectionError):  # to the batch processor, which logs it, as without llmobs
        counted.export([ReadableSpan(name="a"), ReadableSpan(name="b")])
    points = {
        (instrument.name, attributes): snapshot
        for instrument, found in registry.collect()
        for attributes, snapshot in found
    }
    key = tuple(sorted({names.COMPONENT_TYPE: f"{__name__}.BrokenSpans", names.ERROR_TYPE: "ConnectionError"}.items()))
    assert points[(names.EXPORTED_SPANS.name, key)].value == 2  # type: ignore[union-attr]
    assert points[(names.EXPORT_DURATION.name, key)].count == 1  # type: ignore[union-attr]


@pytest.mark.parametrize("protocol", sorted(COMPONENTS))
def test_otlp_span_and_log_exports_are_counted_under_their_component_types(
    otlp: Callable[..., OTLPReceiver], protocol: str
) -> None:
    receiver = otlp(protocol, inventory=False)

    @llmobs.monitor_inference(model="m")
    def predict() -> None:
        pass

    predict()
    predict()
    _logs.emit_event("llmobs.test", {})
    assert llmobs.force_flush()
    receiver.wait_for(lambda r: len(r.spans()) == 2 and len(r.logs()) == 1)
    kind = "grpc" if protocol == "grpc" else "http"
    spans = one(receiver, names.EXPORTED_SPANS.name, {names.COMPONENT_TYPE: f"otlp_{kind}_span_exporter"})
    logs = one(receiver, names.EXPORTED_LOGS.name, {names.COMPONENT_TYPE: f"otlp_{kind}_log_exporter"})
    assert (spans.value, logs.value) == (2, 1)
    durations = exported(receiver, names.EXPORT_DURATION.name)
    assert {p.attributes[names.COMPONENT_TYPE] for p in durations} >= {
        f"otlp_{kind}_span_exporter",
        f"otlp_{kind}_log_exporter",
    }


class SlowSource:
    """A resource source whose reading takes ``seconds``."""

    attributes = ()

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.read_done = threading.Event()
        self.began = 0.0

    def read(self, holder: bool) -> Reading:
        self.began = time.monotonic()
        time.sleep(self.seconds)
        self.read_done.set()
        return Reading()

    def close(self) -> None:
        pass


def test_a_collector_sample_reports_how_long_it_took_and_how_late_it_began() -> None:
    registry = Registry()
    source = SlowSource(0.05)
    sampler = Sampler("host", source, Publisher(registry, 60, 100), stale_after=10)
    try:
        asked = time.monotonic()
        sampler.request(holder=True)
        assert source.read_done.wait(5)

        def recorded() -> dict[str, tuple[dict[str, object], Snapshot]]:
            return {
                instrument.name: (dict(attributes), snapshot)
                for instrument, points in registry.collect()
                for attributes, snapshot in points
            }

        deadline = time.monotonic() + 5  # the sampler records both after it is no longer busy
        while len(histograms := recorded()) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        done = time.monotonic()
    finally:
        sampler.stop()
    attributes, took = histograms[names.SAMPLE_DURATION.name]
    assert attributes == {names.COLLECTOR_SOURCE: "host"}
    assert took.count == 1 and 0.05 <= took.sum <= done - asked  # type: ignore[union-attr]
    attributes, lag = histograms[names.SAMPLE_LAG.name]
    assert attributes == {names.COLLECTOR_SOURCE: "host"}
    # At most the time from the request to the read's start as seen here, however late the thread woke.
    assert lag.count == 1 and 0 <= lag.sum <= source.began - asked  # type: ignore[union-attr]


def test_the_call_timing_records_nothing_where_the_application_sees_it() -> None:
    settings = _config.load(summary=False, gpu=False, host=False, traces=False, env={})
    sink = _LastExport()
    _lifecycle.start(settings, [sink], fresh=True)
    overhead = CallTiming().measure()
    assert overhead is not None and 0 < overhead < 1e-3
    assert llmobs.force_flush() and sink.data is not None
    assert list(_metrics(sink.data)) == []


def names_of(tenant: str) -> tuple[tuple[str, Any], ...]:
    return (("tenant", tenant),)


def _metrics(data: MetricsData) -> Any:
    return (m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics)


def _point(sink: _LastExport, name: str, attributes: dict[str, Any]) -> Any:
    assert sink.data is not None
    found = [
        p for m in _metrics(sink.data) if m.name == name for p in m.data.data_points if dict(p.attributes) == attributes
    ]
    assert len(found) == 1, (name, attributes)
    return found[0]


def _value(sink: _LastExport, name: str, attributes: dict[str, Any]) -> float:
    point = _point(sink, name, attributes)
    assert isinstance(point, NumberDataPoint)
    return point.value


def test_with_the_sdks_internal_metrics_enabled_the_span_queue_and_processed_spans_reach_the_registry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")  # the user's choice, never llmobs's
    sink, predict = traced_with_refusing_spans()
    for _ in range(3):
        predict()
    assert llmobs.force_flush()  # the spans leave the queue
    assert llmobs.force_flush()  # the counts they left behind are exported
    assert sink.data is not None
    processed = [p for m in _metrics(sink.data) if m.name == names.PROCESSED_SPANS.name for p in m.data.data_points]
    assert [p.value for p in processed] == [3]
    component = dict(processed[0].attributes)
    assert component[names.COMPONENT_TYPE] == "batching_span_processor"
    assert _value(sink, names.SPAN_QUEUE_SIZE.name, component) == 0
    assert _value(sink, names.SPAN_QUEUE_CAPACITY.name, component) == 2048


def test_without_the_variable_the_sdk_reports_no_processor_metrics() -> None:
    sink, predict = traced_with_refusing_spans()
    predict()
    assert llmobs.force_flush() and llmobs.force_flush() and sink.data is not None
    assert not [m for m in _metrics(sink.data) if m.name in names.PROCESSOR_INSTRUMENTS]


def test_with_the_sdks_internal_metrics_enabled_the_log_queue_reaches_the_registry(
    otlp: Callable[..., OTLPReceiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    receiver = otlp("grpc", inventory=False, traces=False)
    _logs.emit_event("llmobs.test", {})
    _logs.emit_event("llmobs.test", {})
    assert llmobs.force_flush()
    receiver.wait_for(lambda r: len(r.logs()) == 2)
    (processed,) = exported(receiver, names.PROCESSED_LOGS.name)
    assert processed.value == 2 and processed.attributes[names.COMPONENT_TYPE] == "batching_log_processor"
    (capacity,) = exported(receiver, names.LOG_QUEUE_CAPACITY.name)
    assert capacity.value == _logs.MAX_QUEUE
