"""Histogram boundaries set by the user: ``init(buckets={name: [...] or "embedding"})`` or
LLMOBS_BUCKETS, checked at ``init`` (known histogram, finite, positive, strictly increasing, at most
MAX_BOUNDS). Metrics not named keep the boundaries semconv gives them. Errors are ValueErrors with
the fix, which ``_config`` raises as ConfigError."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

from . import _env, semconv
from .semconv import Instrument, Kind

MAX_BOUNDS = 64
"""Boundaries per histogram: each one is a counter in every series and a line in every scrape."""

Buckets = Mapping[str, tuple[float, ...]]


def histograms() -> dict[str, Instrument]:
    """Every histogram llmobs emits, by name (read from semconv, the one place that defines them)."""
    found = (value for value in vars(semconv).values() if isinstance(value, Instrument))
    return {instrument.name: instrument for instrument in found if instrument.kind is Kind.HISTOGRAM}


def load(option: Mapping[str, Sequence[float] | str] | None, env: Mapping[str, str]) -> Buckets:
    """``init(buckets=...)``, else LLMOBS_BUCKETS (``name=b1,b2,...;name=embedding``); always checked."""
    from_env = _parse(env.get(_env.LLMOBS_BUCKETS, ""))
    if option is None:
        return from_env
    if not isinstance(option, Mapping):
        raise ValueError('init(buckets=...) must be a dict such as {"gen_ai.server.request.duration": "embedding"}')
    return {name: _bounds(name, value, "init(buckets=...)") for name, value in option.items()}


def _parse(raw: str) -> Buckets:
    chosen: dict[str, tuple[float, ...]] = {}
    for entry in filter(None, (part.strip() for part in raw.split(";"))):
        name, equals, value = entry.partition("=")
        if not equals:
            raise ValueError(f"{_env.LLMOBS_BUCKETS}: {entry!r} must be NAME=b1,b2,... or NAME=embedding")
        if value.strip() in semconv.BUCKET_PRESETS:
            bounds: Sequence[float] | str = value.strip()
        else:
            try:
                bounds = [float(text) for text in value.split(",")]
            except ValueError:
                message = f"{_env.LLMOBS_BUCKETS}: {name.strip()}={value!r} must be numbers separated by commas"
                raise ValueError(message) from None
        chosen[name.strip()] = _bounds(name.strip(), bounds, _env.LLMOBS_BUCKETS)
    return chosen


def _bounds(name: object, value: Sequence[float] | str, source: str) -> tuple[float, ...]:
    known = histograms()
    if name not in known:
        raise ValueError(f"{source}: {name!r} is not a histogram llmobs records; use one of {', '.join(sorted(known))}")
    if isinstance(value, str):
        preset = semconv.BUCKET_PRESETS.get(value)
        if preset is None:
            raise ValueError(f"{source}: {name} = {value!r}: name a preset ({', '.join(semconv.BUCKET_PRESETS)})")
        return preset
    if not isinstance(value, Sequence) or not all(_number(bound) for bound in value):
        raise ValueError(f"{source}: {name} must be a list of numbers, got {value!r}")
    bounds = tuple(float(bound) for bound in value)
    if not 1 <= len(bounds) <= MAX_BOUNDS:
        raise ValueError(f"{source}: {name} needs 1 to {MAX_BOUNDS} boundaries, got {len(bounds)}")
    if not all(math.isfinite(bound) and bound > 0 for bound in bounds):
        raise ValueError(f"{source}: {name} boundaries must be finite and greater than 0, got {list(bounds)}")
    if any(low >= high for low, high in itertools.pairwise(bounds)):
        raise ValueError(f"{source}: {name} boundaries must increase, each once, got {list(bounds)}: sort them")
    return bounds


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
