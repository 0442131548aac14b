"""The call in progress: its internal bookkeeping (``Call``), the narrow public handle over it
(``llmobs.Inference``), and the context variable that makes ``current_inference()`` work."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import Span

from . import semconv as names
from ._attributes import AttributeValue, as_count, clean_value
from ._failsafe import guarded, warn_once


class Call:
    """What llmobs keeps about one call: its start, span, token counts and run-time attributes."""

    __slots__ = ("start", "span", "context", "input_tokens", "output_tokens", "attributes")

    def __init__(self, start: float) -> None:
        self.start = start
        self.span: Span | None = None
        self.context: Context | None = None  # the span's context, made current inside the call
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.attributes: dict[str, AttributeValue] | None = None


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
