"""How a span records a failure, in one place for calls, batch runs and HTTP requests."""

from __future__ import annotations

import traceback

from opentelemetry.trace import Span, Status, StatusCode

from . import _lifecycle
from .semconv import ERROR_TYPE, EXCEPTION_MESSAGE, EXCEPTION_STACKTRACE, EXCEPTION_TYPE, error_type


def fail(span: Span, exc: BaseException) -> None:
    """Mark ``span`` failed by ``exc``: ``error.type``, an ERROR status and an ``exception`` event.

    The event holds the exception's type only: its message and stack trace can quote a prompt, so they
    are exported only with ``init(capture_exception_messages=True)``.
    """
    kind = error_type(exc)
    event: dict[str, str] = {EXCEPTION_TYPE: kind}
    settings = _lifecycle.state.settings
    if settings is not None and settings.capture_exception_messages:
        event[EXCEPTION_MESSAGE] = readable(exc)
        event[EXCEPTION_STACKTRACE] = stacktrace(exc)
    span.set_attribute(ERROR_TYPE, kind)
    span.add_event("exception", event)
    span.set_status(Status(StatusCode.ERROR, kind))


def readable(exc: BaseException) -> str:
    """``str(exc)``, or a placeholder when the exception's ``__str__`` itself raises."""
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - an exception that cannot be printed still fails its span
        return f"<{type(exc).__name__} whose message could not be read>"


def stacktrace(exc: BaseException) -> str:
    try:
        return "".join(traceback.format_exception(exc))
    except Exception:  # noqa: BLE001 - as above: formatting calls __str__ too
        return "".join(traceback.format_tb(exc.__traceback__))
