"""Generator and async-generator wrappers: each yielded chunk is an output token (or
``chunk_tokens(chunk)`` of them), the first one marks TTFT, and the call ends exactly once,
however the stream stops: exhausted, closed early, cancelled, garbage collected, or raising.

The wrappers forward ``send``/``throw``/``close`` (``asend``/``athrow``/``aclose``) as ``yield from``
would; ``yield from`` itself cannot be used because it hides the chunks from us.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from time import perf_counter
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from ._call import MAX_COUNT, Inference, Site, enter, leave
from ._failsafe import internal_error, warn_once
from .semconv import CANCELLED, CLIENT_CLOSED


def _span_context(call: Inference) -> otel_context.Context | None:
    return None if call.span is None else trace.set_span_in_context(call.span)


def _in_span(resume: Callable[[Any], Any], value: Any, span_context: otel_context.Context) -> Any:
    """Resume the user's generator with the call's span current, so its own spans nest under it."""
    scope = otel_context.attach(span_context)
    try:
        return resume(value)
    finally:
        otel_context.detach(scope)


async def _in_span_async(step: Awaitable[Any], span_context: otel_context.Context) -> Any:
    scope = otel_context.attach(span_context)
    try:
        return await step
    finally:
        otel_context.detach(scope)


def wrap_generator(fn: Callable[..., Generator[Any, Any, Any]], site: Site) -> Callable[..., Any]:
    count = site.chunk_tokens

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        call = site.begin(attach=False)
        span_context = _span_context(call)
        first: float | None = None
        chunks = first_chunk = 0
        outcome: BaseException | str | None = CLIENT_CLOSED
        try:
            gen = fn(*args, **kwargs)  # runs none of the body yet
            send = resume = gen.send
            value: Any = None
            while True:
                token = enter(call)
                try:
                    chunk = resume(value) if span_context is None else _in_span(resume, value, span_context)
                except StopIteration as stop:
                    outcome = None
                    return stop.value
                finally:
                    leave(token)
                chunks += 1 if count is None else _counted(count, chunk)
                if first is None:
                    first, first_chunk = perf_counter(), chunks
                try:
                    value = yield chunk
                    resume = send
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
            site.end(call, outcome, None, first, chunks, first_chunk)

    return wrapper


def wrap_async_generator(fn: Callable[..., AsyncGenerator[Any, Any]], site: Site) -> Callable[..., Any]:
    count = site.chunk_tokens

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        call = site.begin(attach=False)
        span_context = _span_context(call)
        first: float | None = None
        chunks = first_chunk = 0
        outcome: BaseException | str | None = CLIENT_CLOSED
        try:
            gen = fn(*args, **kwargs)  # runs none of the body yet
            send = resume = gen.asend
            value: Any = None
            while True:
                token = enter(call)
                try:
                    step = resume(value)
                    chunk = await (step if span_context is None else _in_span_async(step, span_context))
                except StopAsyncIteration:
                    outcome = None
                    return
                finally:
                    leave(token)
                if count is None:
                    chunks += 1
                else:
                    chunks += _counted(count, chunk)
                if first is None:
                    first, first_chunk = perf_counter(), chunks
                try:
                    value = yield chunk
                    resume = send
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
            site.end(call, outcome, None, first, chunks, first_chunk)

    return wrapper


def _counted(count: Callable[[Any], int], chunk: Any) -> int:
    """The user's per-chunk token count; a bad one counts the chunk as one token."""
    try:
        n = count(chunk)
    except Exception:
        internal_error("chunk_tokens")
        return 1
    if isinstance(n, int) and not isinstance(n, bool) and 0 <= n < MAX_COUNT:
        return n
    warn_once("chunk_tokens", "llmobs: chunk_tokens returned %r; counting the chunk as 1 token", n)
    return 1
