"""Per-call bookkeeping shared by every call shape: bind the series, start the span, and record a
finished call (duration by outcome, tokens, throughput, TTFT and TPOT).

A ``Site`` is one decorated function. It binds its series once per runtime generation, so that a
call costs a few attribute loads plus the aggregation itself. The wrappers own what must be undone
however a call ends (the in-flight count, the current call and span); a ``Site`` records.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from time import perf_counter
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind

from . import _lifecycle, _logs
from . import semconv as names
from ._aggregation import OVERFLOW_ATTRIBUTES, Bundle, HistogramSeries, Registry, Series, capped, steps
from ._attributes import Attributes, freeze, merge
from ._failsafe import guarded, warn_once
from ._handle import Call, Extra, Inference
from ._spans import fail
from .semconv import Instrument, error_type

UsageExtractor = Callable[[Any], "tuple[int | None, int | None]"]

# Results of these exact types never carry an OpenAI-style ``usage``: skip the attribute lookup.
NO_USAGE = frozenset({str, bytes, int, float, bool, list, tuple, type(None)})


def _span_variable() -> ContextVar[Context] | None:
    """The context variable behind OpenTelemetry's current context (its default runtime), read from
    the token ``attach`` returns: setting it is one C call, which no signal handler can split from
    the ``try`` that restores it. None under another runtime (then attach/detach are used)."""
    token = otel_context.attach(otel_context.get_current())
    otel_context.detach(token)
    return token.var if isinstance(token, Token) else None


class _SpanContext:
    """Get and set OpenTelemetry's current context by value (no tokens to lose)."""

    def __init__(self, variable: ContextVar[Context] | None) -> None:
        self.get: Callable[[], Context] = otel_context.get_current if variable is None else variable.get
        self.set: Callable[[Context], object] = otel_context.attach if variable is None else variable.set


SPAN_CONTEXT = _SpanContext(_span_variable())


class CallSeries(Bundle):
    """The series one attribute set of a call records into, each created on its first record."""

    __slots__ = ("duration", "input", "output", "throughput", "ttft", "tpot", "queue", "execution", "rtf")
    duration: Series
    input: Series
    output: Series
    throughput: Series
    ttft: Series
    tpot: Series
    queue: Series
    execution: Series
    rtf: Series
    SERIES = {
        "duration": (names.REQUEST_DURATION, {}),
        "input": (names.TOKEN_USAGE, {names.TOKEN_TYPE: "input"}),
        "output": (names.TOKEN_USAGE, {names.TOKEN_TYPE: "output"}),
        "throughput": (names.OUTPUT_THROUGHPUT, {}),
        "ttft": (names.TIME_TO_FIRST_TOKEN, {}),
        "tpot": (names.TIME_PER_OUTPUT_TOKEN, {}),
        "queue": (names.QUEUE_DURATION, {}),
        "execution": (names.EXECUTION_DURATION, {}),
        "rtf": (names.REAL_TIME_FACTOR, {}),
    }


class Site:
    """One decorated function: its attributes, the series it records into, and its span name."""

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
        self._cap_warning = f"cap:site:{self.span_name}"
        self.usage = usage
        self.chunk_tokens = chunk_tokens
        self.generation = -1
        self.tracer: trace.Tracer | None = None
        self.steps = steps(_lifecycle.DISABLED.series(names.ACTIVE_REQUESTS, self.base))

    def _bind(self, registry: _lifecycle.Recording | None = None) -> None:
        state = _lifecycle.state
        generation, registry = state.generation, registry or state.registry
        self._registry = registry
        self.bound = CallSeries(registry, self.base)
        self.duration: Series = _FirstDuration(self)
        self._overflow = CallSeries(registry, None)
        self._full = False
        self._by_attributes: dict[Attributes, CallSeries] = {self.base: self.bound}
        self._keyed_series: dict[tuple[Instrument, Attributes, str, str], Series] = {}
        self.tracer = state.tracer
        self.steps = steps(registry.series(names.ACTIVE_REQUESTS, self.base))
        self.generation = generation

    def bind_private(self, registry: Registry) -> None:
        """Record into ``registry``, without spans, until the runtime's next generation: llmobs timing
        its own wrapper (``CallTiming``) on a site the application never sees."""
        self._bind(registry)
        self.tracer = None

    @guarded(where="inference start")
    def begin(self) -> Call:
        """A new call: binds on a new generation, starts its span (made current by the wrapper)."""
        if self.generation != _lifecycle.state.generation:
            self._bind()
        call = Call(perf_counter())
        if self.tracer is not None:
            call.span = span = self.tracer.start_span(
                self.span_name, kind=SpanKind.INTERNAL, attributes=dict(self.base)
            )
            call.context = trace.set_span_in_context(span)
        return call

    @guarded(where="inference end")
    def end(
        self,
        call: Call,
        outcome: BaseException | str | None,
        result: Any = None,
        first_token: float | None = None,
        chunks: int | None = None,
        first_chunk: int = 1,
    ) -> None:
        """Record a finished call. ``outcome``: None, the exception, or CLIENT_CLOSED/CANCELLED.
        Streams pass when their first chunk came, the tokens counted, and the first chunk's tokens."""
        duration = perf_counter() - call.start
        unread = outcome is None and chunks is None and (self.usage is not None or type(result) not in NO_USAGE)
        if unread and not self._returned_a_stream(result):
            self._read_result(call, result)
        try:
            self._record(call, outcome, duration, first_token, chunks, first_chunk)
        finally:
            if call.span is not None:
                self._end_span(call, outcome, chunks)

    def _returned_a_stream(self, result: Any) -> bool:
        """Warn once when the function returned what it should have been (its real work is not timed)."""
        if inspect.isawaitable(result):
            what = "an awaitable"
        elif inspect.isgenerator(result) or inspect.isasyncgen(result) or hasattr(result, "body_iterator"):
            what = "a generator or streaming response"
        else:
            return False
        warn_once(
            f"returned:{what}:{self.span_name}",
            "llmobs: %r returned %s, so only its creation is timed; decorate the async def or the generator "
            "that produces the stream itself",
            self.span_name,
            what,
        )
        return True

    def _record(
        self,
        call: Call,
        outcome: BaseException | str | None,
        duration: float,
        first_token: float | None,
        chunks: int | None,
        first_chunk: int,
    ) -> None:
        attrs, series = (self.base, self.bound) if call.attributes is None else self._series_of(call.attributes)
        if outcome is None:
            recorded = series.duration
            recorded.record(duration)
        elif isinstance(outcome, BaseException):
            recorded = self._keyed(names.REQUEST_DURATION, attrs, names.ERROR_TYPE, error_type(outcome))
            recorded.record(duration)
            _log_failure(call, attrs, outcome, duration)
        else:
            recorded = self._keyed(names.REQUEST_DURATION, attrs, names.END_REASON, outcome)
            recorded.record(duration)
        extra = call.extra
        if extra is not None:
            first_token = first_token if first_token is not None else extra.first_token
            self._record_extra(call.start + duration, extra, attrs, series, duration)
        if call.span is not None and isinstance(recorded, HistogramSeries):
            _exemplar(recorded, duration, call.span)
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
            if outcome is None and output is not None and output > first_chunk:
                series.tpot.record((duration - ttft) / (output - first_chunk))

    def _record_extra(self, end: float, extra: Extra, attrs: Attributes, series: CallSeries, duration: float) -> None:
        """Queue and execution time, finish reasons and units: what only some calls report."""
        if extra.started is not None:
            if extra.queued is not None:
                series.queue.record(extra.queued)
            series.execution.record(end - extra.started)
        for reason in dict.fromkeys(extra.finish_reasons or ()):
            self._keyed(names.FINISHED, attrs, names.FINISH_REASONS, reason).record(1)
        if extra.units is not None:
            self._keyed(names.UNITS, attrs, names.UNIT, extra.unit).record(extra.units)
            if extra.unit == "s" and extra.units > 0:
                series.rtf.record(duration / extra.units)

    def _series_of(self, extra: Mapping[str, Any]) -> tuple[Attributes, CallSeries]:
        attrs = merge(self.base, extra)
        found = self._by_attributes.get(attrs)
        if found is None:  # a new set, or one past the cap: then as cheap as a known one
            found = (
                self._overflow
                if self._full
                else capped(self._by_attributes, attrs, self._new_bundle, self._limit(), self._overflowed)
            )
        return attrs, found

    def _new_bundle(self, attrs: Attributes) -> CallSeries:
        return CallSeries(self._registry, attrs)

    def _keyed(self, instrument: Instrument, attrs: Attributes, key: str, value: str) -> Series:
        """The series of ``instrument`` for ``attrs`` and one more attribute: the duration of a call that
        failed or was cut short, a finish reason's count, a unit's amount."""
        return capped(
            self._keyed_series,
            (instrument, attrs, key, value),
            lambda k: self._registry.series(k[0], merge(k[1], {k[2]: k[3]})),
            self._limit(),
            lambda: self._overflow_of(instrument),
        )

    def _overflow_of(self, instrument: Instrument) -> Series:
        self._overflowed()
        return self._registry.series(instrument, OVERFLOW_ATTRIBUTES)

    def _limit(self) -> int:
        return max(1, self._registry.max_series)

    def _overflowed(self) -> CallSeries:
        """Past ``max_series`` attribute sets of its own, a site records into the overflow series."""
        self._full = len(self._by_attributes) >= self._limit()
        if self._registry.max_series:
            warn_once(
                self._cap_warning,
                "llmobs: %r reached %d attribute sets; further ones are counted in one series marked "
                "otel.metric.overflow=true (raise LLMOBS_MAX_SERIES or record fewer distinct values)",
                self.span_name,
                self._registry.max_series,
            )
        return self._overflow

    @guarded(where="token extraction")
    def _read_result(self, call: Call, result: Any) -> None:
        """Token counts from the user's extractor, else from an OpenAI-style ``usage`` on the result, and
        then finish reasons from its ``choices[].finish_reason``; what the function reported itself wins."""
        handle = Inference(call)
        if self.usage is None:
            usage = result.get("usage") if isinstance(result, dict) else getattr(result, "usage", None)
            if usage is None:
                return
            if call.input_tokens is None and call.output_tokens is None:
                handle.record_tokens(
                    _usage_count(usage, "prompt_tokens", "input_tokens"),
                    _usage_count(usage, "completion_tokens", "output_tokens"),
                )
        elif call.input_tokens is None and call.output_tokens is None:
            handle.record_tokens(*self.usage(result))
        if call.extra is None or call.extra.finish_reasons is None:
            reasons = _finish_reasons(result)
            if reasons:
                handle.set_finish_reasons(*reasons)

    def _end_span(self, call: Call, outcome: BaseException | str | None, chunks: int | None) -> None:
        span = call.span
        assert span is not None
        output = call.output_tokens if call.output_tokens is not None else chunks
        if call.input_tokens is not None:
            span.set_attribute(names.USAGE_INPUT_TOKENS, call.input_tokens)
        if output is not None:
            span.set_attribute(names.USAGE_OUTPUT_TOKENS, output)
        if isinstance(outcome, BaseException):
            fail(span, outcome)
        elif outcome is not None:
            span.set_attribute(names.END_REASON, outcome)
        span.end()


class _FirstDuration:
    """A site's duration series until its first successful call puts the real one in its place: the
    inlined path then loads a plain attribute (a bundle's slots are read through its ``__getattr__``
    hook, ~18 ns slower), and a site whose calls all name attributes creates no base series."""

    __slots__ = ("_site",)

    def __init__(self, site: Site) -> None:
        self._site = site

    def record(self, value: float) -> None:
        series = self._site.duration = self._site.bound.duration
        series.record(value)


def _log_failure(call: Call, attrs: Attributes, error: BaseException, duration: float) -> None:
    """The ERROR record of a failed call, while the logs signal is on (only failures pay for it)."""
    if _logs.emitter.logger is not None:
        context = _logs.span_context(call.span)
        _logs.failed(names.INFERENCE_FAILURE_EVENT, dict(attrs), error_type(error), error, duration, context)


def _exemplar(series: HistogramSeries, duration: float, span: Span) -> None:
    """The call's duration as its bucket's exemplar, linked to its span (sampled spans only)."""
    context = span.get_span_context()
    if context.trace_flags.sampled:
        series.exemplar(duration, context.trace_id, context.span_id)


def _finish_reasons(result: Any) -> list[Any]:
    """The ``finish_reason`` of each of an OpenAI-style result's ``choices`` that has one."""
    choices = result.get("choices") if isinstance(result, dict) else getattr(result, "choices", None)
    if not isinstance(choices, (list, tuple)):
        return []
    reasons = (c.get("finish_reason") if isinstance(c, dict) else getattr(c, "finish_reason", None) for c in choices)
    return [reason for reason in reasons if reason is not None]


def _usage_count(usage: Any, *keys: str) -> Any:
    """The first of ``keys`` present in an OpenAI-style ``usage`` (a dict or an object)."""
    for key in keys:
        value = usage.get(key) if isinstance(usage, dict) else getattr(usage, key, None)
        if value is not None:
            return value
    return None
