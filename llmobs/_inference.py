"""``@monitor_inference``: times every call of a predict function, whatever its shape.

The shape (function, coroutine function, generator, async generator) is decided once, at
decoration time, and the wrapper has the same shape, so ``inspect`` tells the truth about it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from time import perf_counter
from typing import Any, TypeVar, overload

from . import _lifecycle
from ._call import NO_USAGE, SPAN_CONTEXT, Site, UsageExtractor
from ._config import ConfigError
from ._failsafe import internal_error
from ._handle import Call, Entry, call_of, current, enter, entry_of, leave, untouched
from ._profiling import PLAN, profiled, profiled_async
from ._shape import Shape, wrap
from ._streams import wrap_async_generator, wrap_generator
from .semconv import CANCELLED

F = TypeVar("F", bound=Callable[..., Any])


@overload
def monitor_inference(
    fn: F,
    *,
    model: str | None = None,
    operation: str = "inference",
    provider: str = "llmobs",
    attributes: Mapping[str, object] | None = None,
    usage: UsageExtractor | None = None,
    chunk_tokens: Callable[[Any], int] | None = None,
) -> F: ...


@overload
def monitor_inference(
    fn: None = None,
    *,
    model: str | None = None,
    operation: str = "inference",
    provider: str = "llmobs",
    attributes: Mapping[str, object] | None = None,
    usage: UsageExtractor | None = None,
    chunk_tokens: Callable[[Any], int] | None = None,
) -> Callable[[F], F]: ...


def monitor_inference(
    fn: Callable[..., Any] | None = None,
    *,
    model: str | None = None,
    operation: str = "inference",
    provider: str = "llmobs",
    attributes: Mapping[str, object] | None = None,
    usage: UsageExtractor | None = None,
    chunk_tokens: Callable[[Any], int] | None = None,
) -> Any:
    """Record latency, errors, in-flight calls, tokens, TTFT and TPOT of each call, and a span.

    ``model`` defaults to the function's qualified name. ``usage(result) -> (input, output)``
    counts tokens of a returned result (an OpenAI-style ``result.usage`` is read without it);
    ``chunk_tokens(chunk) -> int`` counts the tokens of each streamed chunk (default: 1 each).
    """
    if model is not None and (not isinstance(model, str) or not model):
        raise ConfigError("monitor_inference(model=...) must be a non-empty string (or left out)")
    for name, text in (("operation", operation), ("provider", provider)):
        if not isinstance(text, str) or not text:
            raise ConfigError(f"monitor_inference({name}=...) must be a non-empty string")
    for name, function in (("usage", usage), ("chunk_tokens", chunk_tokens)):
        if function is not None and not callable(function):
            raise ConfigError(f"monitor_inference({name}=...) must be callable")
    if attributes is not None and not isinstance(attributes, Mapping):
        raise ConfigError("monitor_inference(attributes=...) must be a dict")

    def decorate(target: Callable[..., Any]) -> Any:
        site = Site(model or _name_of(target), operation, provider, attributes or {}, usage, chunk_tokens)
        return wrap(target, _WRAPPERS, site)

    return decorate if fn is None else decorate(fn)


def _name_of(target: Any) -> str:
    """The default model name: the qualified name of the function, or of a callable object's class."""
    while isinstance(target, functools.partial):
        target = target.func
    return str(getattr(target, "__qualname__", type(target).__qualname__))


# Both wrappers below have one structure. The +1 in flight is the first call inside the ``try``;
# the ``finally`` resets the current call (by value if its token was never kept), takes the -1 and
# restores the span, each step in its own nested ``finally``: an exception a signal handler raises
# at any point (it runs after a C call, never inside one) reaches the caller and leaves nothing
# counted or current. Metrics-only calls keep a placeholder instead of a ``Call`` and record inline.


def _wrap_function(fn: Callable[..., Any], site: Site) -> Callable[..., Any]:
    state, plan = _lifecycle.state, PLAN  # closure variables: the cheapest loads

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        outer = current()
        entry: Entry
        if site.generation == state.generation and site.tracer is None:
            entry = [perf_counter()]
            context = outer_context = None
        else:
            call = site.begin() or Call(perf_counter())
            entry, context = entry_of(call), call.context
            outer_context = None if context is None else SPAN_CONTEXT.get()
        up, down = site.steps
        token = None
        try:
            up()
            token = enter(entry)
            if context is not None:
                SPAN_CONTEXT.set(context)
            result = fn(*args, **kwargs) if not plan.armed else profiled(site, entry, fn, args, kwargs)
        except BaseException as exc:
            site.end(call_of(entry), exc)
            raise
        finally:
            try:
                if token is None:  # a signal came between setting the entry and keeping its token
                    enter(outer)
                else:
                    leave(token)
            finally:
                try:
                    down()
                finally:
                    if outer_context is not None:
                        SPAN_CONTEXT.set(outer_context)
        try:
            if untouched(entry) and site.usage is None and type(result) in NO_USAGE:
                site.duration.record(perf_counter() - entry[0])
            else:
                site.end(call_of(entry), None, result)
        except Exception:  # noqa: BLE001 - the measured hot path; internal_error re-raises signals
            internal_error("inference end")
        return result

    return wrapper


def _wrap_coroutine(fn: Callable[..., Any], site: Site) -> Callable[..., Any]:
    state, plan = _lifecycle.state, PLAN  # closure variables: the cheapest loads

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        outer = current()
        entry: Entry
        if site.generation == state.generation and site.tracer is None:
            entry = [perf_counter()]
            context = outer_context = None
        else:
            call = site.begin() or Call(perf_counter())
            entry, context = entry_of(call), call.context
            outer_context = None if context is None else SPAN_CONTEXT.get()
        up, down = site.steps
        token = None
        try:
            up()
            token = enter(entry)
            if context is not None:
                SPAN_CONTEXT.set(context)
            result = await (fn(*args, **kwargs) if not plan.armed else profiled_async(site, entry, fn, args, kwargs))
        except asyncio.CancelledError:
            site.end(call_of(entry), CANCELLED)
            raise
        except BaseException as exc:
            site.end(call_of(entry), exc)
            raise
        finally:
            try:
                if token is None:  # a signal came between setting the entry and keeping its token
                    enter(outer)
                else:
                    leave(token)
            finally:
                try:
                    down()
                finally:
                    if outer_context is not None:
                        SPAN_CONTEXT.set(outer_context)
        try:
            if untouched(entry) and site.usage is None and type(result) in NO_USAGE:
                site.duration.record(perf_counter() - entry[0])
            else:
                site.end(call_of(entry), None, result)
        except Exception:  # noqa: BLE001 - the measured hot path; internal_error re-raises signals
            internal_error("inference end")
        return result

    return wrapper


_WRAPPERS: dict[Shape, Callable[[Callable[..., Any], Site], Callable[..., Any]]] = {
    Shape.FUNCTION: _wrap_function,
    Shape.COROUTINE: _wrap_coroutine,
    Shape.GENERATOR: wrap_generator,
    Shape.ASYNC_GENERATOR: wrap_async_generator,
}
