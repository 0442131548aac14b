"""``monitor_batch``: one context manager, also a decorator, around a batch job: items (by outcome),
tokens, duration, progress towards a known total, and errors."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextvars import ContextVar, Token
from time import perf_counter
from types import TracebackType
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from . import _lifecycle
from . import semconv as names
from ._aggregation import NOOP
from ._attributes import freeze, merge
from ._config import ConfigError
from ._failsafe import internal_error, warn_once
from .semconv import error_type

F = TypeVar("F", bound=Callable[..., Any])


class BatchRun:
    """One run of a batch job; ``advance`` reports progress from inside it."""

    def __init__(self, name: str, total: int | None, registry: _lifecycle.Recording | None = None) -> None:
        self.name = name
        self.total = total
        self.done = 0
        self.failed = 0
        self._attrs = freeze({names.BATCH_NAME: name})
        registry = registry or _lifecycle.state.registry
        self._succeeded = registry.series(names.BATCH_ITEMS, merge(self._attrs, {names.BATCH_OUTCOME: "success"}))
        self._failures = registry.series(names.BATCH_ITEMS, merge(self._attrs, {names.BATCH_OUTCOME: "failure"}))
        self._tokens = registry.series(names.BATCH_TOKENS, self._attrs)
        self._progress = registry.series(names.BATCH_PROGRESS, self._attrs) if total else NOOP
        self._active = registry.series(names.BATCH_ACTIVE, self._attrs)
        self._span: Any = None
        self._scope: object = None
        self._token: Token[BatchRun | None] | None = None

    def advance(self, items: int = 1, *, failed: int = 0, tokens: int = 0) -> None:
        """Count ``items`` processed successfully, ``failed`` items that failed, and their tokens."""
        try:
            if not all(_count(v) for v in (items, failed, tokens)):
                return
            self.done += items + failed
            self.failed += failed
            if items:
                self._succeeded.record(items)
            if failed:
                self._failures.record(failed)
            if tokens:
                self._tokens.record(tokens)
            if self.total:
                self._progress.record(min(self.done / self.total, 1.0))
        except Exception:
            internal_error("batch advance")

    def _start(self) -> None:
        self._start_time = perf_counter()
        self._active.record(1)
        if self.total:
            self._progress.record(0.0)
        tracer = _lifecycle.state.tracer
        if tracer is not None:
            self._span = tracer.start_span(f"batch {self.name}", attributes=dict(self._attrs))
            self._scope = otel_context.attach(trace.set_span_in_context(self._span))

    def _finish(self, exc: BaseException | None) -> None:
        duration = perf_counter() - self._start_time
        self._active.record(-1)
        attrs = self._attrs if exc is None else merge(self._attrs, {names.ERROR_TYPE: error_type(exc)})
        _lifecycle.state.registry.series(names.BATCH_DURATION, attrs).record(duration)
        if self._scope is not None:
            otel_context.detach(self._scope)  # type: ignore[arg-type]
        if self._span is not None:
            self._span.set_attribute("llmobs.batch.items", self.done)
            self._span.set_attribute("llmobs.batch.failed", self.failed)
            if exc is not None:
                self._span.record_exception(exc)
                self._span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            self._span.end()


def _count(value: object) -> bool:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return True
    warn_once("batch:count", "llmobs: batch counts must be integers >= 0; %r dropped", value)
    return False


_current: ContextVar[BatchRun | None] = ContextVar("llmobs_batch", default=None)
_DETACHED = BatchRun("", None, _lifecycle.DISABLED)


def current_batch() -> BatchRun:
    """The innermost running batch; outside any, a run that records nothing."""
    return _current.get() or _DETACHED


class monitor_batch:  # noqa: N801 - used like a function, as contextlib's helpers are
    """Monitor a batch job, as a context manager or a decorator (fresh state per use)::

    with llmobs.monitor_batch("nightly-embeddings", total=len(docs)) as batch:
        for chunk in chunks:
            embed(chunk); batch.advance(len(chunk))
    """

    def __init__(self, name: str, total: int | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError("monitor_batch(name) must be a non-empty string")
        if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
            raise ConfigError("monitor_batch(total=...) must be a non-negative integer or None")
        self.name = name
        self.total = total
        self._runs: list[BatchRun] = []  # this block's own runs, innermost last

    def __enter__(self) -> BatchRun:
        try:
            run = BatchRun(self.name, self.total)
            run._start()
        except Exception:
            internal_error("batch start")
            run = BatchRun(self.name, self.total, _lifecycle.DISABLED)
        run._token = _current.set(run)
        self._runs.append(run)
        return run

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._runs:
            return
        run = self._runs.pop()
        try:
            _current.reset(run._token)  # type: ignore[arg-type]
        except ValueError:
            pass  # exited in another context (a generator resumed elsewhere): nothing to restore here
        try:
            run._finish(exc)
        except Exception:
            internal_error("batch end")

    def __call__(self, fn: F) -> F:
        """Each call of ``fn`` is one run; a generator's run lasts until it is exhausted or closed."""
        name, total = self.name, self.total
        if inspect.isasyncgenfunction(fn):

            @functools.wraps(fn)
            async def run_async_generator(*args: Any, **kwargs: Any) -> Any:
                with monitor_batch(name, total):
                    async for item in fn(*args, **kwargs):
                        yield item

            return run_async_generator  # type: ignore[return-value]
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def run_generator(*args: Any, **kwargs: Any) -> Any:
                with monitor_batch(name, total):
                    return (yield from fn(*args, **kwargs))

            return run_generator  # type: ignore[return-value]
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with monitor_batch(name, total):
                    return await fn(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with monitor_batch(name, total):
                return fn(*args, **kwargs)

        return run  # type: ignore[return-value]
