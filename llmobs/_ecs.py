"""ECS JSON lines (Elastic Common Schema, through ecs-logging's formatter) for shippers that read files:
Filebeat, Logstash, the Splunk forwarder. One line per log record, trace ids in ``trace.id``/``span.id``.

A file is opened once, append-only, without following a symlink, created 0600; an existing file that
others may read, or that is not ours, is refused at ``init``. Each batch is one ``write``, so that lines
of forked workers appending to the same file never interleave.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from typing_extensions import override

from ._config import ConfigError
from ._failsafe import warn_once
from .semconv import SERVICE_NAME

FILE_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
_LEVELS = {"TRACE": "DEBUG", "WARN": "WARNING", "FATAL": "CRITICAL"}  # logs data model -> Python level names


def open_private(path: str) -> int:
    """An append-only descriptor of ``path``, a regular file private to this user; ConfigError otherwise."""
    try:
        fd = os.open(path, FILE_FLAGS, 0o600)
    except OSError as exc:
        raise ConfigError(
            f"llmobs cannot open the ECS log file {path!r} ({exc.strerror}); fix LLMOBS_ECS_LOG"
        ) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        os.close(fd)
        raise ConfigError(
            f"the ECS log file {path!r} must be a regular file of this user that others cannot read or write "
            "(chmod 600 it, or let llmobs create it)"
        )
    return fd


class ECSExporter(LogRecordExporter):
    """Writes each record as one ECS JSON line to ``stderr`` or to a file path."""

    def __init__(self, destination: str) -> None:
        try:
            import ecs_logging
        except ImportError:
            raise ConfigError("LLMOBS_ECS_LOG needs ecs-logging: pip install 'llmobs[ecs]'") from None

        self._fd = None if destination == "stderr" else open_private(destination)
        exclude = [
            "log.origin",
            "log.original",
            "process.thread",
            "process.name",
        ]  # the exporter thread's, not the call's
        self._formatter = ecs_logging.StdlibFormatter(exclude_fields=exclude)

    @override
    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        lines = "".join(line + "\n" for line in map(self._line, batch) if line is not None)
        data = lines.encode("utf-8", "backslashreplace")
        if self._fd is None:
            sys.stderr.write(lines)
            sys.stderr.flush()
            return LogRecordExportResult.SUCCESS
        while data:
            data = data[os.write(self._fd, data) :]
        return LogRecordExportResult.SUCCESS

    def _line(self, readable: ReadableLogRecord) -> str | None:
        try:
            return self._formatter.format(_stdlib_record(readable))
        except Exception:  # noqa: BLE001 - one record that cannot be formatted is dropped, not the batch
            warn_once("ecs:format", "llmobs: a log record could not be written as an ECS line; dropped")
            return None

    @override
    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True  # every export is written when it returns

    @override
    def shutdown(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _stdlib_record(readable: ReadableLogRecord) -> logging.LogRecord:
    """The record as ecs-logging's formatter reads one: attributes as extras (dotted keys nest)."""
    record = readable.log_record
    level = _LEVELS.get(record.severity_text or "", record.severity_text or "INFO")
    seconds = (record.timestamp or record.observed_timestamp or 0) / 1e9
    extras: dict[str, Any] = dict(record.attributes or {})
    if record.trace_id:
        extras["trace.id"] = format(record.trace_id, "032x")
        extras["span.id"] = format(record.span_id, "016x")
    service = readable.resource.attributes.get(SERVICE_NAME)
    if service is not None:
        extras.setdefault("service.name", service)
    body = record.body
    message = " ".join(map(str, body)) if isinstance(body, (list, tuple)) else "" if body is None else str(body)
    scope = readable.instrumentation_scope
    fields: dict[str, Any] = {"name": scope.name if scope is not None else "llmobs", "msg": message, "args": None}
    fields.update(levelname=level, levelno=logging.getLevelName(level), exc_info=None, exc_text=None)
    fields.update(created=seconds, msecs=(seconds % 1) * 1000)
    return logging.makeLogRecord({**extras, **fields})
