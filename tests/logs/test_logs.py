"""The logs signal against the tests' receiver: both transports, trace correlation, the configuration,
an application-installed provider, a dead backend, fork, and the application's own logging records."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable

import pytest
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk.trace import TracerProvider

import llmobs
from llmobs import _lifecycle, _logs
from llmobs import semconv as names
from llmobs._config import ConfigError, load
from llmobs._log_handler import HANDLER, LogHandler, TraceContextFilter
from tests.otlp_receiver import OTLPReceiver, blackhole
from tests.processes import run_python

TRACER = TracerProvider().get_tracer("tests")
SECRET = "hdr-s3cr3t-value"


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_an_event_carries_its_name_attributes_and_the_current_span(
    otlp: Callable[..., OTLPReceiver], protocol: str
) -> None:
    receiver = otlp(protocol, inventory=False, headers={"x-key": SECRET})
    with TRACER.start_as_current_span("outer") as span:
        _logs.emit_event("gen_ai.evaluation.result", {"gen_ai.evaluation.score.value": 0.5, "long": "y" * 5000})
    _logs.emit_event("outside", {}, severity=SeverityNumber.WARN, body="z" * 10_000)
    assert llmobs.force_flush()
    receiver.wait_for(lambda r: len(r.logs()) == 2)
    inside, outside = receiver.logs()
    context = span.get_span_context()
    assert (inside.trace_id, inside.span_id) == (format(context.trace_id, "032x"), format(context.span_id, "016x"))
    assert inside.event_name == inside.attributes[names.EVENT_NAME] == "gen_ai.evaluation.result"
    assert inside.attributes["gen_ai.evaluation.score.value"] == 0.5 and len(inside.attributes["long"]) == 256
    assert (inside.severity_number, inside.severity_text) == ("SEVERITY_NUMBER_INFO", "INFO")
    assert (outside.trace_id, outside.severity_text, len(outside.body)) == ("", "WARN", _logs.MAX_BODY_LENGTH + 1)
    assert inside.resource["service.name"] == "test" and inside.scope == "llmobs"
    assert all(SECRET not in str(record) for record in receiver.logs())
    assert {r.headers.get("x-key") for r in receiver.requests if r.signal == "logs"} == {SECRET}


def test_without_a_logs_exporter_events_are_no_ops(receiver: OTLPReceiver) -> None:
    _logs.emit_event("before.init", {"a": 1})
    llmobs.init(service_name="test", endpoint=receiver.grpc_endpoint, export_interval=3600)
    assert _lifecycle.state.logs is not None
    llmobs.shutdown()
    os.environ["OTEL_LOGS_EXPORTER"] = "none"
    try:
        llmobs.init(service_name="test", endpoint=receiver.grpc_endpoint, export_interval=3600)
        assert _lifecycle.state.logs is None and _logs.emitter.logger is None
        _logs.emit_event("dropped", {"a": 1})
        llmobs.force_flush()
    finally:
        del os.environ["OTEL_LOGS_EXPORTER"]
    assert "dropped" not in {r.event_name for r in receiver.logs()}
    assert "before.init" not in {r.event_name for r in receiver.logs()}


def test_the_logs_configuration() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    settings = load(env=env)
    assert settings.logs_otlp is not None and settings.logs_otlp.endpoint == "http://collector:4318/v1/logs"
    specific = load(env={**env, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://logs:9000/in"})
    assert specific.logs_otlp is not None and specific.logs_otlp.endpoint == "http://logs:9000/in"
    both = load(env={"OTEL_LOGS_EXPORTER": "console,otlp"})
    assert both.logs_console and both.logs_otlp is not None
    assert load(env={**env, "OTEL_LOGS_EXPORTER": "none"}).logs_otlp is None
    assert load().logs_otlp is None and not load().logs_console
    assert load(env={"LLMOBS_LOGGING": "true", "LLMOBS_INVENTORY": "false"}).capture_logging
    assert not load(env={"LLMOBS_INVENTORY": "false"}).inventory


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_LOGS_EXPORTER": "syslog"}, "OTEL_LOGS_EXPORTER has unsupported exporter"),
        ({"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL='http/json'"),
        ({"OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "5"}, "is in milliseconds"),
        ({"OTEL_EXPORTER_OTLP_LOGS_INSECURE": "maybe"}, "must be 'true' or 'false'"),
        ({"LLMOBS_ECS_LOG": "relative.json"}, "must be 'stderr' or an absolute file path"),
        ({"LLMOBS_PRINCIPAL_KEY": "short-" + SECRET[:4]}, "at least 16 characters (the value is not shown)"),
        ({"OTEL_EXPORTER_OTLP_LOGS_HEADERS": f"a=b,bad{SECRET}"}, "is malformed at entry 2"),
    ],
)
def test_bad_logs_settings_fail_with_the_fix_and_no_secret(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        load(env=env)
    assert SECRET not in str(caught.value) and SECRET[:4] not in str(caught.value)


def test_an_installed_logger_provider_is_used_not_replaced(receiver: OTLPReceiver) -> None:
    out = run_python(
        """
        import os
        from opentelemetry._logs import get_logger_provider, set_logger_provider
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
        import llmobs
        from llmobs import _logs
        provider = LoggerProvider()
        memory = InMemoryLogRecordExporter()
        provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
        set_logger_provider(provider)
        llmobs.init(service_name="app", endpoint=os.environ["RECEIVER_GRPC"], inventory=False)
        _logs.emit_event("through.app", {"n": 1})
        llmobs.shutdown()
        print(get_logger_provider() is provider, [r.log_record.event_name for r in memory.get_finished_logs()])
        """,
        receiver,
    )
    assert out.split() == ["True", "['through.app']"]
    assert receiver.logs() == []


@pytest.mark.parametrize("mode", ["refuse", "hang"])
def test_a_dead_backend_blocks_nothing_holds_bounded_memory_and_shutdown_is_bounded(
    otlp: Callable[..., OTLPReceiver], mode: str
) -> None:
    receiver = otlp("http/protobuf", inventory=False)
    receiver.mode = "hang" if mode == "hang" else "refuse"
    for i in range(10_000):
        _logs.emit_event("flood", {"i": i})
    pipeline = _lifecycle.state.logs
    assert pipeline is not None and pipeline.provider is not None
    processors = pipeline.provider._multi_log_record_processor._log_record_processors
    assert all(len(p._batch_processor._queue) <= _logs.MAX_QUEUE for p in processors)  # type: ignore[attr-defined]
    started = time.monotonic()
    finished = llmobs.shutdown(timeout=1)
    assert time.monotonic() - started < 3
    if mode == "hang":
        assert finished is False  # it said that records were lost


def test_a_black_holed_grpc_backend_does_not_hold_shutdown(receiver: OTLPReceiver) -> None:
    with blackhole() as endpoint:
        llmobs.init(service_name="test", endpoint=endpoint, export_interval=3600, inventory=False)
        _logs.emit_event("lost", {})
        started = time.monotonic()
        llmobs.shutdown(timeout=1)
        assert time.monotonic() - started < 3


def test_a_forked_child_logs_as_its_own_instance(receiver: OTLPReceiver) -> None:
    out = run_python(
        """
        import os
        import llmobs
        from llmobs import _logs
        llmobs.init(service_name="forks", endpoint=os.environ["RECEIVER_GRPC"], inventory=False)
        _logs.emit_event("parent", {})
        pid = os.fork()
        if pid == 0:
            _logs.emit_event("child", {})
            llmobs.shutdown()
            os._exit(0)
        os.waitpid(pid, 0)
        llmobs.shutdown()
        print(pid)
        """,
        receiver,
    )
    records = {record.event_name: record for record in receiver.logs()}
    assert set(records) == {"parent", "child"}
    assert records["child"].resource["process.pid"] == int(out)
    parent, child = records["parent"].resource, records["child"].resource
    assert parent["service.instance.id"] != child["service.instance.id"]


def test_capture_logging_sends_the_apps_records_with_their_trace(
    otlp: Callable[..., OTLPReceiver], caplog: pytest.LogCaptureFixture
) -> None:
    receiver = otlp(inventory=False, capture_logging=True)
    assert HANDLER in logging.getLogger().handlers
    app = logging.getLogger("tests.app")
    app.setLevel(logging.INFO)
    with TRACER.start_as_current_span("request") as span:
        app.warning("charged %s tokens", 42, extra={"tenant": "acme", "blob": object()})
        try:
            raise KeyError("a prompt the user typed")
        except KeyError:
            app.exception("lookup failed")
    llmobs.force_flush()
    receiver.wait_for(lambda r: len(r.logs()) == 2)
    warning, failure = receiver.logs()
    assert (warning.body, warning.severity_text, warning.scope) == ("charged 42 tokens", "WARN", "tests.app")
    assert warning.trace_id == format(span.get_span_context().trace_id, "032x")
    assert warning.attributes["tenant"] == "acme" and "blob" not in warning.attributes
    assert (
        warning.attributes[names.CODE_FUNCTION_NAME] == "test_capture_logging_sends_the_apps_records_with_their_trace"
    )
    assert failure.attributes[names.EXCEPTION_TYPE] == "KeyError"
    assert "a prompt the user typed" not in str(failure)
    llmobs.shutdown()
    assert HANDLER not in logging.getLogger().handlers


def test_what_is_logged_while_exporting_is_not_sent_again(otlp: Callable[..., OTLPReceiver]) -> None:
    """With the root logger at DEBUG, urllib3 and grpc log on llmobs's and the SDK's export threads."""
    receiver = otlp(inventory=False, capture_logging=True)
    chatty = logging.getLogger("urllib3.connectionpool")
    chatty.setLevel(logging.DEBUG)
    try:
        for name in ("llmobs-export-send", "OtelBatchLogRecordProcessor", "worker"):
            thread = threading.Thread(target=chatty.debug, args=(f"sent from {name}",), name=name)
            thread.start()
            thread.join()
        llmobs.force_flush()
    finally:
        chatty.setLevel(logging.NOTSET)
    (record,) = receiver.wait_for(lambda r: r.logs())
    assert record.body == "sent from worker"


def test_the_handler_sends_exception_messages_only_when_asked(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp(inventory=False, capture_exception_messages=True)
    app = logging.getLogger("tests.opted-in")
    app.addHandler(handler := LogHandler())
    try:
        try:
            raise KeyError("x" * 10_000)
        except KeyError:
            app.error("lookup failed", exc_info=True)
        llmobs.force_flush()
    finally:
        app.removeHandler(handler)
    (record,) = receiver.wait_for(lambda r: r.logs())
    assert record.attributes[names.EXCEPTION_MESSAGE].startswith("'xxx")
    assert len(record.attributes[names.EXCEPTION_MESSAGE]) == _logs.MAX_BODY_LENGTH + 1
    assert "Traceback" in record.attributes[names.EXCEPTION_STACKTRACE]


def test_the_filter_puts_trace_ids_on_records_for_any_formatter() -> None:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(TraceContextFilter())
    handler.setFormatter(logging.Formatter("%(message)s trace=%(otelTraceID)s span=%(otelSpanID)s"))
    app = logging.getLogger("tests.filtered")
    app.addHandler(handler)
    try:
        with trace.use_span(TRACER.start_span("s"), end_on_exit=True) as span:
            app.warning("inside")
        app.warning("outside")
    finally:
        app.removeHandler(handler)
    context = span.get_span_context()
    assert records == [
        f"inside trace={context.trace_id:032x} span={context.span_id:016x}",
        f"outside trace={'0' * 32} span={'0' * 16}",
    ]


def test_failed_calls_log_one_error_each_with_their_span_under_concurrency(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp(inventory=False, traces=True)

    @llmobs.monitor_inference(model="m", operation="chat")
    def fail(n: int) -> None:
        raise RuntimeError(f"secret prompt {n}")

    @llmobs.monitor_inference(model="m", operation="chat")
    def succeed(n: int) -> int:
        return n

    def work() -> None:
        for n in range(50):
            succeed(n)
            with contextlib.suppress(RuntimeError):
                fail(n)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    llmobs.force_flush()
    receiver.wait_for(lambda r: len(r.logs()) >= 400 and len(r.spans()) >= 800)
    records, spans = receiver.logs(), {span.span_id: span for span in receiver.spans()}
    assert len(records) == 400 and {r.event_name for r in records} == {names.INFERENCE_FAILURE_EVENT}
    assert all(
        spans[r.span_id].trace_id == r.trace_id and spans[r.span_id].status_code == "STATUS_CODE_ERROR" for r in records
    )
    assert len({r.span_id for r in records}) == 400
    assert all("secret prompt" not in str(r) for r in records)


def test_non_text_fields_are_dropped_not_exported(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp(inventory=False)
    odd: dict[str, object] = {"kept": 1, "nested": {"a": 1}, "nan": float("nan"), "x" * 200: "long key"}
    _logs.emit_event("odd", odd, body=b"bytes body")  # type: ignore[arg-type]
    llmobs.force_flush()
    (record,) = receiver.wait_for(lambda r: r.logs())
    assert record.attributes == {"kept": 1, names.EVENT_NAME: "odd"} and record.body is None
