"""Generator and async-generator wrappers: each yielded chunk is an output token (or
``chunk_tokens(chunk)`` of them), the first one marks TTFT, and the call ends exactly once,
however the stream stops: exhausted, closed early, cancelled, garbage collected, or raising.

The wrappers forward ``send``/``throw``/``close`` (``asend``/``athrow``/``aclose``) as ``yield from``
would; ``yield from`` itself cannot be used because it hides the chunks from us.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, Callable, Generator
from time import perf_counter
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from .recorder import CANCELLED, CLIENT_CLOSED, Inference, Site, _current
from .safety import report, warn_once


def _span_context(call: Inference) -> otel_context.Context | None:
    return None if call.span is None else trace.set_span_in_context(call.span)


def wrap_generator(fn: Callable[..., Generator[Any, Any, Any]], site: Site) -> Callable[..., Any]:
    count = site.chunk_tokens

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        call = site.begin(attach=False)
        span_context = _span_context(call)
        first: float | None = None
        chunks = 0
        outcome: BaseException | str | None = CLIENT_CLOSED
        try:
            gen = fn(*args, **kwargs)  # runs none of the body yet
            resume: Callable[[Any], Any] = gen.send
            value: Any = None
            while True:
                token = _current.set(call)
                scope = None if span_context is None else otel_context.attach(span_context)
                try:
                    chunk = resume(value)
                except StopIteration as stop:
                    outcome = None
                    return stop.value
                finally:
                    if scope is not None:
                        otel_context.detach(scope)
                    _current.reset(token)
                if first is None:
                    first = perf_counter()
                chunks += 1 if count is None else _counted(count, chunk)
                try:
                    value = yield chunk
                    resume = gen.send
                except GeneratorExit:
                    gen.close()
                    raise
                except BaseException as exc:
                    value, resume = exc, gen.throw
        except GeneratorExit:
            raise
        except BaseException as exc:
            outcome = exc
            raise
        finally:
            site.end(call, outcome, None, first, chunks)

    return wrapper


def wrap_async_generator(fn: Callable[..., AsyncGenerator[Any, Any]], site: Site) -> Callable[..., Any]:
    count = site.chunk_tokens

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        call = site.begin(attach=False)
        span_context = _span_context(call)
        first: float | None = None
        chunks = 0
        outcome: BaseException | str | None = CLIENT_CLOSED
        try:
            gen = fn(*args, **kwargs)  # runs none of the body yet
            resume: Callable[[Any], Any] = gen.asend
            value: Any = None
            while True:
                token = _current.set(call)
                scope = None if span_context is None else otel_context.attach(span_context)
                try:
                    chunk = await resume(value)
                except StopAsyncIteration:
                    outcome = None
                    return
                finally:
                    if scope is not None:
                        otel_context.detach(scope)
                    _current.reset(token)
                if first is None:
                    first = perf_counter()
                chunks += 1 if count is None else _counted(count, chunk)
                try:
                    value = yield chunk
                    resume = gen.asend
                except GeneratorExit:
                    await gen.aclose()
                    raise
                except BaseException as exc:
                    value, resume = exc, gen.athrow
        except GeneratorExit:
            raise
        except asyncio.CancelledError:
            outcome = CANCELLED
            raise
        except BaseException as exc:
            outcome = exc
            raise
        finally:
            site.end(call, outcome, None, first, chunks)

    return wrapper


def _counted(count: Callable[[Any], int], chunk: Any) -> int:
    """The user's per-chunk token count; a bad one counts the chunk as one token."""
    try:
        n = count(chunk)
    except Exception:
        report("chunk_tokens")
        return 1
    if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
        return n
    warn_once("chunk_tokens", "llmobs: chunk_tokens returned %r; counting the chunk as 1 token", n)
    return 1
