"""The one boundary between llmobs and the host application: an internal failure is logged once per
place and swallowed, so that no exception from llmobs reaches user code, while an exception that a
signal handler of the application raised (a request deadline) is the application's and goes on."""

from __future__ import annotations

import functools
import logging
import signal
import sys
from collections.abc import Callable
from types import CodeType
from typing import ParamSpec, TypeVar, overload

logger = logging.getLogger("llmobs")

MAX_REPORTED = 1000  # keys can carry user-chosen names: past this many, stay silent, never grow
_reported: set[str] = set()

P = ParamSpec("P")
R = TypeVar("R")
D = TypeVar("D")


def _first(key: str) -> bool:
    if key in _reported or len(_reported) >= MAX_REPORTED:
        return False
    _reported.add(key)
    return True


def warn_once(key: str, message: str, *args: object) -> None:
    """Log a warning the first time ``key`` is seen; later occurrences stay silent."""
    if _first(key):
        logger.warning(message, *args)


def reset() -> None:
    """Forget which warnings were given (tests start each case afresh)."""
    _reported.clear()


def internal_error(where: str) -> None:
    """Call from an ``except Exception`` block: log the exception once for ``where`` and return, so the
    caller swallows it. An exception raised by a signal handler is re-raised: it only passed through."""
    exc = sys.exc_info()[1]
    if exc is not None and raised_by_signal_handler(exc):
        raise exc
    if _first(where):
        logger.warning("llmobs: internal error in %s; telemetry for it is skipped", where, exc_info=True)


def raised_by_signal_handler(exc: BaseException) -> bool:
    """True when a Python signal handler is among the frames ``exc`` went through (a SIGALRM timeout
    that fired while llmobs was doing its bookkeeping)."""
    handlers = _handler_codes()
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code in handlers:
            return True
        tb = tb.tb_next
    return False


def _handler_codes() -> set[CodeType]:
    codes: set[CodeType] = set()
    for number in signal.valid_signals():
        try:
            handler = signal.getsignal(number)
        except (OSError, ValueError):
            continue
        target = getattr(handler, "func", handler)  # functools.partial
        target = getattr(target, "__func__", target)  # bound methods
        code = getattr(target, "__code__", None)
        if code is None and callable(target):  # an object with __call__
            code = getattr(type(target).__call__, "__code__", None)
        if isinstance(code, CodeType):
            codes.add(code)
    return codes


@overload
def guarded(fn: Callable[P, R], /) -> Callable[P, R | None]: ...


@overload
def guarded(*, where: str | None = None, default: D) -> Callable[[Callable[P, R]], Callable[P, R | D]]: ...


@overload
def guarded(*, where: str | None = None) -> Callable[[Callable[P, R]], Callable[P, R | None]]: ...


def guarded(fn: Callable[P, R] | None = None, /, *, where: str | None = None, default: object = None) -> object:
    """Decorate a function on a cold or per-request path: an internal failure inside it is logged once
    (keyed by ``where``, default the function's qualified name) and ``default`` is returned instead.

    The measured hot path (the inference wrappers) keeps inline ``try`` blocks: a decorator layer costs
    50-80 ns there (docs/performance.md).
    """

    def decorate(function: Callable[P, R]) -> Callable[P, object]:
        key = where or function.__qualname__

        @functools.wraps(function)
        def run(*args: P.args, **kwargs: P.kwargs) -> object:
            try:
                return function(*args, **kwargs)
            except Exception:  # noqa: BLE001 - the failure boundary itself
                internal_error(key)
                return default

        return run

    return decorate if fn is None else decorate(fn)


class PassSignals(logging.Filter):
    """For the logger of library code that logs and swallows every exception it catches (the SDK's
    attribute encoder): one that a signal handler raised is raised again from the log call, so that it
    goes on to the caller. It can act only while that logger is enabled for errors: ``passes`` says."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.logger = logging.getLogger(name)

    def install(self) -> None:
        if self not in self.logger.filters:
            self.logger.filters.insert(0, self)  # first: a filter before it may stop the record

    def remove(self) -> None:
        self.logger.removeFilter(self)

    def passes(self) -> bool:
        return self in self.logger.filters and self.logger.isEnabledFor(logging.ERROR)

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and raised_by_signal_handler(exc):
            raise exc
        return True
