"""Checks for attribute values that arrive at run time: primitives only, strings capped."""

from __future__ import annotations

from collections.abc import Mapping

from ._failsafe import warn_once

AttributeValue = str | bool | int | float
Attributes = tuple[tuple[str, AttributeValue], ...]
"""A sorted tuple of pairs: hashable, so it keys a series directly."""

MAX_VALUE_LENGTH = 256


def clean_value(key: str, value: object) -> AttributeValue | None:
    """Return ``value`` fit for an attribute, or None (with one warning) when it cannot be one."""
    if isinstance(value, str):
        if len(value) > MAX_VALUE_LENGTH:
            warn_once(
                f"long:{key}", "llmobs: values of attribute %r are capped at %d characters", key, MAX_VALUE_LENGTH
            )
            return value[:MAX_VALUE_LENGTH]
        return value
    if isinstance(value, (bool, int, float)):
        return value
    warn_once(
        f"type:{key}",
        "llmobs: attribute %r got a %s; only str, bool, int and float are kept",
        key,
        type(value).__name__,
    )
    return None


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
