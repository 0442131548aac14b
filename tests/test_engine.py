"""What serving engines measure, for custom servers: queue and execution time, finish reasons, units and
the real-time factor (on the call handle), batch sizes, queue length, KV-cache use and response caches."""

from __future__ import annotations

import logging
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

import llmobs
from llmobs.testing import capture

MODEL = {"gen_ai.request.model": "m"}


MARKS: list[tuple[float, float, float, float]] = []
"""Each call of ``queued`` (perf_counter, as llmobs): when its body began, when its wait ended (before the
mark), when it had marked, when its work ended."""


@llmobs.monitor_inference(model="m", operation="chat")
def queued(wait: float, work: float, given: float | None = None) -> str:
    began = time.perf_counter()
    time.sleep(wait)
    waited = time.perf_counter()
    llmobs.current_inference().mark_started(given)
    llmobs.current_inference().mark_started()  # the first mark counts
    marked = time.perf_counter()
    time.sleep(work)
    MARKS.append((began, waited, marked, time.perf_counter()))
    return "done"


def test_queue_and_execution_split_the_duration() -> None:
    MARKS.clear()
    with capture(traces=False) as telemetry:
        calls = []
        for wait, work in ((0.05, 0.02), (0.01, 0.06)):
            before = time.perf_counter()
            assert queued(wait, work) == "done"
            calls.append((before, time.perf_counter()))
        (queue,) = telemetry.points("llmobs.inference.queue.duration", MODEL)
        (execution,) = telemetry.points("llmobs.inference.execution.duration", MODEL)
        (duration,) = telemetry.points("gen_ai.server.request.duration", MODEL)
    assert queue.count == execution.count == 2
    # Against the calls' own timings (a loaded machine oversleeps): a queue time runs from the call's
    # start (after ``before``, before its body began) to its mark (after its wait, before ``marked``),
    # an execution time from that mark to the call's end (after its work, before ``after``). Had the
    # mark been lost, the queue time would be all of each call, past ``marked`` by its work.
    queue_low = queue_high = execution_low = execution_high = 0.0
    for (began, waited, marked, ended), (before, after) in zip(MARKS, calls, strict=True):
        queue_low, queue_high = queue_low + waited - began, queue_high + marked - before
        execution_low, execution_high = execution_low + ended - marked, execution_high + after - waited
    assert queue.sum >= 0.06 and execution.sum >= 0.08  # no call is faster than its sleeps
    assert queue_low <= queue.sum <= queue_high
    assert execution_low <= execution.sum <= execution_high
    assert queue.sum + execution.sum == pytest.approx(duration.sum, abs=1e-3)
    assert queue.explicit_bounds[0] == 0.001


def test_a_queue_time_the_engine_measured_and_bad_ones(llmobs_logs: pytest.LogCaptureFixture) -> None:
    with capture(traces=False) as telemetry:
        queued(0, 0.01, given=2.5)
        for bad in (-1.0, float("nan"), "1"):
            queued(0, 0, given=bad)  # type: ignore[arg-type]
        (queue,) = telemetry.points("llmobs.inference.queue.duration", MODEL)
        (execution,) = telemetry.points("llmobs.inference.execution.duration", MODEL)
    assert (queue.count, queue.sum) == (1, 2.5)
    assert execution.count == 4  # a dropped wait still splits off the execution time
    warned = [r.getMessage() for r in llmobs_logs.records if "queue time" in r.getMessage()]
    assert len(warned) == 3 and "negative" in warned[0]


def test_calls_that_never_mark_create_no_queue_series() -> None:
    with capture(traces=False) as telemetry:

        @llmobs.monitor_inference(model="m")
        def plain() -> int:
            llmobs.current_inference().record_tokens(output=3)
            return 1

        plain()
        assert telemetry.points("gen_ai.server.request.duration", MODEL)
        assert telemetry.points("llmobs.inference.queue.duration") == []
        assert telemetry.points("llmobs.inference.finished") == []


def openai_result(*reasons: Any) -> Any:
    return SimpleNamespace(
        usage=SimpleNamespace(prompt_tokens=4, completion_tokens=9),
        choices=[SimpleNamespace(finish_reason=reason) for reason in reasons],
    )


def test_finish_reasons_from_results_and_the_handle(llmobs_logs: pytest.LogCaptureFixture) -> None:
    @llmobs.monitor_inference(model="m", operation="chat")
    def complete(*reasons: Any) -> Any:
        return openai_result(*reasons)

    @llmobs.monitor_inference(model="m", operation="chat")
    def as_dict() -> dict[str, Any]:
        return {"usage": {"input_tokens": 1, "output_tokens": 2}, "choices": [{"finish_reason": "length"}]}

    @llmobs.monitor_inference(model="m", operation="chat")
    def told(reason: str) -> Any:
        llmobs.current_inference().set_finish_reasons(reason)
        return openai_result("stop")  # what the function said wins

    with capture() as telemetry:
        complete("stop")
        complete("stop", "stop", "length")  # each distinct reason once per call
        as_dict()
        told("abort")
        told("exploded")
        told("a reason nobody knows")
        counts = {
            p.attributes["gen_ai.response.finish_reasons"]: p.value
            for p in telemetry.points("llmobs.inference.finished", MODEL)
        }
        spans = telemetry.spans()
        (outputs,) = telemetry.points("llmobs.inference.token.usage", {"gen_ai.token.type": "output"})
    assert counts == {"stop": 2, "length": 2, "abort": 1, "_OTHER": 2}
    assert [s.attributes["gen_ai.response.finish_reasons"] for s in spans] == [  # type: ignore[index]
        ("stop",), ("stop", "stop", "length"), ("length",), ("abort",), ("_OTHER",), ("_OTHER",)
    ]  # fmt: skip
    assert outputs.sum == 9 * 2 + 2 + 9 * 3
    unknown = [r for r in llmobs_logs.records if "finish reason" in r.getMessage()]
    assert len(unknown) == 1 and "'exploded'" in unknown[0].getMessage()


def test_units_and_the_real_time_factor(llmobs_logs: pytest.LogCaptureFixture) -> None:
    took: dict[float, float] = {}

    @llmobs.monitor_inference(model="m", operation="transcribe")
    def transcribe(audio_seconds: float) -> str:
        time.sleep(0.05)
        llmobs.current_inference().record_units(audio_seconds, unit="s")
        return "text"

    def timed_transcribe(audio_seconds: float) -> None:
        before = time.perf_counter()
        transcribe(audio_seconds)
        took[audio_seconds] = time.perf_counter() - before

    @llmobs.monitor_inference(model="m", operation="caption")
    def caption(images: int) -> str:
        llmobs.current_inference().record_units(images, unit="{image}")
        return "a cat"

    @llmobs.monitor_inference(model="m", operation="caption")
    def tag(unit: Any) -> None:
        llmobs.current_inference().record_units(1, unit=unit)

    with capture(traces=False) as telemetry:
        timed_transcribe(0.5)
        timed_transcribe(1.0)
        transcribe(-1)  # dropped
        caption(2)
        for bad in ("", 3):
            tag(bad)
        caption(3)
        (audio,) = telemetry.points("llmobs.inference.units", {"llmobs.unit": "s"})
        (images,) = telemetry.points("llmobs.inference.units", {"llmobs.unit": "{image}"})
        units = telemetry.points("llmobs.inference.units")
        (rtf,) = telemetry.points("llmobs.inference.real_time_factor")
        (durations,) = telemetry.points("gen_ai.server.request.duration", {"gen_ai.operation.name": "transcribe"})
    assert (audio.count, audio.sum) == (2, 1.5)
    assert (images.count, images.sum) == (2, 5)
    assert rtf.count == 2
    # Each factor is the call's duration over its audio: at least its 50 ms sleep, at most what the
    # call took as timed here (a loaded machine oversleeps).
    assert 0.05 / 0.5 + 0.05 / 1.0 <= rtf.sum <= took[0.5] / 0.5 + took[1.0] / 1.0
    assert durations.count == 3
    bad_units = [r for r in llmobs_logs.records if "record_units(unit" in r.getMessage()]
    assert [r.levelname for r in bad_units] == ["WARNING"]  # once, for both
    assert len(units) == 2  # only s and {image}


def test_the_handle_outside_a_call_keeps_nothing() -> None:
    with capture(traces=False) as telemetry:
        handle = llmobs.current_inference()
        handle.mark_started()
        handle.set_finish_reasons("stop")
        handle.record_units(1.0)
        handle.mark_first_token()
        assert telemetry.points("llmobs.inference.finished") == []


def test_batch_size_queue_length_and_kv_cache(llmobs_logs: pytest.LogCaptureFixture) -> None:
    with capture(traces=False) as telemetry:
        for size in (1, 8, 8, 32):
            llmobs.record_batch_size(size, model="m")
        llmobs.record_batch_size(-3, model="m")
        llmobs.record_batch_size(2.5)  # type: ignore[arg-type]
        llmobs.set_kv_cache_usage(0.25, model="m")
        llmobs.set_kv_cache_usage(float("inf"), model="m")
        llmobs.set_kv_cache_usage(1.5, model="other")
        threads = [threading.Thread(target=llmobs.set_queue_length, args=(n,)) for n in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        llmobs.set_queue_length(7)
        (batches,) = telemetry.points("llmobs.engine.batch.size")
        kv = {
            p.attributes["gen_ai.request.model"]: p.value
            for p in telemetry.points("llmobs.engine.kv_cache.utilization")
        }
        (length,) = telemetry.points("llmobs.engine.queue.length")
    assert (batches.count, batches.sum) == (4, 49) and batches.attributes == MODEL
    assert kv == {"m": 0.25, "other": 1.0}
    assert length.value == 7 and length.attributes == {}
    messages = " ".join(r.getMessage() for r in llmobs_logs.records)
    assert "batch size count -3 dropped (negative)" in messages and "capped at 1" in messages


def test_response_cache_hits_misses_and_time_saved() -> None:
    with capture(traces=False) as telemetry:
        for hit in (True, True, False, True):
            llmobs.record_cache_lookup(hit, saved=0.5 if hit else 9.0)
        llmobs.record_cache_lookup(False, cache="semantic")
        llmobs.record_cache_lookup("yes")  # type: ignore[arg-type]
        lookups = {
            (p.attributes["llmobs.cache.name"], p.attributes["llmobs.cache.result"]): p.value
            for p in telemetry.points("llmobs.cache.lookups")
        }
        (saved,) = telemetry.points("llmobs.cache.saved.duration")
    assert lookups == {("response", "hit"): 3, ("response", "miss"): 1, ("semantic", "miss"): 1}
    assert saved.value == 1.5 and saved.attributes == {"llmobs.cache.name": "response"}


def test_an_engine_helper_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with capture(traces=False):
        llmobs.record_batch_size(object())  # type: ignore[arg-type]
        llmobs.set_queue_length(None)  # type: ignore[arg-type]
        llmobs.record_cache_lookup(True, saved="long", cache="c")  # type: ignore[arg-type]
    assert len(caplog.records) == 3


def test_exact_counts_from_many_threads_and_a_stream() -> None:
    @llmobs.monitor_inference(model="m", operation="chat")
    def call(i: int) -> int:
        handle = llmobs.current_inference()
        handle.mark_started()
        handle.set_finish_reasons("length" if i % 4 == 0 else "stop")
        return i

    @llmobs.monitor_inference(model="m", operation="chat")
    def stream() -> Any:
        llmobs.current_inference().mark_started(queued=0.25)
        yield "a"
        yield "b"
        llmobs.current_inference().set_finish_reasons("stop")

    def worker() -> None:
        for i in range(200):
            call(i)

    with capture(traces=False) as telemetry:
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert list(stream()) == ["a", "b"]
        finished = {
            p.attributes["gen_ai.response.finish_reasons"]: p.value
            for p in telemetry.points("llmobs.inference.finished", MODEL)
        }
        (queue,) = telemetry.points("llmobs.inference.queue.duration", MODEL)
        (ttft,) = telemetry.points("gen_ai.server.time_to_first_token", MODEL)
    assert finished == {"length": 8 * 50, "stop": 8 * 150 + 1}
    assert queue.count == 8 * 200 + 1 and queue.sum >= 0.25 and queue.max == 0.25  # the stream's given wait
    assert ttft.count == 1  # the stream's own first chunk
