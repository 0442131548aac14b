"""The logs signal: log records (failed calls, security events, the inventory, ``emit_event``) through the
OpenTelemetry SDK's ``LoggerProvider``, or through the one the application installed."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry._logs import Logger, SeverityNumber

from ._attributes import AttributeValue, clean_value
from ._failsafe import guarded

MAX_BODY_LENGTH = 4096  # one record must not carry a 5 MB stack trace


class _Emitter:
    """Where records go while the logs signal is on; ``logger`` is None when it is off."""

    logger: Logger | None = None


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
    logger = emitter.logger
    if logger is None:
        return
    cleaned = {key: value for key, value in _cleaned(attributes)}
    cleaned["event.name"] = name
    logger.emit(
        severity_number=severity,
        severity_text=severity.name.rstrip("0123456789") or None,
        body=body[:MAX_BODY_LENGTH] if isinstance(body, str) else None,
        attributes=cleaned,
        event_name=name,
    )


def _cleaned(attributes: Mapping[str, AttributeValue]) -> list[tuple[str, AttributeValue]]:
    """Attribute pairs that a record can carry: primitives, text capped (one warning per key)."""
    pairs = []
    for key, value in attributes.items():
        cleaned = clean_value(key, value) if isinstance(key, str) else None
        if cleaned is not None:
            pairs.append((key, cleaned))
    return pairs
