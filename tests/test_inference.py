"""@monitor_inference on plain functions, methods and coroutines: values exported over OTLP."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import llmobs
from llmobs import _failsafe, _lifecycle
from tests import shapes
from tests.helpers import BASE, exported, one


def test_sync_call_duration_and_attributes(otlp: Any) -> None:
    receiver = otlp(traces=False)

    @llmobs.monitor_inference(model="m", operation="chat")
    def predict(x: int) -> int:
        time.sleep(0.01)
        return x * 2

    started = time.perf_counter()
    assert [predict(i) for i in range(5)] == [0, 2, 4, 6, 8]
    took = time.perf_counter() - started
    duration = one(receiver, "gen_ai.server.request.duration", BASE)
    assert duration.unit == "s"
    assert duration.count == 5
    # At least the five 10 ms sleeps, at most what the calls took as timed here (a loaded machine oversleeps).
    assert 0.05 <= duration.sum <= took
    assert duration.explicit_bounds[0] == 0.01 and duration.explicit_bounds[-1] == 81.92
    active = one(receiver, "llmobs.inference.active_requests", BASE)
    assert active.value == 0 and active.monotonic is False and active.unit == "{request}"


def test_wrapper_is_transparent() -> None:
    class Boom(Exception):
        pass

    def predict(prompt: str, *, temperature: float = 0.5) -> str:
        """Docs."""
        if prompt == "fail":
            raise Boom("no")
        return prompt.upper()

    wrapped = llmobs.monitor_inference(predict)
    assert wrapped("hi") == "HI"
    assert inspect.signature(wrapped) == inspect.signature(predict)
    assert wrapped.__name__ == "predict" and wrapped.__doc__ == "Docs." and vars(wrapped)["__wrapped__"] is predict
    assert not inspect.iscoroutinefunction(wrapped) and not inspect.isgeneratorfunction(wrapped)
    error = Boom("x")

    @llmobs.monitor_inference
    def raises() -> None:
        raise error

    with pytest.raises(Boom) as caught:
        raises()
    assert caught.value is error


def test_methods_classmethods_staticmethods(otlp: Any) -> None:
    receiver = otlp(traces=False)

    class Model:
        factor = 3

        @llmobs.monitor_inference(model="m", operation="chat")
        def predict(self, x: int) -> int:
            return x * self.factor

        @classmethod
        @llmobs.monitor_inference(model="m", operation="chat")
        def under(cls, x: int) -> int:
            return x * cls.factor

        @llmobs.monitor_inference(model="m", operation="chat")
        @classmethod
        def over(cls, x: int) -> int:
            return x + cls.factor

        @llmobs.monitor_inference(model="m", operation="chat")
        @staticmethod
        def static(x: int) -> int:
            return -x

    model = Model()
    assert (model.predict(2), Model.under(2), Model.over(2), Model.static(2), model.static(1)) == (6, 6, 5, -2, -1)
    assert list(inspect.signature(model.predict).parameters) == ["x"]
    assert one(receiver, "gen_ai.server.request.duration", BASE).count == 5


def test_async_call_is_timed_until_its_result(otlp: Any) -> None:
    receiver = otlp(traces=False)

    @llmobs.monitor_inference(model="m", operation="chat")
    async def generate(delay: float) -> str:
        await asyncio.sleep(delay)
        return "done"

    assert inspect.iscoroutinefunction(generate)
    started = time.perf_counter()
    assert asyncio.run(generate(0.05)) == "done"
    took = time.perf_counter() - started
    duration = one(receiver, "gen_ai.server.request.duration", BASE)
    # Until its result: at least its 50 ms sleep; at most the event loop's run of it, as timed here.
    assert duration.count == 1 and 0.05 <= duration.sum <= took


def test_errors_carry_error_type(otlp: Any) -> None:
    receiver = otlp(traces=False)

    class QuotaExceeded(Exception):
        pass

    @llmobs.monitor_inference(model="m", operation="chat")
    def predict(kind: str) -> None:
        if kind == "value":
            raise ValueError(kind)
        if kind == "quota":
            raise QuotaExceeded(kind)

    for kind in ["value", "value", "quota", "ok"]:
        with contextlib.suppress(ValueError, QuotaExceeded):
            predict(kind)
    assert one(receiver, "gen_ai.server.request.duration", {**BASE, "error.type": "ValueError"}).count == 2
    quota = f"{__name__}.test_errors_carry_error_type.<locals>.QuotaExceeded"
    assert one(receiver, "gen_ai.server.request.duration", {**BASE, "error.type": quota}).count == 1
    assert one(receiver, "gen_ai.server.request.duration", BASE).count == 1
    assert one(receiver, "llmobs.inference.active_requests", BASE).value == 0


def test_async_cancellation_is_not_an_error(otlp: Any) -> None:
    receiver = otlp(traces=False)

    @llmobs.monitor_inference(model="m", operation="chat")
    async def slow() -> None:
        await asyncio.sleep(10)

    async def main() -> None:
        task = asyncio.create_task(slow())
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    cancelled = one(receiver, "gen_ai.server.request.duration", {**BASE, "llmobs.end_reason": "cancelled"})
    assert cancelled.count == 1
    assert not exported(receiver, "gen_ai.server.request.duration", BASE)
    assert one(receiver, "llmobs.inference.active_requests", BASE).value == 0


def test_tokens_from_handle_extractor_and_openai_usage(otlp: Any) -> None:
    receiver = otlp(traces=False)

    @llmobs.monitor_inference(model="m", operation="chat")
    def handle() -> str:
        time.sleep(0.01)
        llmobs.current_inference().record_tokens(input=7, output=20)
        return "x"

    class Usage:
        prompt_tokens = 3
        completion_tokens = 4

    class Completion:
        usage = Usage()

    @llmobs.monitor_inference(model="m", operation="chat")
    def openai_object() -> Completion:
        return Completion()

    @llmobs.monitor_inference(model="m", operation="chat")
    def openai_dict() -> dict[str, Any]:
        return {"usage": {"input_tokens": 5, "output_tokens": 6}}

    @llmobs.monitor_inference(model="m", operation="chat", usage=lambda r: (len(r), len(r) * 2))
    def extractor() -> str:
        return "abcd"

    handle(), openai_object(), openai_dict(), extractor()
    usage = "llmobs.inference.token.usage"
    inputs = one(receiver, usage, {**BASE, "gen_ai.token.type": "input"})
    outputs = one(receiver, usage, {**BASE, "gen_ai.token.type": "output"})
    assert (inputs.count, inputs.sum) == (4, 7 + 3 + 5 + 4)
    assert (outputs.count, outputs.sum) == (4, 20 + 4 + 6 + 8)
    assert inputs.unit == "{token}"
    throughput = one(receiver, "llmobs.inference.output_throughput", BASE)
    assert throughput.count == 4 and throughput.unit == "{token}/s"
    assert throughput.max is not None and throughput.max > 4  # 8 tokens in well under 2 s
    assert throughput.min is not None and throughput.min < 20 / 0.01  # the 10 ms call


def test_bad_token_counts_are_dropped_with_one_warning(otlp: Any, caplog: pytest.LogCaptureFixture) -> None:
    receiver = otlp(traces=False)

    @llmobs.monitor_inference(model="m", operation="chat")
    def predict(value: Any) -> None:
        llmobs.current_inference().record_tokens(input=value, output=2)

    with caplog.at_level(logging.WARNING, logger="llmobs"):
        for value in [-1, -5, float("nan"), "12", None, 3]:
            predict(value)
    warnings = [r for r in caplog.records if "token count" in r.getMessage()]
    assert len(warnings) == 3  # as_count warns once per problem: negative, not a number, not a count
    inputs = one(receiver, "llmobs.inference.token.usage", {**BASE, "gen_ai.token.type": "input"})
    assert (inputs.count, inputs.sum) == (1, 3)
    outputs = one(receiver, "llmobs.inference.token.usage", {**BASE, "gen_ai.token.type": "output"})
    assert (outputs.count, outputs.sum) == (6, 12)


def test_broken_usage_extractor_never_reaches_caller(otlp: Any) -> None:
    receiver = otlp(traces=False)

    @llmobs.monitor_inference(model="m", operation="chat", usage=lambda r: (1 // 0, None))
    def predict() -> str:
        return "ok"

    assert predict() == "ok"
    assert one(receiver, "gen_ai.server.request.duration", BASE).count == 1


def test_counts_exact_under_threads(otlp: Any) -> None:
    receiver = otlp(traces=False)

    @llmobs.monitor_inference(model="m", operation="chat")
    def predict(x: int) -> int:
        llmobs.current_inference().record_tokens(output=1)
        return x

    def worker() -> None:
        for i in range(10_000):
            predict(i)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert one(receiver, "gen_ai.server.request.duration", BASE).count == 160_000
    outputs = one(receiver, "llmobs.inference.token.usage", {**BASE, "gen_ai.token.type": "output"})
    assert outputs.sum == 160_000
    assert one(receiver, "llmobs.inference.active_requests", BASE).value == 0


def test_counts_exact_under_concurrent_coroutines(otlp: Any) -> None:
    receiver = otlp(traces=False)
    peak = 0

    @llmobs.monitor_inference(model="m", operation="chat")
    async def generate(i: int) -> int:
        nonlocal peak
        await asyncio.sleep(0.05)
        llmobs.current_inference().record_tokens(output=i % 3)
        return i

    async def main() -> list[int]:
        return await asyncio.gather(*(generate(i) for i in range(1000)))

    assert asyncio.run(main()) == list(range(1000))
    assert one(receiver, "gen_ai.server.request.duration", BASE).count == 1000
    outputs = one(receiver, "llmobs.inference.token.usage", {**BASE, "gen_ai.token.type": "output"})
    assert outputs.sum == sum(i % 3 for i in range(1000))
    assert one(receiver, "llmobs.inference.active_requests", BASE).value == 0


def test_active_requests_counts_calls_in_flight(otlp: Any) -> None:
    receiver = otlp(traces=False)
    inside, release = threading.Event(), threading.Event()

    @llmobs.monitor_inference(model="m", operation="chat")
    def predict() -> None:
        inside.set()
        release.wait(60)  # generous: a call that let go on its own before all three were seen fails the test

    threads = [threading.Thread(target=predict) for _ in range(3)]
    for t in threads:
        t.start()
    assert inside.wait(30)
    receiver.wait_for(lambda r: one(r, "llmobs.inference.active_requests", BASE).value == 3, timeout=30)
    release.set()
    for t in threads:
        t.join()
    assert one(receiver, "llmobs.inference.active_requests", BASE).value == 0


def test_model_chosen_at_run_time_and_series_cap(otlp: Any, caplog: pytest.LogCaptureFixture) -> None:
    receiver = otlp(traces=False, max_series=5)

    @llmobs.monitor_inference(model="default", operation="chat")
    def predict(model: str) -> None:
        llmobs.current_inference().set_model(model)

    with caplog.at_level(logging.WARNING, logger="llmobs"):
        for i in range(50):
            predict(f"model-{i}")
        predict("model-0")
    points = exported(receiver, "gen_ai.server.request.duration")
    by_model = {p.attributes.get("gen_ai.request.model"): p.count for p in points}
    overflow = [p for p in points if p.attributes == {"otel.metric.overflow": True}]
    assert len(points) == 5 and len(overflow) == 1
    assert by_model["model-0"] == 2  # an early series stays exact after the cap is hit
    assert sum(p.count for p in points) == 51
    assert len([r for r in caplog.records if "otel.metric.overflow" in r.getMessage()]) >= 1
    assert len([r for r in caplog.records if "'chat default' reached 5 attribute sets" in r.getMessage()]) == 1


def test_bad_attribute_values_are_dropped_or_capped(otlp: Any, caplog: pytest.LogCaptureFixture) -> None:
    receiver = otlp(traces=False)

    @llmobs.monitor_inference(model="m", operation="chat")
    def predict(value: Any) -> None:
        llmobs.current_inference().set_attribute("tenant", value)

    with caplog.at_level(logging.WARNING, logger="llmobs"):
        predict({"a": 1})
        predict(["x"])
        predict("t" * 1000)
    assert len([r for r in caplog.records if "only str, bool, int and float" in r.getMessage()]) == 1
    assert one(receiver, "gen_ai.server.request.duration", BASE).count == 2
    capped = one(receiver, "gen_ai.server.request.duration", {**BASE, "tenant": "t" * 256})
    assert capped.count == 1


def test_spans_nest_and_record_errors(otlp: Any) -> None:
    receiver = otlp(traces=True)

    @llmobs.monitor_inference(model="m", operation="chat")
    def predict(fail: bool) -> str:
        inner = trace.get_current_span()
        assert inner.get_span_context().is_valid
        llmobs.current_inference().record_tokens(input=2, output=3)
        if fail:
            raise KeyError("k")
        return "ok"

    @llmobs.monitor_inference(model="outer", operation="chat")
    def pipeline() -> str:
        return predict(False)

    assert pipeline() == "ok"
    with pytest.raises(KeyError):
        predict(True)
    assert llmobs.force_flush()
    spans = receiver.wait_for(lambda r: len(r.spans()) == 3 and r.spans())
    by_name = {(s.name, s.status_code): s for s in spans}
    outer = by_name[("chat outer", "STATUS_CODE_UNSET")]
    ok = by_name[("chat m", "STATUS_CODE_UNSET")]
    failed = by_name[("chat m", "STATUS_CODE_ERROR")]
    assert ok.parent_span_id == outer.span_id and ok.trace_id == outer.trace_id
    assert failed.parent_span_id == ""
    assert ok.kind == "SPAN_KIND_INTERNAL"
    assert ok.attributes == {**BASE, "gen_ai.usage.input_tokens": 2, "gen_ai.usage.output_tokens": 3}
    assert failed.attributes["error.type"] == "KeyError"
    assert [name for name, _ in failed.events] == ["exception"]
    assert ok.resource["service.name"] == "test"


def test_metrics_only_creates_no_spans(otlp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    receiver = otlp()
    started = []
    monkeypatch.setattr(TracerProvider, "get_tracer", lambda *a, **k: started.append(a))

    @llmobs.monitor_inference(model="m", operation="chat")
    def predict() -> bool:
        return trace.get_current_span().get_span_context().is_valid

    assert predict() is False
    assert one(receiver, "gen_ai.server.request.duration", BASE).count == 1
    assert receiver.spans() == [] and started == []


def test_current_inference_outside_a_call_records_nothing_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="llmobs"):
        handle = llmobs.current_inference()
        handle.record_tokens(input=1, output=1)
        handle.set_model("x")
        handle.set_attribute("tenant", "t")
        assert llmobs.current_inference() is handle
    assert handle._call is None
    assert [r.getMessage() for r in caplog.records] == [
        "llmobs: current_inference() was called outside any monitored call; what it is given is dropped"
    ]


def test_the_public_handle_offers_only_its_methods() -> None:
    assert {n for n in dir(llmobs.Inference) if not n.startswith("_")} == {
        "record_tokens",
        "set_model",
        "set_attribute",
        "mark_started",
        "mark_first_token",
        "set_finish_reasons",
        "record_units",
    }


def test_calls_before_init_are_exported_after_it(receiver: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_lifecycle, "state", _lifecycle.State())  # as in a fresh process

    @llmobs.monitor_inference(model="m", operation="chat")
    def predict() -> None:
        pass

    predict()
    predict()
    llmobs.init(service_name="test", endpoint=receiver.grpc_endpoint, export_interval=3600, traces=False)
    predict()
    assert one(receiver, "gen_ai.server.request.duration", BASE).count == 3


def test_recording_after_shutdown_is_a_silent_noop(otlp: Any) -> None:
    receiver = otlp(traces=False)

    @llmobs.monitor_inference(model="m", operation="chat")
    def predict() -> int:
        return 1

    predict()
    assert llmobs.shutdown(timeout=2)
    assert llmobs.shutdown(timeout=2)  # idempotent
    receiver.clear()
    assert predict() == 1
    assert llmobs.force_flush() and receiver.requests == []


def test_decorator_arguments_are_checked_at_decoration() -> None:
    with pytest.raises(llmobs.ConfigError, match="model"):
        llmobs.monitor_inference(model=3)  # type: ignore[call-overload]
    with pytest.raises(llmobs.ConfigError, match="usage"):
        llmobs.monitor_inference(usage="prompt_tokens")  # type: ignore[call-overload]
    with pytest.raises(llmobs.ConfigError, match="operation"):
        llmobs.monitor_inference(operation=None)  # type: ignore[call-overload]


def test_warnings_stay_bounded_with_user_chosen_keys(otlp: Any, caplog: pytest.LogCaptureFixture) -> None:
    otlp(traces=False)

    @llmobs.monitor_inference(model="m", operation="chat")
    def predict(i: int) -> None:
        llmobs.current_inference().set_attribute(f"key{i}", [i])  # type: ignore[arg-type]

    with caplog.at_level(logging.WARNING, logger="llmobs"):
        for i in range(_failsafe.MAX_REPORTED + 500):
            predict(i)
    assert len(_failsafe._reported) == _failsafe.MAX_REPORTED
    assert len(caplog.records) == _failsafe.MAX_REPORTED


def test_absurd_token_counts_never_corrupt_a_series(otlp: Any, caplog: pytest.LogCaptureFixture) -> None:
    receiver = otlp(traces=True)

    @llmobs.monitor_inference(model="m", operation="chat")
    def predict(tokens: int) -> None:
        llmobs.current_inference().record_tokens(input=tokens)

    with caplog.at_level(logging.WARNING, logger="llmobs"):
        predict(10**400)
        predict(2**53)
        predict(5)
    inputs = one(receiver, "llmobs.inference.token.usage", {**BASE, "gen_ai.token.type": "input"})
    assert (inputs.count, inputs.sum, sum(inputs.bucket_counts)) == (1, 5, 1)
    assert len(receiver.wait_for(lambda r: len(r.spans()) == 3 and r.spans())) == 3  # every span ended


def test_async_callable_objects_are_timed_until_their_result(otlp: Any) -> None:
    receiver = otlp(traces=False)

    class Model:
        async def __call__(self, delay: float) -> str:
            await asyncio.sleep(delay)
            return "done"

    generate = llmobs.monitor_inference(Model(), model="m", operation="chat")
    assert inspect.iscoroutinefunction(generate)
    assert asyncio.run(generate(0.05)) == "done"
    assert one(receiver, "gen_ai.server.request.duration", BASE).sum >= 0.05


def test_a_sync_wrapper_returning_a_coroutine_is_flagged_once(otlp: Any, caplog: pytest.LogCaptureFixture) -> None:
    otlp(traces=False)

    async def work() -> int:
        return 1

    @llmobs.monitor_inference(model="m", operation="chat")
    def predict() -> Any:
        return work()

    with caplog.at_level(logging.WARNING, logger="llmobs"):
        assert asyncio.run(predict()) == 1
        assert asyncio.run(predict()) == 1
    assert len([r for r in caplog.records if "returned an awaitable" in r.getMessage()]) == 1


def test_logging_handlers_may_record_telemetry(otlp: Any) -> None:
    receiver = otlp(traces=False, max_series=1, gpu=False, host=False)
    handled = []

    @llmobs.monitor_inference(model="m", operation="chat")
    def predict() -> None:
        pass

    class Recording(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            handled.append(record)
            predict()  # runs while llmobs logs its cap warning: must not deadlock

    handler = Recording()
    logging.getLogger("llmobs").addHandler(handler)
    try:
        finished = threading.Event()

        def run() -> None:
            @llmobs.monitor_inference(model="other", operation="chat")
            def capped() -> None:
                pass

            predict()
            capped()  # over the cap: warns, and the handler calls predict()
            finished.set()

        threading.Thread(target=run, daemon=True).start()
        assert finished.wait(30), "deadlocked"
    finally:
        logging.getLogger("llmobs").removeHandler(handler)
    assert handled
    assert sum(p.count for p in exported(receiver, "gen_ai.server.request.duration")) == 2 + len(handled)


@pytest.mark.parametrize(("shape", "form"), shapes.CASES, ids=shapes.IDS)
def test_every_shape_and_form_is_timed_to_its_end_and_stays_truthful(otlp: Any, shape: str, form: str) -> None:
    receiver = otlp(traces=False)
    target = shapes.decorated(llmobs.monitor_inference(model="m", operation="chat"), shape, form)
    assert shapes.truthful(target, shape)
    started = time.perf_counter()
    assert shapes.drive(target(1)) == 1
    took = time.perf_counter() - started
    duration = one(receiver, "gen_ai.server.request.duration", BASE)
    # To its end: at least the body's sleep, at most the call and its driving as timed here.
    assert duration.count == 1 and shapes.DELAY <= duration.sum <= took


def test_a_function_returning_a_stream_is_flagged_once(otlp: Any, caplog: pytest.LogCaptureFixture) -> None:
    otlp(traces=False)

    class StreamingResponse:
        def __init__(self, body: Iterator[str]) -> None:
            self.body_iterator = body

    def tokens() -> Iterator[str]:
        yield "t"

    @llmobs.monitor_inference(model="m", operation="chat")
    def returns_generator() -> Iterator[str]:
        return tokens()

    @llmobs.monitor_inference(model="m", operation="stream")
    def returns_response() -> StreamingResponse:
        return StreamingResponse(tokens())

    with caplog.at_level(logging.WARNING, logger="llmobs"):
        for _ in range(3):
            assert list(returns_generator()) == ["t"]
            assert list(returns_response().body_iterator) == ["t"]
    flagged = [r.getMessage() for r in caplog.records if "returned a generator or streaming response" in r.getMessage()]
    assert len(flagged) == 2 and "'chat m'" in flagged[0] and "'stream m'" in flagged[1]


def test_nan_and_other_unstable_attribute_values_do_not_open_series(
    otlp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = otlp(traces=False, max_series=10)

    class Tier(enum.IntEnum):
        GOLD = 1

    @llmobs.monitor_inference(model="m", operation="chat")
    def predict(value: Any) -> None:
        llmobs.current_inference().set_attribute("x", value)

    with caplog.at_level(logging.WARNING, logger="llmobs"):
        for _ in range(50):
            predict(float("nan"))
            predict(Tier.GOLD)
    assert len([r for r in caplog.records if "got NaN" in r.getMessage()]) == 1
    points = exported(receiver, "gen_ai.server.request.duration")
    assert {p.attributes.get("x", "dropped"): p.count for p in points} == {1: 50, "dropped": 50}
    assert not [p for p in points if "otel.metric.overflow" in p.attributes]


def test_only_series_that_record_count_against_the_cap(otlp: Any) -> None:
    receiver = otlp(traces=False, max_series=3)

    @llmobs.monitor_inference(model="a", operation="chat")
    def a() -> None:
        pass

    @llmobs.monitor_inference(model="b", operation="chat")
    def b() -> None:
        pass

    @llmobs.monitor_inference(model="c", operation="chat")
    def c() -> Iterator[int]:
        yield 1

    a(), b(), list(c())
    ttft = exported(receiver, "gen_ai.server.time_to_first_token")
    assert [p.attributes for p in ttft] == [{**BASE, "gen_ai.request.model": "c"}]
    assert len(exported(receiver, "gen_ai.server.request.duration")) == 3
    outputs = exported(receiver, "llmobs.inference.token.usage")
    assert [p.attributes["gen_ai.request.model"] for p in outputs] == ["c"]  # a and b counted no tokens


def test_calls_past_the_cap_share_the_overflow_series_exactly(otlp: Any) -> None:
    receiver = otlp(traces=False, max_series=4)

    @llmobs.monitor_inference(model="m", operation="chat")
    def predict(tenant: int, fail: bool) -> None:
        llmobs.current_inference().set_attribute("tenant", tenant)
        llmobs.current_inference().record_tokens(output=2)
        if fail:
            raise ValueError

    for tenant in range(100):
        with contextlib.suppress(ValueError):
            predict(tenant, tenant % 10 == 0)
    points = exported(receiver, "gen_ai.server.request.duration")
    assert sum(p.count for p in points) == 100 and len(points) <= 4
    overflow = [p for p in points if p.attributes == {"otel.metric.overflow": True}]
    assert len(overflow) == 1 and overflow[0].count >= 90
    outputs = exported(receiver, "llmobs.inference.token.usage")
    assert sum(p.sum for p in outputs) == 200


@pytest.mark.parametrize("capture", [False, True], ids=["type-only", "messages"])
def test_a_failed_call_exports_the_exception_type_and_the_message_only_on_request(otlp: Any, capture: bool) -> None:
    receiver = otlp(traces=True, capture_exception_messages=capture)

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    @llmobs.monitor_inference(model="m", operation="chat")
    def predict(error: Exception) -> None:
        raise error

    for error in (KeyError("the prompt"), Unprintable()):
        with pytest.raises(type(error)):
            predict(error)
    assert llmobs.force_flush()
    spans = receiver.wait_for(lambda r: len(r.spans()) == 2 and r.spans())
    events = {s.attributes["error.type"]: (s.status_code, s.events) for s in spans}
    unprintable = f"{__name__}.{Unprintable.__qualname__}"
    assert set(events) == {"KeyError", unprintable}
    for kind, (status, recorded) in events.items():
        assert status == "STATUS_CODE_ERROR"
        [(name, attributes)] = recorded
        assert name == "exception" and attributes["exception.type"] == kind
        assert ("exception.message" in attributes) is capture
    if capture:
        assert events["KeyError"][1][0][1]["exception.message"] == "'the prompt'"
        assert "could not be read" in events[unprintable][1][0][1]["exception.message"]
