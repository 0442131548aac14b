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

from opentelemetry.context import Context

from ._attributes import as_count
from ._call import SPAN_CONTEXT, Site
from ._failsafe import internal_error
from ._handle import Call, Entry, current, enter, entry_of, leave
from .semconv import CANCELLED, CLIENT_CLOSED


def _in_span(resume: Callable[[Any], Any], value: Any, context: Context) -> Any:
    """Resume the user's generator with the call's span current, so its own spans nest under it."""
    outer = SPAN_CONTEXT.get()
    SPAN_CONTEXT.set(context)
    try:
        return resume(value)
    finally:
        SPAN_CONTEXT.set(outer)


async def _in_span_async(step: Awaitable[Any], context: Context) -> Any:
    outer = SPAN_CONTEXT.get()
    SPAN_CONTEXT.set(context)
    try:
        return await step
    finally:
        SPAN_CONTEXT.set(outer)


# The two wrappers are line-parallel: a diff between them shows only ``await``, the ``a`` prefixes
# and the cancellation branch. They share no per-chunk call (the async stream is at its per-token
# budget, docs/performance.md). The +1 in flight is the first call inside the outer ``try``; its
# ``finally`` undoes, step by step, what a signal handler's exception may have left: the call or
# the span still current (set, then interrupted before the ``try`` that resets it), the count.


def wrap_generator(fn: Callable[..., Generator[Any, Any, Any]], site: Site) -> Callable[..., Any]:
    count = site.chunk_tokens

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        outer = current()
        call = site.begin() or Call(perf_counter())
        entry, context = entry_of(call), call.context
        outer_context = None if context is None else SPAN_CONTEXT.get()
        up, down = site.steps
        first: float | None = None
        chunks = first_chunk = 0
        outcome: BaseException | str | None = CLIENT_CLOSED
        try:
            up()
            gen = fn(*args, **kwargs)
            send = resume = gen.send
            value: Any = None
            while True:
                token = enter(entry)
                try:
                    chunk = resume(value) if context is None else _in_span(resume, value, context)
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
                except BaseException as exc:  # noqa: BLE001 - forwarded into the user's generator, as yield from does
                    value, resume = exc, gen.throw
        except GeneratorExit:
            raise
        except BaseException as exc:
            outcome = exc
            raise
        finally:
            try:
                _repair(entry, outer, context, outer_context)
            finally:
                try:
                    down()
                finally:
                    site.end(call, outcome, None, first, chunks, first_chunk)

    return wrapper


def wrap_async_generator(fn: Callable[..., AsyncGenerator[Any, Any]], site: Site) -> Callable[..., Any]:
    count = site.chunk_tokens

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        outer = current()
        call = site.begin() or Call(perf_counter())
        entry, context = entry_of(call), call.context
        outer_context = None if context is None else SPAN_CONTEXT.get()
        up, down = site.steps
        first: float | None = None
        chunks = first_chunk = 0
        outcome: BaseException | str | None = CLIENT_CLOSED
        try:
            up()
            gen = fn(*args, **kwargs)
            send = resume = gen.asend
            value: Any = None
            while True:
                token = enter(entry)
                try:
                    chunk = await (resume(value) if context is None else _in_span_async(resume(value), context))
                except StopAsyncIteration:
                    outcome = None
                    return
                finally:
                    leave(token)
                chunks += 1 if count is None else _counted(count, chunk)
                if first is None:
                    first, first_chunk = perf_counter(), chunks
                try:
                    value = yield chunk
                    resume = send
                except GeneratorExit:
                    await gen.aclose()
                    raise
                except BaseException as exc:  # noqa: BLE001 - forwarded into the user's generator, as yield from does
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
            try:
                _repair(entry, outer, context, outer_context)
            finally:
                try:
                    down()
                finally:
                    site.end(call, outcome, None, first, chunks, first_chunk)

    return wrapper


def _repair(entry: Entry, outer: Entry | None, context: Context | None, outer_context: Context | None) -> None:
    """Restore what a signal handler's exception left current: it may come between setting the call
    or the span and the ``try`` that resets it."""
    if current() is entry:
        enter(outer)
    if context is not None and outer_context is not None and SPAN_CONTEXT.get() is context:
        SPAN_CONTEXT.set(outer_context)


def _counted(count: Callable[[Any], int], chunk: Any) -> int:
    """The user's per-chunk token count (``as_count``'s rule); a bad one counts the chunk as one token."""
    try:
        n = as_count(count(chunk), "chunk_tokens()")
    except Exception:  # noqa: BLE001 - the per-chunk hot path; internal_error re-raises signals
        internal_error("chunk_tokens")
        return 1
    return 1 if n is None else n
