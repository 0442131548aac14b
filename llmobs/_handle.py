"""The call in progress: its internal bookkeeping (``Call``), the narrow public handle over it
(``llmobs.Inference``), and the context variable that makes ``current_inference()`` work."""

from __future__ import annotations

from contextvars import ContextVar
from time import perf_counter
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import Span

from . import semconv as names
from ._attributes import AttributeValue, as_count, as_quantity, clean_value
from ._failsafe import guarded, warn_once


class Call:
    """What llmobs keeps about one call: its start, span, token counts and run-time attributes."""

    __slots__ = ("start", "span", "context", "input_tokens", "output_tokens", "attributes", "extra")

    def __init__(self, start: float) -> None:
        self.start = start
        self.span: Span | None = None
        self.context: Context | None = None  # the span's context, made current inside the call
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.attributes: dict[str, AttributeValue] | None = None
        self.extra: Extra | None = None  # made by the first handle method that needs it


class Extra:
    """What only some calls report (queue wait, finish reasons, units, a first token seen by a callback):
    one slot on ``Call``, so that a call that reports none of it pays one check."""

    __slots__ = ("started", "queued", "first_token", "finish_reasons", "units", "unit")

    def __init__(self) -> None:
        self.started: float | None = None
        self.queued: float | None = None
        self.first_token: float | None = None
        self.finish_reasons: tuple[str, ...] | None = None
        self.units: float | None = None
        self.unit = ""


class Inference:
    """The call in progress, as seen from inside it (``llmobs.current_inference()``).

    Report what only the function knows: token counts, or the model it chose at run time.
    """

    __slots__ = ("_call",)

    def __init__(self, call: Call | None) -> None:
        self._call = call

    @guarded(where="record_tokens")
    def record_tokens(self, input: int | None = None, output: int | None = None) -> None:
        """Set this call's token counts. In a stream, ``output`` replaces the per-chunk count."""
        call = self._call
        if call is None:
            return
        if input is not None and (count := as_count(input, "token")) is not None:
            call.input_tokens = count
        if output is not None and (count := as_count(output, "token")) is not None:
            call.output_tokens = count

    @guarded(where="mark_started")
    def mark_started(self, queued: float | None = None) -> None:
        """End this call's queue wait: from the call's start to now is queue time, from now to its end
        execution time. ``queued``: the wait in seconds, when the engine measured it itself."""
        extra = self._extra()
        if extra is None or extra.started is not None:
            return
        extra.started = perf_counter()
        if queued is None:
            extra.queued = extra.started - self._call.start  # type: ignore[union-attr]
        else:
            extra.queued = as_quantity(queued, "queue time")

    @guarded(where="mark_first_token")
    def mark_first_token(self) -> None:
        """Note that the first output token is out now (a streaming callback), for TTFT and TPOT."""
        extra = self._extra()
        if extra is not None and extra.first_token is None:
            extra.first_token = perf_counter()

    @guarded(where="set_finish_reasons")
    def set_finish_reasons(self, *reasons: str) -> None:
        """Why this call's choices finished (``stop``, ``length``, ...); unknown reasons count as ``_OTHER``."""
        extra = self._extra()
        if extra is None:
            return
        extra.finish_reasons = bounded = tuple(_finish_reason(reason) for reason in reasons)
        span = self._call.span  # type: ignore[union-attr]
        if span is not None and bounded:
            span.set_attribute(names.FINISH_REASONS, bounded)

    @guarded(where="record_units")
    def record_units(self, count: float, unit: str = "s") -> None:
        """How much input this call processed in a unit other than tokens: seconds of audio (which
        gives the real-time factor), ``"{image}"``, ``"{frame}"``."""
        extra = self._extra()
        amount = as_quantity(count, "units")
        cleaned = clean_value(names.UNIT, unit) if isinstance(unit, str) and unit else None
        if not isinstance(cleaned, str):
            warn_once("units:unit", "llmobs: record_units(unit=...) must be a short non-empty string; dropped")
        elif extra is not None and amount is not None:
            extra.units, extra.unit = amount, cleaned

    def _extra(self) -> Extra | None:
        call = self._call
        if call is None:
            return None
        if call.extra is None:
            call.extra = Extra()
        return call.extra

    def set_model(self, model: str) -> None:
        """Name the model that served this call, when it is only known at run time."""
        self.set_attribute(names.MODEL, model)

    @guarded(where="set_attribute")
    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Add an attribute to this call's span and series (keep the number of values small)."""
        call = self._call
        cleaned = clean_value(key, value) if call is not None and isinstance(key, str) else None
        if call is None or cleaned is None:
            return
        if call.attributes is None:
            call.attributes = {}
        call.attributes[key] = cleaned
        if call.span is not None:
            call.span.set_attribute(key, cleaned)


def _finish_reason(reason: object) -> str:
    """``reason`` if it is one of the known finish reasons, else ``_OTHER`` (warned once)."""
    if isinstance(reason, str) and reason in names.FINISH_REASON_VALUES:
        return str.__str__(reason)
    warn_once(
        "finish_reason:unknown",
        "llmobs: finish reason %r is not one of %s; counted as %s",
        reason[:64] if isinstance(reason, str) else type(reason).__name__,
        ", ".join(sorted(names.FINISH_REASON_VALUES)),
        names.OTHER,
    )
    return names.OTHER


DETACHED = Inference(None)
"""The handle outside any monitored call: accepts everything, keeps nothing."""

Entry = list[Any]
"""What the context variable holds for a call: ``[start, call]``, or on the metrics-only path the
placeholder ``[start]`` (a list literal costs 31 ns, a slotted object 110 ns), which gets its
``Call`` appended only if the function asks for its handle."""

_current: ContextVar[Entry | None] = ContextVar("llmobs_inference", default=None)
# Bound once: on CPython 3.11 calling ``_current.set`` through an imported name allocates a bound
# method per call (the compiler assumes a module there).
current = _current.get
enter = _current.set
leave = _current.reset


def entry_of(call: Call) -> Entry:
    """The entry of a call that has its ``Call`` from the start (a span, a stream)."""
    return [call.start, call]


def untouched(entry: Entry) -> bool:
    """True for a placeholder whose handle no one asked for: its call can end inline."""
    return len(entry) == 1


def call_of(entry: Entry) -> Call:
    """The ``Call`` of an entry, made from its placeholder on first need."""
    if len(entry) == 1:
        entry.append(Call(entry[0]))
    return entry[1]  # type: ignore[no-any-return]


def current_inference() -> Inference:
    """The handle of the innermost monitored call; outside any, a handle that records nothing."""
    entry = _current.get()
    if entry is None:
        warn_once(
            "current_inference:outside",
            "llmobs: current_inference() was called outside any monitored call; what it is given is dropped",
        )
        return DETACHED
    return Inference(call_of(entry))
