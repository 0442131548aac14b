"""The OTLP log exporter of llmobs's own LoggerProvider: the SDK's (gRPC or HTTP/protobuf), with a
single attempt for the final flush (``_otlp.FinalAttempt``). Imported only when logs go over OTLP."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from typing_extensions import override

from ._config import OTLPTarget
from ._otlp import FinalAttempt, log_exporter


class OTLPLogs(FinalAttempt[LogRecordExporter], LogRecordExporter):
    """Exports through the OTLP log exporter of ``target``, a single attempt once ``closing()``."""

    def __init__(self, target: OTLPTarget) -> None:
        super().__init__(target, log_exporter)

    @override
    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        return self.current.export(batch)

    @override
    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.first.force_flush(timeout_millis)
