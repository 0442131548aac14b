"""``monitor_batch``: one context manager, also a decorator, around a batch job: items (by outcome),
tokens, duration, progress towards a known total, and errors."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from contextvars import ContextVar, Token
from time import perf_counter
from types import TracebackType
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span

from . import _lifecycle
from . import semconv as names
from ._aggregation import Bundle, Series
from ._attributes import as_count, freeze, merge
from ._config import ConfigError
from ._failsafe import guarded
from ._shape import Shape, wrap
from ._spans import fail
from .semconv import error_type

F = TypeVar("F", bound=Callable[..., Any])


class _BatchSeries(Bundle):
    """The series of one batch name, each created on its first record."""

    __slots__ = ("succeeded", "failed", "tokens", "progress", "active")
    succeeded: Series
    failed: Series
    tokens: Series
    progress: Series
    active: Series
    SERIES = {
        "succeeded": (names.BATCH_ITEMS, {names.BATCH_OUTCOME: "success"}),
        "failed": (names.BATCH_ITEMS, {names.BATCH_OUTCOME: "failure"}),
        "tokens": (names.BATCH_TOKENS, {}),
        "progress": (names.BATCH_PROGRESS, {}),
        "active": (names.BATCH_ACTIVE, {}),
    }


class BatchRun:
    """One run of a batch job; ``advance`` reports progress from inside it."""

    def __init__(self, name: str, total: int | None, registry: _lifecycle.Recording | None = None) -> None:
        self.name = name
        self.total = total
        self.done = 0
        self.failed = 0
        self._attrs = freeze({names.BATCH_NAME: name})
        self._registry = registry or _lifecycle.state.registry
        self._series = _BatchSeries(self._registry, self._attrs)
        self._span: Span | None = None
        self._scope: object = None
        self._token: Token[BatchRun | None] | None = None

    @guarded(where="batch advance")
    def advance(self, items: int = 1, *, failed: int = 0, tokens: int = 0) -> None:
        """Count ``items`` processed successfully, ``failed`` items that failed, and their tokens."""
        counts = [as_count(items, "batch item"), as_count(failed, "batch item"), as_count(tokens, "batch token")]
        if None in counts or self is _DETACHED:
            return
        done, lost, used = counts
        assert done is not None and lost is not None and used is not None
        self.done += done + lost
        self.failed += lost
        series = self._series
        if done:
            series.succeeded.record(done)
        if lost:
            series.failed.record(lost)
        if used:
            series.tokens.record(used)
        if self.total:
            series.progress.record(min(self.done / self.total, 1.0))

    def _start(self) -> None:
        self._start_time = perf_counter()
        self._series.active.record(1)
        if self.total:
            self._series.progress.record(0.0)
        tracer = _lifecycle.state.tracer
        if tracer is not None:
            self._span = tracer.start_span(f"batch {self.name}", attributes=dict(self._attrs))
            self._scope = otel_context.attach(trace.set_span_in_context(self._span))

    def _finish(self, exc: BaseException | None) -> None:
        duration = perf_counter() - self._start_time
        try:
            if self._scope is not None:
                otel_context.detach(self._scope)  # type: ignore[arg-type]
        finally:
            self._series.active.record(-1)
        attrs = self._attrs if exc is None else merge(self._attrs, {names.ERROR_TYPE: error_type(exc)})
        self._registry.series(names.BATCH_DURATION, attrs).record(duration)
        span = self._span
        if span is not None:
            span.set_attribute(names.BATCH_DONE, self.done)
            span.set_attribute(names.BATCH_FAILED, self.failed)
            if exc is not None:
                fail(span, exc)
            span.end()


_current: ContextVar[BatchRun | None] = ContextVar("llmobs_batch", default=None)
_DETACHED = BatchRun("", None, _lifecycle.DISABLED)


def current_batch() -> BatchRun:
    """The innermost running batch; outside any, a run that keeps nothing."""
    return _current.get() or _DETACHED


class monitor_batch:  # lower case: used like a function, as contextlib's helpers are
    """Monitor a batch job, as a context manager or a decorator (fresh state per use)::

    with llmobs.monitor_batch("nightly-embeddings", total=len(docs)) as batch:
        for chunk in chunks:
            embed(chunk); batch.advance(len(chunk))
    """

    def __init__(self, name: str, total: int | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError("monitor_batch(name) must be a non-empty string")
        count = None if total is None else as_count(total, "batch total")
        if total is not None and count is None:
            raise ConfigError("monitor_batch(total=...) must be a non-negative integer or None")
        self.name = name
        self.total = count
        self._runs: list[BatchRun] = []  # this block's own runs, innermost last

    def __enter__(self) -> BatchRun:
        run = self._started() or BatchRun(self.name, self.total, _lifecycle.DISABLED)
        run._token = _current.set(run)
        self._runs.append(run)
        return run

    @guarded(where="batch start")
    def _started(self) -> BatchRun:
        run = BatchRun(self.name, self.total)
        run._start()
        return run

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._runs:
            return
        run = self._runs.pop()
        try:
            _reset(run)
        finally:
            _finish(run, exc)

    def __call__(self, fn: F) -> F:
        """Each call of ``fn`` is one run; a generator's run lasts until it is exhausted or closed."""
        return wrap(fn, _RUNNERS, self.name, self.total)  # type: ignore[no-any-return]


def _reset(run: BatchRun) -> None:
    # Exited in another context (a generator resumed elsewhere): nothing to restore here.
    with contextlib.suppress(ValueError):
        _current.reset(run._token)  # type: ignore[arg-type]


@guarded(where="batch end")
def _finish(run: BatchRun, exc: BaseException | None) -> None:
    run._finish(exc)


def _run_function(fn: Callable[..., Any], name: str, total: int | None) -> Callable[..., Any]:
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        with monitor_batch(name, total):
            return fn(*args, **kwargs)

    return run


def _run_coroutine(fn: Callable[..., Any], name: str, total: int | None) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def run(*args: Any, **kwargs: Any) -> Any:
        with monitor_batch(name, total):
            return await fn(*args, **kwargs)

    return run


def _run_generator(fn: Callable[..., Any], name: str, total: int | None) -> Callable[..., Any]:
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        with monitor_batch(name, total):
            return (yield from fn(*args, **kwargs))

    return run


def _run_async_generator(fn: Callable[..., Any], name: str, total: int | None) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def run(*args: Any, **kwargs: Any) -> Any:
        with monitor_batch(name, total):
            async for item in fn(*args, **kwargs):
                yield item

    return run


_RUNNERS: dict[Shape, Callable[[Callable[..., Any], str, int | None], Callable[..., Any]]] = {
    Shape.FUNCTION: _run_function,
    Shape.COROUTINE: _run_coroutine,
    Shape.GENERATOR: _run_generator,
    Shape.ASYNC_GENERATOR: _run_async_generator,
}
