"""monitor_batch as a context manager and a decorator: items, tokens, progress, duration, errors."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import numbers
import time
from typing import Any

import pytest

import llmobs
from tests import shapes
from tests.helpers import exported, one

NAME = {"llmobs.batch.name": "nightly"}


def test_context_manager_counts_items_tokens_and_progress(otlp: Any) -> None:
    receiver = otlp(traces=False)
    started = time.perf_counter()
    with llmobs.monitor_batch("nightly", total=10) as batch:
        batch.advance(4, tokens=400)
        batch.advance(3, failed=1, tokens=300)
        assert llmobs.current_batch() is batch
        assert one(receiver, "llmobs.batch.active", NAME).value == 1
        assert one(receiver, "llmobs.batch.progress", NAME).value == pytest.approx(0.8)
        time.sleep(0.02)
    took = time.perf_counter() - started
    assert one(receiver, "llmobs.batch.items", {**NAME, "llmobs.batch.outcome": "success"}).value == 7
    assert one(receiver, "llmobs.batch.items", {**NAME, "llmobs.batch.outcome": "failure"}).value == 1
    assert one(receiver, "llmobs.batch.tokens", NAME).value == 700
    duration = one(receiver, "llmobs.batch.duration", NAME)
    # At least the block's sleep, at most the block (its exports included) as timed here.
    assert duration.count == 1 and 0.02 <= duration.sum <= took and duration.unit == "s"
    assert one(receiver, "llmobs.batch.active", NAME).value == 0
    assert (batch.done, batch.failed) == (8, 1)


def test_failure_inside_is_recorded_and_reraised(otlp: Any) -> None:
    receiver = otlp(traces=True)
    error = OSError("disk full")
    with pytest.raises(OSError) as caught, llmobs.monitor_batch("nightly") as batch:
        batch.advance(2)
        raise error
    assert caught.value is error
    assert one(receiver, "llmobs.batch.duration", {**NAME, "error.type": "OSError"}).count == 1
    assert exported(receiver, "llmobs.batch.progress") == []  # no total, no progress
    span = receiver.wait_for(lambda r: r.spans())[0]
    assert span.name == "batch nightly" and span.status_code == "STATUS_CODE_ERROR"
    assert span.attributes["llmobs.batch.items"] == 2


def test_decorator_gives_each_call_fresh_state(otlp: Any) -> None:
    receiver = otlp(traces=False)

    @llmobs.monitor_batch("nightly", total=2)
    def job(n: int) -> int:
        llmobs.current_batch().advance(n)
        return n

    @llmobs.monitor_batch("nightly", total=2)
    async def ajob(n: int) -> int:
        llmobs.current_batch().advance(n)
        return n

    assert job(1) == 1 and job(2) == 2 and asyncio.run(ajob(1)) == 1
    assert one(receiver, "llmobs.batch.duration", NAME).count == 3
    assert one(receiver, "llmobs.batch.items", {**NAME, "llmobs.batch.outcome": "success"}).value == 4


def test_bad_counts_are_dropped(otlp: Any) -> None:
    receiver = otlp(traces=False)
    with llmobs.monitor_batch("nightly") as batch:
        batch.advance(-1)
        batch.advance("3")  # type: ignore[arg-type]
        batch.advance(2)
    assert one(receiver, "llmobs.batch.items", {**NAME, "llmobs.batch.outcome": "success"}).value == 2


def test_outside_a_batch_advance_records_nothing() -> None:
    llmobs.current_batch().advance(5)
    with pytest.raises(llmobs.ConfigError, match="total"):
        llmobs.monitor_batch("x", total=-1)


def test_generator_jobs_hold_their_run_until_exhausted(otlp: Any) -> None:
    receiver = otlp(traces=False)

    @llmobs.monitor_batch("nightly", total=3)
    def job() -> Any:
        for i in range(3):
            time.sleep(0.02)
            llmobs.current_batch().advance()
            yield i

    assert inspect.isgeneratorfunction(job)
    assert list(job()) == [0, 1, 2]
    assert one(receiver, "llmobs.batch.duration", NAME).sum >= 0.06
    assert one(receiver, "llmobs.batch.items", {**NAME, "llmobs.batch.outcome": "success"}).value == 3


def test_a_batch_held_across_contexts_finishes(otlp: Any) -> None:
    receiver = otlp(traces=False)

    def stream() -> Any:
        with llmobs.monitor_batch("nightly") as batch:
            for i in range(3):
                batch.advance()
                yield i

    items = stream()
    # Each step in a fresh copy of the context, as Starlette's iterate_in_threadpool does.
    got = [contextvars.copy_context().run(next, items) for _ in range(3)]
    with pytest.raises(StopIteration):
        contextvars.copy_context().run(next, items)
    assert got == [0, 1, 2]
    assert one(receiver, "llmobs.batch.duration", NAME).count == 1
    assert one(receiver, "llmobs.batch.active", NAME).value == 0


@pytest.mark.parametrize(("shape", "form"), shapes.CASES, ids=shapes.IDS)
def test_every_shape_and_form_is_one_run_timed_to_its_end(otlp: Any, shape: str, form: str) -> None:
    receiver = otlp(traces=False)
    target = shapes.decorated(llmobs.monitor_batch("nightly"), shape, form)
    assert shapes.truthful(target, shape)
    assert shapes.drive(target(1)) == 1
    duration = one(receiver, "llmobs.batch.duration", NAME)
    assert duration.count == 1 and shapes.DELAY <= duration.sum < shapes.DELAY + 0.5
    assert one(receiver, "llmobs.batch.active", NAME).value == 0


def test_counts_follow_the_one_count_rule(otlp: Any, caplog: pytest.LogCaptureFixture) -> None:
    receiver = otlp(traces=False)
    with caplog.at_level(logging.WARNING, logger="llmobs"), llmobs.monitor_batch("nightly", total=4.0) as batch:  # type: ignore[arg-type]
        batch.advance(2.0, tokens=Three())  # type: ignore[arg-type]
        batch.advance(1, tokens=2**63)  # dropped whole: one absurd count never reaches a sum
        batch.advance(True)
    assert one(receiver, "llmobs.batch.items", {**NAME, "llmobs.batch.outcome": "success"}).value == 2
    assert one(receiver, "llmobs.batch.tokens", NAME).value == 3
    assert one(receiver, "llmobs.batch.progress", NAME).value == pytest.approx(0.5)
    assert len([r for r in caplog.records if "count" in r.getMessage()]) == 2
    with pytest.raises(llmobs.ConfigError, match="total"):
        llmobs.monitor_batch("x", total=2.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("capture", [False, True], ids=["type-only", "messages"])
def test_a_failed_run_exports_the_exception_type_and_the_message_only_on_request(otlp: Any, capture: bool) -> None:
    receiver = otlp(traces=True, capture_exception_messages=capture)

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    for error in (OSError("/data/customer-7"), Unprintable()):
        with pytest.raises(type(error)), llmobs.monitor_batch("nightly"):
            raise error
    assert llmobs.force_flush()
    spans = receiver.wait_for(lambda r: len(r.spans()) == 2 and r.spans())
    for span in spans:
        [(name, attributes)] = span.events
        assert span.status_code == "STATUS_CODE_ERROR" and name == "exception"
        assert attributes["exception.type"] == span.attributes["error.type"]
        assert ("exception.message" in attributes) is capture


@numbers.Integral.register
class Three:
    """A numpy-style integer: an Integral that is not an int (numpy is not installed here)."""

    def __int__(self) -> int:
        return 3
