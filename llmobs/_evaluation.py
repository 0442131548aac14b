"""Model quality: evaluation results (a test set's verdicts, user feedback) as the GenAI conventions'
``gen_ai.evaluation.result`` event plus metrics, and evaluation runs over a test set.

An explanation may quote the prompt or the completion, so it is exported only when
``capture_evaluation_explanations`` (LLMOBS_CAPTURE_EVALUATION_EXPLANATIONS) is on (docs/quality.md).
"""

from __future__ import annotations

import math
from numbers import Real
from time import perf_counter
from types import TracebackType

from . import _lifecycle, _logs
from . import semconv as names
from ._attributes import Attributes, AttributeValue, clean_value, freeze, merge
from ._config import ConfigError
from ._failsafe import guarded, warn_once
from ._handle import current, untouched
from .semconv import error_type


@guarded(where="record_evaluation")
def record_evaluation(
    name: str,
    score: float | None = None,
    label: str | None = None,
    *,
    model: str | None = None,
    response_id: str | None = None,
    explanation: str | None = None,
) -> None:
    """Record one evaluation result: on the current call's span as a ``gen_ai.evaluation.result`` event
    (else as a log record), into ``llmobs.evaluation.score`` and, with a label, ``llmobs.evaluation.labels``.
    Feedback is one evaluation name: ``record_evaluation("user_feedback", label="thumbs_up")``."""
    result = _checked(name, score, label)
    if result is None:
        return
    value, text = result
    attrs = _series_attributes(name, model)
    if attrs is None:
        return
    registry = _lifecycle.state.registry
    if value is not None:
        registry.series(names.EVALUATION_SCORE, attrs).record(value)
    if text is not None:
        registry.series(names.EVALUATION_LABELS, merge(attrs, {names.EVALUATION_SCORE_LABEL: text})).record(1)
    event: dict[str, AttributeValue] = dict(attrs)
    if value is not None:
        event[names.EVALUATION_SCORE_VALUE] = value
    if text is not None:
        event[names.EVALUATION_SCORE_LABEL] = text
    for key, extra in ((names.RESPONSE_ID, response_id), (names.EVALUATION_EXPLANATION, explanation)):
        if extra is not None and (key != names.EVALUATION_EXPLANATION or _explanations_wanted()):
            cleaned = clean_value(key, extra) if isinstance(extra, str) else None
            if cleaned is not None:
                event[key] = cleaned
    _emit(event)


def _checked(name: object, score: object, label: object) -> tuple[float | None, str | None] | None:
    """The score as a float and the label, or None (one warning per problem) when the result is unusable."""
    problem = None
    if not isinstance(name, str) or not name:
        problem = "its name must be a non-empty string"
    elif score is None and label is None:
        problem = "it needs a score or a label"
    elif score is not None and (isinstance(score, bool) or not isinstance(score, Real) or not math.isfinite(score)):
        problem = "its score must be a finite number"
    elif label is not None and (not isinstance(label, str) or not label):
        problem = "its label must be a non-empty string"
    if problem is not None:
        warn_once(f"evaluation:{problem}", "llmobs: an evaluation result was dropped: %s", problem)
        return None
    return (None if score is None else float(score)), label  # type: ignore[arg-type, return-value]


def _series_attributes(name: str, model: object) -> Attributes | None:
    if model is not None and not isinstance(model, str):
        warn_once("evaluation:model", "llmobs: an evaluation result was dropped: its model must be a string")
        return None
    return freeze({names.EVALUATION_NAME: name, **({} if model is None else {names.MODEL: model})})


def _explanations_wanted() -> bool:
    settings = _lifecycle.state.settings
    return settings is not None and settings.capture_evaluation_explanations


def _emit(event: dict[str, AttributeValue]) -> None:
    """Inside a traced call, an event on its span; elsewhere a log record (with the active trace's ids)."""
    entry = current()
    span = None if entry is None or untouched(entry) else entry[1].span
    if span is not None and span.is_recording():
        span.add_event(names.EVALUATION_EVENT, event)
    else:
        _logs.emit_event(names.EVALUATION_EVENT, event)


class EvaluationRun:
    """One run over a test set, from inside ``monitor_evaluation``: ``add`` each item's verdict."""

    def __init__(self, name: str, model: str | None, total: int | None) -> None:
        self.name, self.model, self.total = name, model, total
        self.correct = self.incorrect = self.errors = 0
        self._attrs = freeze({names.EVALUATION_NAME: name, **({} if model is None else {names.MODEL: model})})
        self._registry = _lifecycle.state.registry
        self._start = perf_counter()

    @property
    def accuracy(self) -> float | None:
        """Correct items over the items with a verdict so far; None before the first."""
        judged = self.correct + self.incorrect
        return self.correct / judged if judged else None

    @guarded(where="evaluation run add")
    def add(self, correct: bool | None = None, score: float | None = None, *, error: bool = False) -> None:
        """One item: ``correct`` (its verdict), ``score`` (into ``llmobs.evaluation.score``), or ``error=True``
        for an item that could not be evaluated."""
        if correct is not None and not isinstance(correct, bool):
            warn_once("evaluation run:correct", "llmobs: run.add(correct=...) must be True, False or None; dropped")
            return
        if score is not None and _checked(self.name, score, None) is None:
            return
        outcome = "error" if error else None if correct is None else "correct" if correct else "incorrect"
        if outcome == "error":
            self.errors += 1
        elif outcome is not None:
            self.correct += correct is True
            self.incorrect += correct is False
        if outcome is not None:
            self._registry.series(
                names.EVALUATION_ITEMS, merge(self._attrs, {names.EVALUATION_OUTCOME: outcome})
            ).record(1)
        if score is not None:
            self._registry.series(names.EVALUATION_SCORE, self._attrs).record(float(score))

    def _finish(self, exc: BaseException | None) -> None:
        duration = perf_counter() - self._start
        attrs = self._attrs if exc is None else merge(self._attrs, {names.ERROR_TYPE: error_type(exc)})
        self._registry.series(names.EVALUATION_DURATION, attrs).record(duration)
        accuracy = self.accuracy
        if exc is None and accuracy is not None:  # a run cut short is no baseline
            self._registry.series(names.EVALUATION_ACCURACY, self._attrs).record(accuracy)
            _emit({**dict(self._attrs), names.EVALUATION_SCORE_VALUE: accuracy})


class monitor_evaluation:  # lower case: used like a function, as contextlib's helpers are
    """An evaluation run over a test set; on a clean exit its accuracy becomes the gauge
    ``llmobs.evaluation.accuracy`` (alert on it against a baseline)::

    with llmobs.monitor_evaluation("golden-set", model="llama-3-8b", total=len(items)) as run:
        for item in items:
            run.add(correct=predict(item.x) == item.y)
    """

    def __init__(self, name: str, model: str | None = None, total: int | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError("monitor_evaluation(name) must be a non-empty string")
        if model is not None and not isinstance(model, str):
            raise ConfigError("monitor_evaluation(model=...) must be a string or None")
        if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
            raise ConfigError("monitor_evaluation(total=...) must be a non-negative integer or None")
        self.name, self.model, self.total = name, model, total
        self._runs: list[EvaluationRun] = []

    def __enter__(self) -> EvaluationRun:
        run = EvaluationRun(self.name, self.model, self.total)
        self._runs.append(run)
        return run

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runs:
            _finish(self._runs.pop(), exc)


@guarded(where="evaluation run end")
def _finish(run: EvaluationRun, exc: BaseException | None) -> None:
    run._finish(exc)
