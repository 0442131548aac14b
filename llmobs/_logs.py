"""The logs signal: log records (failed calls, 5xx, security events, the inventory, ``emit_event``) through
the OpenTelemetry SDK's ``LoggerProvider`` with bounded batch processors, or through the provider the
application installed (used, never replaced). Started and stopped by ``_lifecycle``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry._logs import Logger, NoOpLoggerProvider, SeverityNumber, get_logger_provider
from opentelemetry._logs import LoggerProvider as APILoggerProvider
from opentelemetry._logs._internal import ProxyLoggerProvider  # the API exports no name for it
from opentelemetry.context import Context

from ._attributes import AttributeValue, clean_value
from ._failsafe import guarded
from ._otlp import FinalAttempt
from ._version import __version__
from .semconv import ERROR_TYPE, EVENT_DURATION, EXCEPTION_MESSAGE, EXCEPTION_STACKTRACE

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import LogRecordExporter
    from opentelemetry.sdk.resources import Resource

    from ._config import Settings

MAX_BODY_LENGTH = 4096
"""Characters kept of a body, an exception message or a stack trace: one record must not carry 5 MB."""
MAX_QUEUE = 2048  # records waiting per exporter; past it the batch processor drops (memory stays bounded)


class _Emitter:
    """Where records go while the logs signal is on (``logger`` is None when it is off), and whether
    exception messages may go on them."""

    logger: Logger | None = None
    provider: APILoggerProvider | None = None
    capture_messages = False


emitter = _Emitter()


@guarded(where="emitting a log record")
def emit_event(
    name: str,
    attributes: Mapping[str, AttributeValue],
    *,
    severity: SeverityNumber = SeverityNumber.INFO,
    body: str | None = None,
) -> None:
    """One log record with event.name=name through llmobs's logger; nothing when the logs signal is off.

    The current span's trace_id/span_id go on the record (the SDK reads the active context).
    """
    if emitter.logger is not None:
        emit(name, dict(_cleaned(attributes)), severity, body if isinstance(body, str) else None)


def emit(
    name: str | None,
    attributes: dict[str, AttributeValue],
    severity: SeverityNumber,
    body: str | list[str] | None,
    context: Context | None = None,
) -> None:
    """A record of clean ``attributes``, in ``context`` (default: the current one); callers check
    ``emitter.logger`` first, so that nothing is built while the signal is off."""
    logger = emitter.logger
    if logger is None:
        return
    if name is not None:
        attributes["event.name"] = name
    logger.emit(
        severity_number=severity,
        severity_text=severity.name.rstrip("0123456789"),
        body=capped(body) if isinstance(body, str) else body,
        attributes=attributes,
        event_name=name,
        context=context,
    )


@guarded(where="error log record")
def failed(
    name: str,
    attributes: dict[str, AttributeValue],
    error_type: str,
    error: BaseException | None,
    duration: float,
    context: Context | None,
) -> None:
    """The ERROR record of a failed call or a 5xx: ``error.type`` and the duration; the exception's
    message and stack trace only with ``capture_exception_messages`` (they may quote a prompt)."""
    attributes[ERROR_TYPE] = error_type
    attributes[EVENT_DURATION] = int(duration * 1e9)
    if error is not None and emitter.capture_messages:
        from ._spans import readable, stacktrace

        attributes[EXCEPTION_MESSAGE] = capped(readable(error))
        attributes[EXCEPTION_STACKTRACE] = capped(stacktrace(error))
    emit(name, attributes, SeverityNumber.ERROR, f"{name}: {error_type}", context)


def capped(text: str) -> str:
    """``text`` cut at ``MAX_BODY_LENGTH`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= MAX_BODY_LENGTH else text[:MAX_BODY_LENGTH] + "…"


def span_context(span: trace.Span | None) -> Context | None:
    """The context that puts ``span``'s ids on a record (None: the current context's)."""
    return None if span is None else trace.set_span_in_context(span)


def _cleaned(attributes: Mapping[str, AttributeValue]) -> list[tuple[str, AttributeValue]]:
    """Attribute pairs that a record can carry: primitives, text capped (one warning per key)."""
    pairs = []
    for key, value in attributes.items():
        cleaned = clean_value(key, value) if isinstance(key, str) else None
        if cleaned is not None:
            pairs.append((key, cleaned))
    return pairs


class Pipeline:
    """llmobs's own ``LoggerProvider`` (None when the application's is used) and its exporters."""

    def __init__(self, provider: LoggerProvider | None, exporters: list[LogRecordExporter]) -> None:
        self.provider = provider
        self.exporters = exporters

    def force_flush(self, timeout: float) -> bool:
        return self.provider is None or self.provider.force_flush(int(timeout * 1000))

    def shutdown(self, deadline: float) -> bool:
        """Flush and stop by ``deadline``; past it, shut the exporters so that a stuck export ends."""
        from ._log_handler import HANDLER

        logging.getLogger().removeHandler(HANDLER)
        emitter.logger = emitter.provider = None
        if self.provider is None:
            return True
        for exporter in self.exporters:
            if isinstance(exporter, FinalAttempt):
                exporter.closing()
        stopper = threading.Thread(target=self.provider.shutdown, daemon=True)
        stopper.start()
        stopper.join(max(0.0, deadline - time.monotonic()))
        if not stopper.is_alive():
            return True
        for exporter in self.exporters:
            _shut(exporter)
        return False


@guarded(where="log exporter shutdown")
def _shut(exporter: LogRecordExporter) -> None:
    exporter.shutdown()  # type: ignore[no-untyped-call]


def start(settings: Settings, resource: Resource) -> Pipeline | None:
    """The logs pipeline ``settings`` ask for; None when the logs signal is off."""
    emitter.capture_messages = settings.capture_exception_messages
    provider: APILoggerProvider = get_logger_provider()
    if not isinstance(provider, (NoOpLoggerProvider, ProxyLoggerProvider)):
        pipeline = Pipeline(None, [])
    else:
        exporters = _exporters(settings)
        if not exporters:
            return None
        pipeline = Pipeline(own := _provider(resource, exporters, settings.export_timeout), exporters)
        provider = own
    emitter.provider, emitter.logger = provider, provider.get_logger("llmobs", __version__)
    if settings.capture_logging:
        from ._log_handler import HANDLER

        root = logging.getLogger()
        if HANDLER not in root.handlers:  # a forked child keeps its parent's
            root.addHandler(HANDLER)
    return pipeline


def _exporters(settings: Settings) -> list[LogRecordExporter]:
    exporters: list[LogRecordExporter] = []
    if settings.logs_otlp is not None:
        from ._otlp_logs import OTLPLogs

        exporters.append(OTLPLogs(settings.logs_otlp))
    if settings.logs_console:
        from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter

        exporters.append(ConsoleLogRecordExporter())
    if settings.ecs_log is not None:
        from ._ecs import ECSExporter

        exporters.append(ECSExporter(settings.ecs_log))
    return exporters


def _provider(resource: Resource, exporters: list[LogRecordExporter], timeout: float) -> LoggerProvider:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    from ._aggregation import Registry
    from ._lifecycle import state
    from ._self_telemetry import counted_logs, processor_meters

    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    registry = state.registry
    meters = processor_meters(registry) if isinstance(registry, Registry) else None
    for exporter in exporters:
        counted = counted_logs(registry, exporter) if isinstance(registry, Registry) else exporter
        processor = BatchLogRecordProcessor(
            counted, max_queue_size=MAX_QUEUE, export_timeout_millis=timeout * 1000, meter_provider=meters
        )
        provider.add_log_record_processor(processor)
    return provider
