"""init/shutdown and the export pipeline: both OTLP transports, temporality, the embedded summary,
a dead or black-holed backend, shutdown within its timeout, global providers, fork and exit."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import tracemalloc
from collections.abc import Callable

import pytest

import llmobs
from llmobs import _lifecycle, _logs
from tests.helpers import BASE, one
from tests.otlp_receiver import Mode, OTLPReceiver, blackhole, free_port
from tests.processes import run_python

SECRET = "s3cr3t-t0ken"
Otlp = Callable[..., OTLPReceiver]


@llmobs.monitor_inference(model="m", operation="chat")
def predict(x: int = 0) -> int:
    return x


def test_http_protobuf_carries_metrics_and_spans(otlp: Otlp) -> None:
    receiver = otlp(protocol="http/protobuf", traces=True, headers={"X-Api-Key": SECRET})
    predict()
    predict()
    duration = one(receiver, "gen_ai.server.request.duration", BASE)
    assert duration.count == 2 and duration.transport == "http" and duration.temporality == "cumulative"
    assert duration.resource["service.name"] == "test" and duration.scope == "llmobs"
    receiver.wait_for(lambda r: len(r.spans()) == 2)
    spans = receiver.spans()
    assert {s.transport for s in spans} == {"http"}
    assert all(h.get("x-api-key") == SECRET for h in receiver.headers)


def test_delta_temporality_sends_differences(otlp: Otlp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta")
    receiver = otlp(traces=False)
    predict(), predict(), predict()
    first = one(receiver, "gen_ai.server.request.duration", BASE)
    predict()
    second = one(receiver, "gen_ai.server.request.duration", BASE)
    assert (first.temporality, first.count, second.count) == ("delta", 3, 1)
    assert second.start_time_unix_nano == first.time_unix_nano
    active = one(receiver, "llmobs.inference.active_requests", BASE)
    assert active.temporality == "cumulative"  # up-down counters stay cumulative


def test_summary_is_the_embedded_default(capsys: pytest.CaptureFixture[str]) -> None:
    llmobs.init(service_name="demo", export_interval=0.2)
    assert _lifecycle.state.settings is not None and _lifecycle.state.settings.metrics_otlp is None

    @llmobs.monitor_inference(model="llama-3-8b", operation="chat")
    def generate(fail: bool) -> str:
        llmobs.current_inference().record_tokens(output=10)
        if fail:
            raise ValueError
        return "ok"

    for i in range(4):
        with contextlib.suppress(ValueError):
            generate(i == 0)

    def rows(printed: str) -> list[tuple[int, float]]:
        """The model's calls and error share in each table printed."""
        found = [line.split()[1:3] for line in printed.splitlines() if "llama-3-8b" in line]
        return [(int(calls), float(share.removesuffix("%"))) for calls, share in found]

    err, deadline = "", time.monotonic() + 10  # polled: a loaded machine prints the 0.2 s interval late
    while sum(calls for calls, _ in rows(err)) < 4:
        assert time.monotonic() < deadline, err
        time.sleep(0.05)
        err += capsys.readouterr().err
    # One table, 4 calls and 25.0 % errors, unless a loaded machine ran the first tick amid the calls.
    printed = rows(err)
    assert (sum(calls for calls, _ in printed), sum(round(calls * share / 100) for calls, share in printed)) == (4, 1)
    assert "{" not in err and "Traceback" not in err
    time.sleep(0.4)
    assert capsys.readouterr().err == ""  # idle intervals print nothing


def test_disabled_sdk_records_nothing(monkeypatch: pytest.MonkeyPatch, receiver: OTLPReceiver) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    llmobs.init(endpoint=receiver.grpc_endpoint)
    assert predict(5) == 5
    assert llmobs.force_flush() and receiver.requests == []
    assert _lifecycle.state.exports == [] and _lifecycle.state.tracer is None


def test_second_init_is_harmless(otlp: Otlp, caplog: pytest.LogCaptureFixture) -> None:
    receiver = otlp(traces=False)
    exports = list(_lifecycle.state.exports)
    with caplog.at_level(logging.WARNING, logger="llmobs"):
        llmobs.init(
            service_name="test", endpoint=receiver.grpc_endpoint, protocol="grpc", export_interval=3600, traces=False
        )
        llmobs.init(service_name="other")
    assert _lifecycle.state.exports == exports
    assert [r.getMessage() for r in caplog.records] == [
        "llmobs: init() was already called; the new settings are ignored (call llmobs.shutdown() first to change them)"
    ]


@pytest.mark.parametrize("mode", ["refuse", "hang"])
def test_dead_backend_slows_no_call_and_shutdown_is_bounded(
    otlp: Otlp, mode: Mode, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = otlp(traces=True, export_interval=0.05, headers={"authorization": f"Bearer {SECRET}"})
    receiver.mode = mode
    caplog.set_level(logging.DEBUG)
    deadline = time.monotonic() + 5
    while receiver.attempts < 1 and time.monotonic() < deadline:
        predict()
    assert receiver.attempts >= 1, "the exporter never reached the backend"
    started = time.monotonic()
    for _ in range(2000):
        predict()
    # Functional bound, not a benchmark: a blocked call path would wait on exports for seconds.
    assert time.monotonic() - started < 2.0
    started = time.monotonic()
    llmobs.shutdown(timeout=1.0)
    assert time.monotonic() - started < 1.5
    assert SECRET not in caplog.text


def test_black_holed_endpoint_shutdown_is_bounded() -> None:
    with blackhole() as endpoint:
        llmobs.init(endpoint=endpoint, export_interval=3600, traces=True)
        predict()
        started = time.monotonic()
        finished = llmobs.shutdown(timeout=1.0)
        elapsed = time.monotonic() - started
    assert finished is False and elapsed < 1.5


def test_refused_port_shutdown_is_bounded() -> None:
    llmobs.init(endpoint=f"http://127.0.0.1:{free_port()}", export_interval=3600, traces=True)
    predict()
    started = time.monotonic()
    llmobs.shutdown(timeout=1.0)
    assert time.monotonic() - started < 1.5


def test_span_memory_stays_bounded_when_backend_hangs(otlp: Otlp) -> None:
    receiver = otlp(traces=True)
    receiver.mode = "hang"
    tracemalloc.start()
    try:
        for _ in range(5000):
            predict()
        early = tracemalloc.get_traced_memory()[0]
        for _ in range(20000):
            predict()
        late = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert late - early < 4_000_000  # 20k unbounded spans would hold tens of MB


def test_exit_flushes_without_shutdown(receiver: OTLPReceiver) -> None:
    run_python(
        """
        import os, llmobs
        llmobs.init(service_name="exiting", endpoint=os.environ["RECEIVER_GRPC"], export_interval=3600)
        @llmobs.monitor_inference(model="m", operation="chat")
        def predict(): pass
        for _ in range(7): predict()
    """,
        receiver,
    )
    duration = one(receiver, "gen_ai.server.request.duration", BASE)
    assert duration.count == 7 and duration.resource["service.name"] == "exiting"
    assert len(receiver.spans()) == 7


def test_application_providers_are_used_not_replaced(receiver: OTLPReceiver) -> None:
    output = run_python(
        """
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        reader, spans = InMemoryMetricReader(), InMemorySpanExporter()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
        trace.set_tracer_provider(tracer_provider)
        import llmobs
        llmobs.init(service_name="app")
        @llmobs.monitor_inference(model="m", operation="chat")
        def predict(): llmobs.current_inference().record_tokens(output=4)
        for _ in range(3): predict()
        data = reader.get_metrics_data()
        found = {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
        print(found["gen_ai.server.request.duration"].data.data_points[0].count)
        print(found["llmobs.inference.token.usage"].data.data_points[0].sum)
        print(len(spans.get_finished_spans()), trace.get_tracer_provider() is tracer_provider)
    """,
        receiver,
    )
    assert output.split() == ["3", "12", "3", "True"]


def test_failed_init_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch, otlp: Otlp) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")
    with pytest.raises(llmobs.ConfigError, match="could not start its exporters"):
        otlp(traces=False)
    assert _lifecycle.state.settings is None and _lifecycle.state.exports == []
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_COMPRESSION")
    receiver = otlp(traces=False)
    predict()
    assert one(receiver, "gen_ai.server.request.duration", BASE).count == 1


def test_a_call_in_flight_across_fork_ends_in_the_child(receiver: OTLPReceiver) -> None:
    output = run_python(
        """
        import os, threading, llmobs
        from llmobs import _lifecycle
        llmobs.init(export_interval=3600, summary=False, gpu=False, host=False, traces=False)
        held, release = threading.Event(), threading.Event()
        def hold():  # another thread of the parent holds the series lock at fork time
            with _lifecycle.state.registry._lock:
                held.set()
                release.wait()
        @llmobs.monitor_inference(model="m", operation="chat")
        def predict(fork=False):
            if not fork:
                return "parent"
            threading.Thread(target=hold, daemon=True).start()
            held.wait()
            pid = os.fork()
            if pid == 0:
                return "child"
            release.set()
            os.waitpid(pid, 0)
            return "parent"
        predict()
        if predict(fork=True) == "child":
            os._exit(0)  # reached only if the child's call could end
        print("done")
    """,
        receiver,
    )
    assert output.split() == ["done"]


def test_one_huge_exception_message_does_not_lose_the_span_batch(otlp: Otlp) -> None:
    receiver = otlp(traces=True, capture_exception_messages=True)

    @llmobs.monitor_inference(model="m", operation="chat")
    def fail() -> None:
        raise ValueError("x" * 5_000_000)

    for _ in range(199):
        predict()
    with pytest.raises(ValueError):
        fail()
    assert llmobs.force_flush(timeout=10)
    receiver.wait_for(lambda r: len(r.spans()) >= 200)
    spans = receiver.spans()
    assert len(spans) == 200
    (failed,) = [s for s in spans if s.status_code == "STATUS_CODE_ERROR"]
    [(name, event)] = failed.events
    assert name == "exception" and event["exception.message"] == "x" * 4096
    assert len(event["exception.stacktrace"]) == 4096


def test_span_limits_follow_the_variables(monkeypatch: pytest.MonkeyPatch, otlp: Otlp) -> None:
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "10")
    receiver = otlp(traces=True, capture_exception_messages=True)

    @llmobs.monitor_inference(model="m", operation="chat")
    def fail() -> None:
        raise ValueError("message longer than ten")

    with pytest.raises(ValueError):
        fail()
    assert llmobs.force_flush(timeout=5)
    [span] = receiver.wait_for(lambda r: r.spans())
    assert span.events[0][1]["exception.message"] == "message lo"


def test_force_flush_during_a_black_hole_keeps_one_flush_in_flight_per_pipeline(otlp: Otlp) -> None:
    receiver = otlp(traces=True, inventory=False, gpu=False, host=False)  # no sampler threads starting late
    receiver.mode = "hang"
    predict()
    _logs.emit_event("test.record", {})
    results = [llmobs.force_flush(timeout=0.05)]
    receiver.wait_for(lambda r: r.attempts >= 3)  # the three pipelines' flushes are stuck in the receiver
    stuck = threading.active_count()
    results += [llmobs.force_flush(timeout=0.05) for _ in range(29)]
    # Before, each call left a thread per pipeline behind (5 -> 64 after 30 calls).
    assert threading.active_count() <= stuck + 1
    assert results == [False] * 30


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.parametrize("signal", ["spans", "logs"])
def test_refused_spans_and_logs_do_not_hold_shutdown_for_its_budget(
    signal: str, protocol: str, monkeypatch: pytest.MonkeyPatch, otlp: Otlp
) -> None:
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")  # one signal alone: no inventory record either
    receiver = otlp(protocol=protocol, traces=signal == "spans", inventory=False)
    receiver.mode = "refuse"
    for _ in range(5):
        predict() if signal == "spans" else _logs.emit_event("test.record", {})
    started = time.monotonic()
    llmobs.shutdown(timeout=5.0)
    elapsed = time.monotonic() - started
    assert receiver.attempts == 1  # one final attempt, no retries
    assert elapsed < 2.5  # functional bound: before, shutdown retried for all of its 5 s
