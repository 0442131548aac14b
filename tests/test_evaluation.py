"""Evaluation results and runs: the GenAI event decoded from the real OTLP receiver (on the call's span,
else as a log record), the score and label metrics, bad input dropped with one warning, and the
accuracy of a run."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import pytest

import llmobs
from llmobs import semconv as names
from tests.helpers import exported, one
from tests.otlp_receiver import OTLPReceiver

RESULT = "gen_ai.evaluation.result"


@llmobs.monitor_inference(model="m", operation="chat")
def answer(explanation: str | None = None) -> str:
    llmobs.record_evaluation(
        "relevance", 0.8, "relevant", model="m", response_id="resp-1", explanation=explanation or "quotes the prompt"
    )
    return "ok"


def test_inside_a_call_the_event_goes_on_its_span(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    answer()
    assert llmobs.force_flush(timeout=5)
    span = receiver.wait_for(lambda r: next(s for s in r.spans() if s.events))
    assert span.events == [
        (
            RESULT,
            {
                "gen_ai.evaluation.name": "relevance",
                "gen_ai.request.model": "m",
                "gen_ai.evaluation.score.value": 0.8,
                "gen_ai.evaluation.score.label": "relevant",
                "gen_ai.response.id": "resp-1",
            },  # no explanation: it may quote the prompt
        )
    ]


def test_explanations_are_exported_only_when_asked(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp(capture_evaluation_explanations=True)
    answer("the answer cites the retrieved passage")
    assert llmobs.force_flush(timeout=5)
    span = receiver.wait_for(lambda r: next(s for s in r.spans() if s.events))
    assert span.events[0][1]["gen_ai.evaluation.explanation"] == "the answer cites the retrieved passage"


def test_outside_a_call_the_event_is_a_log_record(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp(protocol="http/protobuf")
    llmobs.record_evaluation("user_feedback", label="thumbs_down", model="m", response_id="resp-2")
    assert llmobs.force_flush(timeout=5)
    record = receiver.wait_for(lambda r: next(log for log in r.logs() if log.event_name == RESULT))
    assert record.attributes == {
        "event.name": RESULT,
        "gen_ai.evaluation.name": "user_feedback",
        "gen_ai.request.model": "m",
        "gen_ai.evaluation.score.label": "thumbs_down",
        "gen_ai.response.id": "resp-2",
    }


def test_scores_and_labels_are_counted_by_name_and_model(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    for score in (1.0, 0.5, 0.25):
        llmobs.record_evaluation("faithfulness", score, model="m")
    for label in ("thumbs_up", "thumbs_up", "thumbs_down"):
        llmobs.record_evaluation("user_feedback", label=label, model="m")
    scores = one(receiver, names.EVALUATION_SCORE.name, {"gen_ai.evaluation.name": "faithfulness", names.MODEL: "m"})
    assert scores.count == 3 and math.isclose(scores.sum, 1.75)
    assert scores.explicit_bounds[:12] == [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0]
    feedback = {"gen_ai.evaluation.name": "user_feedback", names.MODEL: "m"}
    labels = {
        p.attributes["gen_ai.evaluation.score.label"]: p.value for p in exported(receiver, "llmobs.evaluation.labels")
    }
    assert labels == {"thumbs_up": 2, "thumbs_down": 1}
    assert not exported(receiver, names.EVALUATION_SCORE.name, feedback)  # labels alone record no score


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"score": math.nan}, "finite number"),
        ({"score": math.inf}, "finite number"),
        ({"score": "0.9"}, "finite number"),
        ({"score": True}, "finite number"),
        ({"label": 5}, "label must be a non-empty string"),
        ({}, "needs a score or a label"),
    ],
)
def test_bad_results_are_dropped_with_one_warning(
    otlp: Callable[..., OTLPReceiver],
    llmobs_logs: pytest.LogCaptureFixture,
    arguments: dict[str, object],
    problem: str,
) -> None:
    receiver = otlp()
    llmobs.record_evaluation("good", 0.5)
    for _ in range(3):
        llmobs.record_evaluation("bad", **arguments)  # type: ignore[arg-type]
    warnings = [r.getMessage() for r in llmobs_logs.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and problem in warnings[0]
    assert [p.attributes for p in exported(receiver, names.EVALUATION_SCORE.name)] == [
        {"gen_ai.evaluation.name": "good"}
    ]


def test_unbounded_names_are_capped_like_other_series(
    otlp: Callable[..., OTLPReceiver], llmobs_logs: pytest.LogCaptureFixture
) -> None:
    receiver = otlp(max_series=3)
    for i in range(10):
        llmobs.record_evaluation(f"name-{i}", 1.0)
    points = exported(receiver, names.EVALUATION_SCORE.name)
    assert len(points) == 4 and sum(p.count for p in points) == 10
    assert one(receiver, names.EVALUATION_SCORE.name, {"otel.metric.overflow": True}).count == 7
    assert sum("llmobs.evaluation.score reached 3" in r.getMessage() for r in llmobs_logs.records) == 1


def test_a_run_reports_accuracy_items_and_duration(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    with llmobs.monitor_evaluation("golden-set", model="m", total=10) as run:
        for i in range(10):
            if i == 9:
                run.add(error=True)
            else:
                run.add(correct=i < 7, score=1.0 if i < 7 else 0.0)
    assert run.accuracy == 7 / 9
    attrs = {"gen_ai.evaluation.name": "golden-set", names.MODEL: "m"}
    assert one(receiver, names.EVALUATION_ACCURACY.name, attrs).value == pytest.approx(7 / 9)
    items = {p.attributes["llmobs.evaluation.outcome"]: p.value for p in exported(receiver, "llmobs.evaluation.items")}
    assert items == {"correct": 7, "incorrect": 2, "error": 1}
    assert one(receiver, names.EVALUATION_SCORE.name, attrs).sum == 7.0
    assert one(receiver, names.EVALUATION_DURATION.name, attrs).count == 1


def test_a_run_that_raises_passes_the_exception_on_and_sets_no_accuracy(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    boom = RuntimeError("test set missing")
    with pytest.raises(RuntimeError) as raised, llmobs.monitor_evaluation("golden-set", model="m") as run:
        run.add(correct=True)
        raise boom
    assert raised.value is boom
    assert not exported(receiver, names.EVALUATION_ACCURACY.name)
    attrs = {"gen_ai.evaluation.name": "golden-set", names.MODEL: "m", "error.type": "RuntimeError"}
    assert one(receiver, names.EVALUATION_DURATION.name, attrs).count == 1


def test_monitor_evaluation_rejects_bad_set_up() -> None:
    with pytest.raises(llmobs.ConfigError, match="non-empty string"):
        llmobs.monitor_evaluation("")
    with pytest.raises(llmobs.ConfigError, match="total"):
        llmobs.monitor_evaluation("x", total=-1)


def test_inside_an_untraced_call_the_event_is_a_log_record(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp(protocol="http/protobuf", traces=False)  # metrics-only: calls have no span
    answer()
    assert llmobs.force_flush(timeout=5)
    record = receiver.wait_for(lambda r: next(log for log in r.logs() if log.event_name == RESULT))
    assert record.attributes["gen_ai.evaluation.score.value"] == 0.8 and not receiver.spans()
