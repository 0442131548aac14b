"""init/shutdown and the export pipeline: both OTLP transports, temporality, the embedded summary,
a dead or black-holed backend, shutdown within its timeout, global providers, fork and exit."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import time
import tracemalloc
from typing import Any

import pytest

import llmobs
from llmobs import _lifecycle
from tests.helpers import BASE, one
from tests.otlp_receiver import OTLPReceiver, blackhole, free_port

SECRET = "s3cr3t-t0ken"


@llmobs.monitor_inference(model="m", operation="chat")
def predict(x: int = 0) -> int:
    return x


def test_http_protobuf_carries_metrics_and_spans(otlp: Any) -> None:
    receiver = otlp(protocol="http/protobuf", traces=True, headers={"X-Api-Key": SECRET})
    predict()
    predict()
    duration = one(receiver, "gen_ai.server.request.duration", BASE)
    assert duration.count == 2 and duration.transport == "http" and duration.temporality == "cumulative"
    assert duration.resource["service.name"] == "test" and duration.scope == "llmobs"
    spans = receiver.wait_for(lambda r: len(r.spans()) == 2 and r.spans())
    assert {s.transport for s in spans} == {"http"}
    assert all(h.get("x-api-key") == SECRET for h in receiver.headers)


def test_delta_temporality_sends_differences(otlp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
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
        try:
            generate(i == 0)
        except ValueError:
            pass
    time.sleep(0.5)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "llama-3-8b" in line]
    assert len(lines) == 1, err
    assert lines[0].split()[1:3] == ["4", "25.0%"]
    assert "{" not in err and "Traceback" not in err
    time.sleep(0.4)
    assert capsys.readouterr().err == ""  # idle intervals print nothing


def test_disabled_sdk_records_nothing(monkeypatch: pytest.MonkeyPatch, receiver: OTLPReceiver) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    llmobs.init(endpoint=receiver.grpc_endpoint)
    assert predict(5) == 5
    assert llmobs.force_flush() and receiver.requests == []
    assert _lifecycle.state.exports == [] and _lifecycle.state.tracer is None


def test_second_init_is_harmless(otlp: Any, caplog: pytest.LogCaptureFixture) -> None:
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
    otlp: Any, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = otlp(traces=True, export_interval=0.05, headers={"authorization": f"Bearer {SECRET}"})
    receiver.mode = mode  # type: ignore[assignment]
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


def test_span_memory_stays_bounded_when_backend_hangs(otlp: Any) -> None:
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


def run_python(code: str, receiver: OTLPReceiver, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (fork, exit and global providers need one)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMOBS_"))}
    full_env.update(env, RECEIVER_GRPC=receiver.grpc_endpoint, RECEIVER_HTTP=receiver.http_endpoint)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


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


def test_forked_child_exports_as_its_own_instance(receiver: OTLPReceiver) -> None:
    run_python(
        """
        import os, llmobs
        llmobs.init(service_name="forking", endpoint=os.environ["RECEIVER_HTTP"], protocol="http/protobuf",
                    export_interval=3600, traces=False)
        @llmobs.monitor_inference(model="m", operation="chat")
        def predict(): pass
        predict()
        pid = os.fork()
        if pid == 0:
            for _ in range(3): predict()
            llmobs.shutdown()
            os._exit(0)
        os.waitpid(pid, 0)
        predict()
    """,
        receiver,
    )
    points = [p for p in receiver.metrics() if p.name == "gen_ai.server.request.duration"]
    by_instance: dict[str, int] = {}
    for p in points:
        by_instance[p.resource["service.instance.id"]] = p.count  # cumulative: the last one wins
    assert sorted(by_instance.values()) == [2, 3]


def test_application_providers_are_used_not_replaced(receiver: OTLPReceiver) -> None:
    result = run_python(
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
    assert result.stdout.split() == ["3", "12", "3", "True"]


def test_failed_init_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch, otlp: Any) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")
    with pytest.raises(llmobs.ConfigError, match="could not start its exporters"):
        otlp(traces=False)
    assert _lifecycle.state.settings is None and _lifecycle.state.exports == []
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_COMPRESSION")
    receiver = otlp(traces=False)
    predict()
    assert one(receiver, "gen_ai.server.request.duration", BASE).count == 1


def test_a_call_in_flight_across_fork_ends_in_the_child(receiver: OTLPReceiver) -> None:
    result = run_python(
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
    assert result.stdout.split() == ["done"]
