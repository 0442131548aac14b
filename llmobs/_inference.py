"""``@monitor_inference``: times every call of a predict function, whatever its shape.

The shape (function, coroutine function, generator, async generator) is decided once, at
decoration time, and the wrapper has the same shape, so ``inspect`` tells the truth about it.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Mapping
from time import perf_counter
from typing import Any, TypeVar, overload

from . import _lifecycle
from ._call import NO_USAGE, Inference, Site, UsageExtractor, enter, handle, leave
from ._config import ConfigError
from ._failsafe import internal_error
from ._streams import wrap_async_generator, wrap_generator
from .semconv import CANCELLED

F = TypeVar("F", bound=Callable[..., Any])


@overload
def monitor_inference(fn: F) -> F: ...


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
        if isinstance(target, (classmethod, staticmethod)):
            return type(target)(decorate(target.__func__))
        site = Site(
            model or str(getattr(target, "__qualname__", type(target).__qualname__)),
            operation,
            provider,
            attributes or {},
            usage,
            chunk_tokens,
        )
        # A callable object's shape is its __call__'s (an object with ``async def __call__``).
        shape = target if inspect.isroutine(target) or not callable(target) else type(target).__call__
        if inspect.isasyncgenfunction(shape):
            return wrap_async_generator(target, site)
        if inspect.isgeneratorfunction(shape):
            return wrap_generator(target, site)
        if inspect.iscoroutinefunction(shape):
            return _wrap_coroutine(target, site)
        return _wrap_function(target, site)

    return decorate if fn is None else decorate(fn)


def _wrap_function(fn: Callable[..., Any], site: Site) -> Callable[..., Any]:
    state = _lifecycle.state

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # Metrics-only calls inline begin() and end() and keep a placeholder instead of building an
        # Inference: together a third of llmobs's cost per call. Anything else (a span, tokens, a
        # new generation) takes the methods.
        call: Inference | list[Any]
        try:
            if site.generation == state.generation and site.tracer is None:
                active = site.active
                call = [perf_counter(), active]
                active.record(1)
            else:
                call = site.begin()
        except Exception:
            internal_error("inference start")
            call = Inference(perf_counter(), None)
        token = enter(call)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            leave(token)
            site.end(handle(call), exc)
            raise
        leave(token)
        try:
            if type(call) is list and len(call) == 2 and site.usage is None and type(result) in NO_USAGE:
                duration = perf_counter() - call[0]
                call[1].record(-1)
                site.bound.duration.record(duration)
            else:
                site.end(handle(call), None, result)
        except Exception:
            internal_error("inference end")
        return result

    return wrapper


def _wrap_coroutine(fn: Callable[..., Any], site: Site) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        call = site.begin()
        token = enter(call)
        try:
            result = await fn(*args, **kwargs)
        except asyncio.CancelledError:
            leave(token)
            site.end(call, CANCELLED)
            raise
        except BaseException as exc:
            leave(token)
            site.end(call, exc)
            raise
        leave(token)
        site.end(call, None, result)
        return result

    return wrapper
