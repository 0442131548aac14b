"""Streaming calls: TTFT/TPOT against generators with known timing, and exactly-once finalization."""

from __future__ import annotations

import asyncio
import gc
import inspect
import numbers
import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from typing import Any, cast

import pytest
from opentelemetry import trace

import llmobs
from tests.helpers import BASE, exported, one

DURATION = "gen_ai.server.request.duration"
OUTPUT = {**BASE, "gen_ai.token.type": "output"}


YIELDED: list[float] = []
"""When the body of ``tokens``/``atokens`` yielded each chunk (perf_counter), for the timing bounds."""


@llmobs.monitor_inference(model="m", operation="chat")
def tokens(n: int, first: float = 0.0, each: float = 0.0, fail_at: int = -1) -> Generator[str, None, None]:
    time.sleep(first)
    for i in range(n):
        if i == fail_at:
            raise RuntimeError("model crashed")
        if i:
            time.sleep(each)
        YIELDED.append(time.perf_counter())
        yield f"t{i}"


@llmobs.monitor_inference(model="m", operation="chat")
async def atokens(n: int, first: float = 0.0, each: float = 0.0) -> AsyncGenerator[str, None]:
    await asyncio.sleep(first)
    for i in range(n):
        if i:
            await asyncio.sleep(each)
        YIELDED.append(time.perf_counter())
        yield f"t{i}"


def assert_timing(
    receiver: Any, first: float, each: float, n: int, began: float, first_seen: float, ended: float
) -> None:
    """TTFT, TPOT and duration at least the sleeps, and at most what the consumer timed from ``began``
    (before the call) to ``first_seen`` (the first chunk in hand) and ``ended`` (the stream done), so
    a loaded machine that oversleeps cannot fail it."""
    ttft = one(receiver, "gen_ai.server.time_to_first_token", BASE)
    assert ttft.count == 1 and first <= ttft.sum <= first_seen - began
    tpot = one(receiver, "gen_ai.server.time_per_output_token", BASE)  # (end - first token) / (n - 1)
    assert tpot.count == 1 and each <= tpot.sum <= (ended - YIELDED[0]) / (n - 1)
    duration = one(receiver, DURATION, BASE)
    assert duration.count == 1 and first + each * (n - 1) <= duration.sum <= ended - began
    output = one(receiver, "llmobs.inference.token.usage", OUTPUT)
    assert (output.count, output.sum) == (1, n)
    assert one(receiver, "llmobs.inference.active_requests", BASE).value == 0


def test_generator_ttft_and_tpot(otlp: Any) -> None:
    receiver = otlp(traces=False)
    assert inspect.isgeneratorfunction(tokens)
    YIELDED.clear()
    began = time.perf_counter()
    stream = tokens(6, first=0.05, each=0.01)
    seen = [next(stream)]
    first_seen = time.perf_counter()
    seen.extend(stream)
    ended = time.perf_counter()
    assert seen == [f"t{i}" for i in range(6)]
    assert_timing(receiver, 0.05, 0.01, 6, began, first_seen, ended)


def test_async_generator_ttft_and_tpot(otlp: Any) -> None:
    receiver = otlp(traces=False)
    assert inspect.isasyncgenfunction(atokens)
    YIELDED.clear()

    async def main() -> tuple[list[str], float, float, float]:
        began = time.perf_counter()
        stream = atokens(6, first=0.05, each=0.01)
        seen = [await anext(stream)]
        first_seen = time.perf_counter()
        seen.extend([t async for t in stream])
        return seen, began, first_seen, time.perf_counter()

    seen, began, first_seen, ended = asyncio.run(main())
    assert seen == [f"t{i}" for i in range(6)]
    assert_timing(receiver, 0.05, 0.01, 6, began, first_seen, ended)


def test_chunk_tokens_counts_per_chunk(otlp: Any) -> None:
    receiver = otlp(traces=False)

    @llmobs.monitor_inference(model="m", operation="chat", chunk_tokens=len)
    def chunks() -> Iterator[list[int]]:
        yield [1, 2, 3]
        yield [4]

    assert list(chunks()) == [[1, 2, 3], [4]]
    assert one(receiver, "llmobs.inference.token.usage", OUTPUT).sum == 4


def test_recorded_output_replaces_the_chunk_count(otlp: Any) -> None:
    receiver = otlp(traces=False)

    @llmobs.monitor_inference(model="m", operation="chat")
    def chunks() -> Iterator[str]:
        llmobs.current_inference().record_tokens(input=11)
        yield "hello world"
        llmobs.current_inference().record_tokens(output=2)

    assert list(chunks()) == ["hello world"]
    assert one(receiver, "llmobs.inference.token.usage", OUTPUT).sum == 2
    assert one(receiver, "llmobs.inference.token.usage", {**BASE, "gen_ai.token.type": "input"}).sum == 11


def test_handle_does_not_leak_between_chunks(otlp: Any) -> None:
    otlp(traces=False)
    seen = []
    for _ in tokens(2):
        seen.append(llmobs.current_inference().record_tokens)
    outside = llmobs.current_inference()
    assert all(handle.__self__ is outside for handle in seen)  # type: ignore[attr-defined]


def test_early_close_is_recorded_once_and_not_as_error(otlp: Any) -> None:
    receiver = otlp(traces=False)
    stream = tokens(10)
    assert next(stream) == "t0" and next(stream) == "t1"
    stream.close()
    stream.close()
    closed = one(receiver, DURATION, {**BASE, "llmobs.end_reason": "client_closed"})
    assert closed.count == 1
    assert exported(receiver, DURATION, BASE) == []
    assert one(receiver, "llmobs.inference.token.usage", OUTPUT).sum == 2
    assert one(receiver, "llmobs.inference.active_requests", BASE).value == 0


def test_break_out_of_loop_and_garbage_collection(otlp: Any) -> None:
    receiver = otlp(traces=False)
    for token in tokens(10):
        if token == "t2":
            break
    abandoned = tokens(10)
    next(abandoned)
    del abandoned
    gc.collect()
    never_started = tokens(10)
    del never_started
    closed = one(receiver, DURATION, {**BASE, "llmobs.end_reason": "client_closed"})
    assert closed.count == 2
    assert one(receiver, "llmobs.inference.active_requests", BASE).value == 0


def test_error_mid_stream(otlp: Any) -> None:
    receiver = otlp(traces=False)
    got = []
    with pytest.raises(RuntimeError, match="model crashed"):
        for token in tokens(5, fail_at=3):
            got.append(token)
    assert got == ["t0", "t1", "t2"]
    failed = one(receiver, DURATION, {**BASE, "error.type": "RuntimeError"})
    assert failed.count == 1
    assert one(receiver, "gen_ai.server.time_to_first_token", BASE).count == 1
    assert exported(receiver, "gen_ai.server.time_per_output_token", BASE) == []
    assert one(receiver, "llmobs.inference.active_requests", BASE).value == 0


def test_send_throw_and_return_value_pass_through(otlp: Any) -> None:
    otlp(traces=False)

    @llmobs.monitor_inference(model="m", operation="chat")
    def echo() -> Generator[Any, Any, str]:
        received = yield "ready"
        while True:
            try:
                received = yield f"got {received}"
            except ValueError as exc:
                received = yield f"caught {exc}"
            if received == "stop":
                return "finished"

    stream = echo()
    assert next(stream) == "ready"
    assert stream.send(1) == "got 1"
    assert stream.throw(ValueError("v")) == "caught v"
    with pytest.raises(StopIteration) as stop:
        stream.send("stop")
    assert stop.value.value == "finished"


def test_async_early_close_cancel_and_gc(otlp: Any) -> None:
    receiver = otlp(traces=False)

    async def main() -> None:
        stream = atokens(10)
        assert await stream.__anext__() == "t0"
        await stream.aclose()

        async def consume() -> None:
            async for _ in atokens(10, each=10):
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        abandoned = atokens(10)
        await abandoned.__anext__()
        del abandoned
        gc.collect()
        await asyncio.sleep(0.01)  # the event loop's finalizer runs aclose()

    asyncio.run(main())
    closed = one(receiver, DURATION, {**BASE, "llmobs.end_reason": "client_closed"})
    cancelled = one(receiver, DURATION, {**BASE, "llmobs.end_reason": "cancelled"})
    assert (closed.count, cancelled.count) == (2, 1)
    assert one(receiver, "llmobs.inference.active_requests", BASE).value == 0


def test_stream_span_is_current_inside_the_generator_only(otlp: Any) -> None:
    receiver = otlp(traces=True)
    parents = []

    @llmobs.monitor_inference(model="m", operation="chat")
    def stream() -> Iterator[int]:
        for i in range(3):
            parents.append(trace.get_current_span().get_span_context().span_id)
            yield i

    for _ in stream():
        assert not trace.get_current_span().get_span_context().is_valid
    assert llmobs.force_flush()
    span = receiver.wait_for(lambda r: r.spans())[0]
    assert span.name == "chat m" and span.attributes["gen_ai.usage.output_tokens"] == 3
    assert {f"{p:016x}" for p in parents} == {span.span_id}


def test_tpot_counts_the_tokens_after_the_first_chunk(otlp: Any) -> None:
    receiver = otlp(traces=False)

    @llmobs.monitor_inference(model="m", operation="chat", chunk_tokens=len)
    def chunks() -> Iterator[list[int]]:
        YIELDED.append(time.perf_counter())
        yield list(range(10))
        time.sleep(0.1)
        yield list(range(10))

    YIELDED.clear()
    assert len(list(chunks())) == 2
    ended = time.perf_counter()
    tpot = one(receiver, "gen_ai.server.time_per_output_token", BASE)
    # 100 ms for the 10 tokens after the first chunk (not the 19 after the first token): at most
    # the time from the first chunk's yield to the end as timed here, over 10.
    assert 0.01 <= tpot.sum <= (ended - YIELDED[0]) / 10


@numbers.Integral.register
class Three:
    """A numpy-style integer: an Integral that is not an int (numpy is not installed here)."""

    def __int__(self) -> int:
        return 3


@pytest.mark.parametrize("count", [3.0, Three()], ids=["float", "integral"])
def test_chunk_tokens_follow_the_one_count_rule(otlp: Any, count: Any) -> None:
    receiver = otlp(traces=False)

    @llmobs.monitor_inference(model="m", operation="chat", chunk_tokens=lambda chunk: cast(int, count))
    def chunks() -> Iterator[str]:
        yield "a"
        yield "b"

    assert list(chunks()) == ["a", "b"]
    assert one(receiver, "llmobs.inference.token.usage", OUTPUT).sum == 6


def test_async_chunk_tokens_follow_the_one_count_rule(otlp: Any) -> None:
    receiver = otlp(traces=False)

    @llmobs.monitor_inference(model="m", operation="chat", chunk_tokens=lambda chunk: cast(int, Three()))
    async def chunks() -> AsyncIterator[str]:
        yield "a"
        yield "b"

    async def main() -> list[str]:
        return [chunk async for chunk in chunks()]

    assert asyncio.run(main()) == ["a", "b"]
    assert one(receiver, "llmobs.inference.token.usage", OUTPUT).sum == 6


INPUT = {**BASE, "gen_ai.token.type": "input"}
OUTER = {**BASE, "gen_ai.request.model": "outer"}


def test_async_handle_does_not_leak_between_chunks(otlp: Any) -> None:
    otlp(traces=False)

    async def main() -> list[Any]:
        return [llmobs.current_inference().record_tokens async for _ in atokens(3)]

    seen = asyncio.run(main())
    outside = llmobs.current_inference()
    assert len(seen) == 3 and all(handle.__self__ is outside for handle in seen)


def test_async_handle_in_tasks_follows_where_they_were_made(otlp: Any) -> None:
    """A task made inside the body reports to the stream even between chunks; one made by the consumer
    between chunks does not, even while the stream is mid-step (as with one context variable set per
    step, which each task's copy of the context keeps)."""
    receiver = otlp(traces=False)
    go, reported, read = asyncio.Event(), asyncio.Event(), asyncio.Event()
    outside = llmobs.current_inference()
    handles: list[llmobs.Inference] = []

    async def later() -> None:
        await go.wait()
        llmobs.current_inference().record_tokens(input=5)
        reported.set()

    @llmobs.monitor_inference(model="m", operation="chat")
    async def chunks() -> AsyncGenerator[str, None]:
        task = asyncio.create_task(later())
        yield "a"
        await read.wait()  # mid-step while the consumer's task reads its handle
        await task
        yield "b"

    async def consumer_side() -> None:
        handles.append(llmobs.current_inference())
        read.set()

    async def main() -> None:
        stream = chunks()
        assert await stream.__anext__() == "a"
        go.set()
        await reported.wait()  # the body's task runs between chunks
        side = asyncio.create_task(consumer_side())
        assert await stream.__anext__() == "b"
        await side
        await stream.aclose()

    asyncio.run(main())
    assert one(receiver, "llmobs.inference.token.usage", INPUT).sum == 5
    assert handles == [outside]


def test_nested_calls_see_their_own_handle(otlp: Any) -> None:
    """A monitored coroutine consuming a stream reports to itself between chunks, the stream's body to the
    stream, and a stream advanced inside another monitored call leaves the consumer's handle as it was."""
    receiver = otlp(traces=False)

    @llmobs.monitor_inference(model="m", operation="chat")
    async def inner() -> AsyncGenerator[str, None]:
        llmobs.current_inference().record_tokens(input=2)
        yield "a"
        yield "b"

    @llmobs.monitor_inference(model="outer", operation="chat")
    async def outer_call() -> None:
        async for _ in inner():
            llmobs.current_inference().record_tokens(input=7)

    @llmobs.monitor_inference(model="outer", operation="chat")
    async def one_chunk(stream: AsyncIterator[str]) -> str:
        return await stream.__anext__()

    async def main() -> None:
        await outer_call()
        stream = inner()
        assert await stream.__anext__() == "a"
        assert await one_chunk(stream) == "b"
        assert llmobs.current_inference() is outside
        await stream.aclose()

    outside = llmobs.current_inference()

    asyncio.run(main())
    assert one(receiver, "llmobs.inference.token.usage", INPUT).sum == 4
    assert one(receiver, "llmobs.inference.token.usage", {**OUTER, "gen_ai.token.type": "input"}).sum == 7


def test_async_send_throw_and_errors_pass_through(otlp: Any) -> None:
    receiver = otlp(traces=False)
    error = RuntimeError("the model's")

    @llmobs.monitor_inference(model="m", operation="chat")
    async def echo() -> AsyncGenerator[Any, Any]:
        received = yield "ready"
        try:
            received = yield f"got {received}"
        except ValueError as exc:
            yield f"caught {exc}"
        raise error

    async def main() -> None:
        assert inspect.isasyncgen(echo())
        stream = echo()
        assert await stream.asend(None) == "ready"
        assert await stream.asend(1) == "got 1"
        assert await stream.athrow(ValueError("v")) == "caught v"
        with pytest.raises(RuntimeError) as raised:
            await stream.__anext__()
        assert raised.value is error

    asyncio.run(main())
    assert one(receiver, DURATION, {**BASE, "error.type": "RuntimeError"}).count == 1
    assert one(receiver, "llmobs.inference.token.usage", OUTPUT).sum == 3
    assert one(receiver, "llmobs.inference.active_requests", BASE).value == 0
