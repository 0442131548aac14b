"""The application's own ``logging`` records, correlated with traces: a filter that puts the current
trace and span ids on each record (for any formatter), and a handler that sends records through
llmobs's logs pipeline (OTLP, ECS lines).

The SDK's ``LoggingHandler`` is deprecated (it warns on construction) and always exports exception
messages and stack traces; this handler exports them only with ``capture_exception_messages``.
"""

from __future__ import annotations

import logging
import traceback

from opentelemetry import trace
from opentelemetry.sdk._logs._internal import std_to_otel

from ._attributes import AttributeValue, clean_value
from ._failsafe import guarded
from ._logs import capped, emitter
from .semconv import (
    CODE_FILE_PATH,
    CODE_FUNCTION_NAME,
    CODE_LINE_NUMBER,
    EXCEPTION_MESSAGE,
    EXCEPTION_STACKTRACE,
    EXCEPTION_TYPE,
)

_RESERVED = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_SEVERITY_TEXT = {"WARNING": "WARN", "CRITICAL": "FATAL"}  # the logs data model's names
_EXPORT_THREADS = ("llmobs-", "OtelBatch")


class TraceContextFilter(logging.Filter):
    """Adds ``otelTraceID``, ``otelSpanID`` (hex, "0"s outside a span) and ``otelTraceSampled`` to every
    record, the names of OpenTelemetry's logging instrumentation: ``handler.addFilter(TraceContextFilter())``,
    then ``%(otelTraceID)s`` in a format string."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        record.otelTraceID = format(context.trace_id, "032x")
        record.otelSpanID = format(context.span_id, "016x")
        record.otelTraceSampled = context.trace_flags.sampled
        return True


class LogHandler(logging.Handler):
    """Sends records through llmobs's logs pipeline, with the current trace and span ids; nothing while
    the logs signal is off. ``logging.getLogger("app").addHandler(llmobs.LogHandler())``, or
    ``init(capture_logging=True)`` for the root logger."""

    def emit(self, record: logging.LogRecord) -> None:
        # No export loops: what the exporters and their HTTP/gRPC libraries log while they send (on
        # llmobs's and the SDK's own threads) is not sent again.
        if (
            emitter.provider is not None
            and not record.name.startswith("opentelemetry")
            and not (record.threadName or "").startswith(_EXPORT_THREADS)
        ):
            _forward(record)


@guarded(where="forwarding a logging record")
def _forward(record: logging.LogRecord) -> None:
    provider = emitter.provider
    if provider is None:
        return
    severity = std_to_otel(record.levelno)
    provider.get_logger(record.name).emit(
        timestamp=int(record.created * 1e9),
        severity_number=severity,
        severity_text=_SEVERITY_TEXT.get(record.levelname, record.levelname),
        body=capped(record.getMessage()),
        attributes=_attributes(record),
    )


def _attributes(record: logging.LogRecord) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        CODE_FILE_PATH: record.pathname,
        CODE_FUNCTION_NAME: record.funcName,
        CODE_LINE_NUMBER: record.lineno,
    }
    for key, value in vars(record).items():
        primitive = isinstance(value, (str, bool, int, float))  # other extras are the app's own objects
        cleaned = clean_value(key, value) if primitive and key not in _RESERVED else None
        if cleaned is not None:
            attributes[key] = cleaned
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        attributes[EXCEPTION_TYPE] = type(exc).__qualname__
        if emitter.capture_messages:
            attributes[EXCEPTION_MESSAGE] = capped(str(exc))
            attributes[EXCEPTION_STACKTRACE] = capped("".join(traceback.format_exception(exc)))
    return attributes


HANDLER = LogHandler()
"""The one handler ``init(capture_logging=True)`` puts on the root logger."""
