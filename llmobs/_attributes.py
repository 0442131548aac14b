"""Checks for values that arrive at run time: attribute values (primitives only, strings capped) and
counts (tokens, items), each with one rule for every caller."""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral, Real

from ._failsafe import warn_once

AttributeValue = str | bool | int | float
Attributes = tuple[tuple[str, AttributeValue], ...]
"""A sorted tuple of pairs: hashable, so it keys a series directly."""

MAX_VALUE_LENGTH = 256
MAX_KEY_LENGTH = 128
MAX_COUNT = 2**53  # beyond this a float sum loses whole units: such a count is a bug, not a call


def clean_value(key: str, value: object) -> AttributeValue | None:
    """Return ``value`` fit for an attribute, or None (with one warning) when it cannot be one.

    A value keys a series, so it must compare equal to itself: NaN is dropped, and subclasses of
    str, int and float (enums, a str with its own ``__eq__``) become the plain type. A key or text
    that OTLP cannot carry (over MAX_KEY_LENGTH characters, lone surrogates) drops the pair.
    """
    if len(key) > MAX_KEY_LENGTH or not _encodable(key):
        warn_once("key:bad", "llmobs: an attribute key %r... is too long or not valid Unicode; dropped", key[:32])
        return None
    if isinstance(value, str):
        if not _encodable(value):
            warn_once(f"text:{key}", "llmobs: attribute %r got text that is not valid Unicode; dropped", key)
            return None
        if len(value) > MAX_VALUE_LENGTH:
            warn_once(
                f"long:{key}", "llmobs: values of attribute %r are capped at %d characters", key, MAX_VALUE_LENGTH
            )
            value = value[:MAX_VALUE_LENGTH]
        return value if type(value) is str else str.__str__(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if type(value) is int else int.__int__(value)
    if isinstance(value, float):
        if math.isnan(value):
            warn_once(f"nan:{key}", "llmobs: attribute %r got NaN, which matches no series; dropped", key)
            return None
        return value if type(value) is float else float.__float__(value)
    warn_once(
        f"type:{key}",
        "llmobs: attribute %r got a %s; only str, bool, int and float are kept",
        key,
        type(value).__name__,
    )
    return None


def _encodable(text: str) -> bool:
    """True when ``text`` encodes as UTF-8, as OTLP sends it (a lone surrogate does not)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def freeze(attributes: Mapping[str, object]) -> Attributes:
    """Clean every value and return the hashable, sorted form; bad pairs are dropped."""
    pairs = []
    for key, value in attributes.items():
        if not isinstance(key, str):
            warn_once("key", "llmobs: attribute keys must be strings; %r dropped", key)
            continue
        cleaned = clean_value(key, value)
        if cleaned is not None:
            pairs.append((key, cleaned))
    return tuple(sorted(pairs))


def merge(base: Attributes, extra: Mapping[str, AttributeValue]) -> Attributes:
    """``base`` with ``extra``'s pairs added or replaced; ``extra`` must already be clean."""
    merged = dict(base)
    merged.update(extra)
    return tuple(sorted(merged.items()))


def as_count(value: object, what: str) -> int | None:
    """``value`` as a count of ``what`` (tokens, items): an integer, or a float or numpy-style integer
    of integral value, from 0 to below 2**53. Anything else is None, with one warning per ``what``."""
    if type(value) is int and 0 <= value < MAX_COUNT:  # the common case, before the slower ABC check
        return value
    if isinstance(value, Integral) and not isinstance(value, bool):
        number = int(value)
        if 0 <= number < MAX_COUNT:
            return number
    elif isinstance(value, float) and value.is_integer() and 0 <= value < MAX_COUNT:
        return int(value)
    problem = _count_problem(value)
    warn_once(
        f"count:{what}:{problem}",
        "llmobs: %s count %r dropped (%s); counts must be integers >= 0",
        what,
        value,
        problem,
    )
    return None


def _count_problem(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (Integral, float)):
        return "not a count"
    number = float(value)
    if math.isnan(number):
        return "not a number"
    if number < 0:
        return "negative"
    return "too large" if number >= MAX_COUNT else "not whole"


def as_quantity(value: object, what: str) -> float | None:
    """``value`` as an amount of ``what`` (seconds of queue wait or audio, a fraction): a finite real
    number >= 0. Anything else is None, with one warning per ``what`` and problem."""
    problem = "not a number"
    if isinstance(value, Real) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if number >= 0 and math.isfinite(number):
            return number
        problem = "negative" if number < 0 else "not finite"
    warn_once(
        f"quantity:{what}:{problem}",
        "llmobs: %s %r dropped (%s); it must be a finite number >= 0",
        what,
        value,
        problem,
    )
    return None
