"""Per-call bookkeeping shared by every call shape: start, first token, tokens, end, error.

A ``Site`` is one decorated function. It binds its series once per runtime generation, so that a
call costs a few attribute loads plus the aggregation itself; everything it does is guarded, so
no failure in here reaches the caller.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from numbers import Integral
from time import perf_counter
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import _lifecycle
from . import semconv as names
from ._aggregation import Series
from ._attributes import Attributes, AttributeValue, clean_value, freeze, merge
from ._failsafe import internal_error, warn_once
from .semconv import error_type

UsageExtractor = Callable[[Any], "tuple[int | None, int | None]"]


class Inference:
    """The call in progress, as seen from inside it (``llmobs.current_inference()``).

    Report what only the function knows: token counts, or the model it chose at run time.
    """

    __slots__ = ("start", "active", "span", "scope", "input_tokens", "output_tokens", "attributes")

    def __init__(self, start: float, active: Series | None) -> None:
        self.start = start
        self.active = active
        self.span: Any = None
        self.scope: object = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.attributes: dict[str, AttributeValue] | None = None

    def record_tokens(self, input: int | None = None, output: int | None = None) -> None:
        """Set this call's token counts. In a stream, ``output`` replaces the per-chunk count."""
        if input is not None and _valid_tokens(input):
            self.input_tokens = int(input)
        if output is not None and _valid_tokens(output):
            self.output_tokens = int(output)

    def set_model(self, model: str) -> None:
        """Name the model that served this call, when it is only known at run time."""
        self.set_attribute(names.MODEL, model)

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Add an attribute to this call's span and series (keep the number of values small)."""
        cleaned = clean_value(key, value) if isinstance(key, str) else None
        if cleaned is None:
            return
        if self.attributes is None:
            self.attributes = {}
        self.attributes[key] = cleaned
        if self.span is not None:
            self.span.set_attribute(key, cleaned)


MAX_COUNT = 2**53  # beyond this a float sum loses whole units: such a count is a bug, not a call


def _valid_tokens(value: object) -> bool:
    if isinstance(value, Integral) and not isinstance(value, bool) and 0 <= int(value) < MAX_COUNT:
        return True
    if isinstance(value, float) and 0 <= value < MAX_COUNT and value.is_integer():
        return True
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:  # not NaN
        kind = "negative" if value < 0 else "too large"
    else:
        kind = "not a count"
    warn_once(f"tokens:{kind}", "llmobs: token count %r dropped (%s); counts must be integers >= 0", value, kind)
    return False


# A metrics-only call skips building its Inference and keeps a two-item list, [start, active
# series], as a placeholder; current_inference() turns it into the handle (appended as a third
# item) only if the function asks for one.
_current: ContextVar[Inference | list[Any] | None] = ContextVar("llmobs_inference", default=None)
# Bound once: on CPython 3.11 calling ``_current.set`` through an imported name allocates a bound
# method per call (the compiler assumes a module there).
enter = _current.set
leave = _current.reset


class _Detached(Inference):
    """The handle outside any monitored call: accepts everything, keeps nothing."""

    __slots__ = ()

    def record_tokens(self, input: int | None = None, output: int | None = None) -> None:
        pass

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        pass


_DETACHED = _Detached(0.0, None)

# Results of these exact types never carry an OpenAI-style ``usage``: skip the attribute lookup.
NO_USAGE = frozenset({str, bytes, int, float, bool, list, tuple, type(None)})


def current_inference() -> Inference:
    """The handle of the innermost monitored call; outside any, a handle that records nothing."""
    call = _current.get()
    if call is None:
        return _DETACHED
    return handle(call) if type(call) is list else call  # type: ignore[return-value]


def handle(call: Inference | list[Any]) -> Inference:
    """The ``Inference`` of a call, made from its placeholder on first need."""
    if type(call) is not list:
        return call  # type: ignore[return-value]
    if len(call) == 2:
        call.append(Inference(call[0], call[1]))
    return call[2]  # type: ignore[no-any-return]


class _Series:
    """The series one attribute set records into, looked up once."""

    __slots__ = ("duration", "input", "output", "throughput", "ttft", "tpot")

    def __init__(self, attrs: Attributes) -> None:
        registry = _lifecycle.state.registry
        self.duration = registry.series(names.REQUEST_DURATION, attrs)
        self.input = registry.series(names.TOKEN_USAGE, merge(attrs, {names.TOKEN_TYPE: "input"}))
        self.output = registry.series(names.TOKEN_USAGE, merge(attrs, {names.TOKEN_TYPE: "output"}))
        self.throughput = registry.series(names.OUTPUT_THROUGHPUT, attrs)
        self.ttft = registry.series(names.TIME_TO_FIRST_TOKEN, attrs)
        self.tpot = registry.series(names.TIME_PER_OUTPUT_TOKEN, attrs)


class Site:
    """One decorated function: its attributes and the series it records into."""

    def __init__(
        self,
        model: str,
        operation: str,
        provider: str,
        attributes: Mapping[str, object],
        usage: UsageExtractor | None,
        chunk_tokens: Callable[[Any], int] | None,
    ) -> None:
        self.base = freeze({**attributes, names.MODEL: model, names.OPERATION: operation, names.PROVIDER: provider})
        self.span_name = f"{operation} {model}"
        self.usage = usage
        self.chunk_tokens = chunk_tokens
        self.generation = -1
        self.tracer: trace.Tracer | None = None

    def _bind(self) -> None:
        state = _lifecycle.state
        generation = state.generation
        self.active = state.registry.series(names.ACTIVE_REQUESTS, self.base)
        self.bound = _Series(self.base)
        self._by_attributes: dict[Attributes, _Series] = {self.base: self.bound}
        self._endings: dict[tuple[Attributes, str, str], Series] = {}
        self.tracer = state.tracer
        self.generation = generation

    def begin(self, attach: bool = True) -> Inference:
        """Start a call. A stream passes ``attach=False``: its span is made current per resume."""
        try:
            if self.generation != _lifecycle.state.generation:
                self._bind()
            call = Inference(perf_counter(), self.active)
            self.active.record(1)
            if self.tracer is not None:
                self._start_span(call, attach)
            return call
        except Exception:
            internal_error("inference start")
            return Inference(perf_counter(), None)

    def _start_span(self, call: Inference, attach: bool) -> None:
        call.span = span = self.tracer.start_span(  # type: ignore[union-attr]
            self.span_name, kind=SpanKind.INTERNAL, attributes=dict(self.base)
        )
        if attach:
            call.scope = otel_context.attach(trace.set_span_in_context(span))

    def end(
        self,
        call: Inference,
        outcome: BaseException | str | None,
        result: Any = None,
        first_token: float | None = None,
        chunks: int | None = None,
        first_chunk: int = 1,
    ) -> None:
        """Record a finished call. ``outcome``: None, the exception, or CLIENT_CLOSED/CANCELLED.
        Streams pass when their first chunk came, the tokens counted, and the first chunk's tokens."""
        try:
            now = perf_counter()
            if call.active is not None:
                call.active.record(-1)
            if call.scope is not None:
                otel_context.detach(call.scope)  # type: ignore[arg-type]
            if outcome is None and chunks is None and (self.usage is not None or type(result) not in NO_USAGE):
                if inspect.isawaitable(result):
                    warn_once(
                        f"awaitable:{self.span_name}",
                        "llmobs: %r returned an awaitable, so only its "
                        "creation is timed; decorate the async def itself",
                        self.span_name,
                    )
                else:
                    self._tokens_from(call, result)
            self._record(call, outcome, now - call.start, first_token, chunks, first_chunk)
        except Exception:
            internal_error("inference end")
        if call.span is not None:
            try:
                self._end_span(call, outcome, chunks)
            except Exception:
                internal_error("inference span end")

    def _record(
        self,
        call: Inference,
        outcome: BaseException | str | None,
        duration: float,
        first_token: float | None,
        chunks: int | None,
        first_chunk: int,
    ) -> None:
        if call.attributes is None:
            attrs, series = self.base, self.bound
        else:
            attrs = merge(self.base, call.attributes)
            series = self._by_attributes.get(attrs) or self._remember(attrs)
        if outcome is None:
            series.duration.record(duration)
        elif isinstance(outcome, BaseException):
            self._ending(attrs, names.ERROR_TYPE, error_type(outcome)).record(duration)
        else:
            self._ending(attrs, names.END_REASON, outcome).record(duration)
        output = call.output_tokens if call.output_tokens is not None else chunks
        if call.input_tokens is not None:
            series.input.record(call.input_tokens)
        if output is not None:
            series.output.record(output)
            if output > 0 and duration > 0:
                series.throughput.record(output / duration)
        if first_token is not None:
            ttft = first_token - call.start
            series.ttft.record(ttft)
            # The tokens after the first chunk came in (duration - TTFT).
            if outcome is None and output is not None and output > first_chunk:
                series.tpot.record((duration - ttft) / (output - first_chunk))

    def _remember(self, attrs: Attributes) -> _Series:
        found = _Series(attrs)
        if len(self._by_attributes) < _lifecycle.state.registry.max_series:
            self._by_attributes[attrs] = found
        return found

    def _ending(self, attrs: Attributes, key: str, value: str) -> Series:
        """The duration series of a call that failed or was cut short."""
        found = self._endings.get((attrs, key, value))
        if found is None:
            found = _lifecycle.state.registry.series(names.REQUEST_DURATION, merge(attrs, {key: value}))
            if len(self._endings) < _lifecycle.state.registry.max_series:
                self._endings[(attrs, key, value)] = found
        return found

    def _tokens_from(self, call: Inference, result: Any) -> None:
        """Token counts from the user's extractor, else from an OpenAI-style ``usage`` on the result."""
        if call.input_tokens is not None or call.output_tokens is not None:
            return
        try:
            if self.usage is not None:
                counts = self.usage(result)
            else:
                usage = result.get("usage") if isinstance(result, dict) else getattr(result, "usage", None)
                if usage is None:
                    return
                counts = (
                    _field(usage, "prompt_tokens", "input_tokens"),
                    _field(usage, "completion_tokens", "output_tokens"),
                )
            call.record_tokens(*counts)
        except Exception:
            internal_error("token extraction")

    def _end_span(self, call: Inference, outcome: BaseException | str | None, chunks: int | None) -> None:
        span = call.span
        output = call.output_tokens if call.output_tokens is not None else chunks
        if call.input_tokens is not None:
            span.set_attribute("gen_ai.usage.input_tokens", call.input_tokens)
        if output is not None:
            span.set_attribute("gen_ai.usage.output_tokens", output)
        if isinstance(outcome, BaseException):
            span.set_attribute(names.ERROR_TYPE, error_type(outcome))
            span.record_exception(outcome)
            span.set_status(Status(StatusCode.ERROR, type(outcome).__name__))
        elif outcome is not None:
            span.set_attribute(names.END_REASON, outcome)
        span.end()


def _field(usage: Any, *keys: str) -> int | None:
    for key in keys:
        value = usage.get(key) if isinstance(usage, dict) else getattr(usage, key, None)
        if value is not None:
            return value  # type: ignore[no-any-return]
    return None
