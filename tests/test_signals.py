"""An exception a signal handler raises (a SIGALRM deadline) at random moments around monitored calls of
every shape, spans on and off: it always reaches the caller, and leaves no lock held, no call or span
current and nothing counted in flight."""

from __future__ import annotations

import _weakrefset
import gc
import logging
import random
import signal
import threading
import time
import warnings
from collections.abc import Callable, Generator, Iterator
from types import FrameType
from typing import Any

import pytest
from opentelemetry import trace

import llmobs
from llmobs import _final_spans, _handle, _lifecycle
from tests.helpers import BASE, exported, one

STORMS = 1500
"""Timers per case, each at a random moment within a run of CALLS calls."""
CALLS = 10
monitor = llmobs.monitor_inference(model="m", operation="chat")


def body(tokens: bool) -> None:
    if tokens:
        llmobs.current_inference().record_tokens(input=1, output=2)


@monitor
def function(tokens: bool) -> int:
    body(tokens)
    return 1


@monitor
async def coroutine(tokens: bool) -> int:
    body(tokens)
    return 1


@monitor
def generator(tokens: bool) -> Generator[int, None, None]:
    body(tokens)
    yield 1
    yield 2


@monitor
async def async_generator(tokens: bool) -> Any:
    body(tokens)
    yield 1
    yield 2


def run_function(tokens: bool) -> None:
    function(tokens)


def run_coroutine(tokens: bool) -> None:
    """Drive the coroutine by hand (it never suspends): an event loop would be interrupted too."""
    coro = None
    try:
        coro = coroutine(tokens)
        coro.send(None)
    except StopIteration:
        pass
    finally:
        if coro is not None:
            coro.close()


def run_generator(tokens: bool) -> None:
    stream = None
    try:
        stream = generator(tokens)
        for _ in stream:
            pass
    finally:
        if stream is not None:
            stream.close()


def run_async_generator(tokens: bool) -> None:
    stream = None
    try:
        stream = async_generator(tokens)
        while _step(stream.__anext__()):
            pass
    finally:
        if stream is not None:
            _step(stream.aclose())


def _step(awaitable: Any) -> bool:
    """Run one step of an async generator that never suspends; False once it is exhausted."""
    try:
        awaitable.send(None)
    except StopIteration:
        return True
    except StopAsyncIteration:
        return False
    finally:
        awaitable.close()
    raise AssertionError("suspended")


RUNS: dict[str, Callable[[bool], None]] = {
    "function": run_function,
    "coroutine": run_coroutine,
    "generator": run_generator,
    "async generator": run_async_generator,
}


BEYOND_REACH = {_weakrefset.__file__, logging.__file__, threading.__file__}
"""Code no caller can make signal-safe, where the handler does not raise: WeakSet callbacks of dying
objects (threads of the receiver) and logging handlers (``Handler.handleError``) swallow exceptions,
and ``threading.Condition.__enter__`` (under the SDK's BatchSpanProcessor) is Python code that can
be interrupted with its lock taken."""


def beyond_reach(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename in BEYOND_REACH:
            return True
        frame = frame.f_back
    return False


class Deadline:
    """Counts the TimeoutErrors its SIGALRM handler (a plain function, as applications write) raised."""

    raised = 0


@pytest.fixture
def deadline() -> Iterator[type[Deadline]]:
    def handler(signum: int, frame: FrameType | None) -> None:
        if beyond_reach(frame):
            return
        Deadline.raised += 1
        raise TimeoutError("deadline")

    Deadline.raised = 0
    previous = signal.signal(signal.SIGALRM, handler)
    try:
        yield Deadline
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def storm(run: Callable[[bool], None], tokens: bool) -> int:
    """Arm one timer per round of CALLS calls, at a random moment within it; return the TimeoutErrors
    that reached this caller."""
    started = time.perf_counter()
    for _ in range(50):
        run(tokens)
    ceiling = (time.perf_counter() - started) / 50 * CALLS * 1.2
    rng = random.Random(1234)
    caught = 0
    for _ in range(STORMS):
        try:
            try:
                signal.setitimer(signal.ITIMER_REAL, rng.uniform(1e-6, ceiling))
                for _ in range(CALLS):
                    run(tokens)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            assert _handle.current() is None
            assert not trace.get_current_span().get_span_context().is_valid
        except TimeoutError:
            caught += 1
    return caught


@pytest.mark.parametrize("spans", [False, True], ids=["metrics", "spans"])
@pytest.mark.parametrize("shape", list(RUNS))
def test_deadlines_at_random_moments_reach_the_caller_and_leave_nothing_behind(
    otlp: Any, deadline: type[Deadline], shape: str, spans: bool
) -> None:
    receiver = otlp(traces=spans)
    assert _final_spans.SIGNALS.passes() is spans  # spans are encoded as they end, on this (main) thread
    with warnings.catch_warnings():
        # A coroutine created just before the deadline fired is never awaited: that is the harness.
        warnings.simplefilter("ignore", RuntimeWarning)
        caught = storm(RUNS[shape], tokens=False) + storm(RUNS[shape], tokens=True)
        gc.collect()
    assert caught == deadline.raised and caught > STORMS // 4
    assert _handle.current() is None
    assert not trace.get_current_span().get_span_context().is_valid

    registry = _lifecycle.state.registry
    assert isinstance(registry, llmobs._aggregation.Registry)
    other = threading.Thread(target=run_function, args=(True,))
    other.start()
    other.join(5)
    assert not other.is_alive(), "a lock was left held"
    assert one(receiver, "llmobs.inference.active_requests", BASE).value == 0
    ended = sum(p.count for p in exported(receiver, "gen_ai.server.request.duration"))
    assert ended > 2 * STORMS
