"""What a source hands over after one sample: values (gauges, or running totals for counters) and
the errors met, each field having failed alone."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .._attributes import Attributes, AttributeValue
from .._failsafe import logger, warn_once
from ..semconv import ERROR_TYPE, Instrument

Value = tuple[Instrument, Attributes, float]
"""A gauge's value, or for a counter the running total since some fixed point (driver load, boot)."""


@dataclass
class Reading:
    """One sample of one source."""

    values: list[Value] = field(default_factory=list)
    errors: list[Attributes] = field(default_factory=list)
    failed: bool = False
    """The source itself raised: whatever it would have read is missing."""

    @property
    def complete(self) -> bool:
        """Nothing failed, so a key missing from ``values`` is gone (an interface removed), not unread."""
        return not (self.failed or self.errors)

    def add(self, read: Callable[[], Iterable[Value]], errors: Errors, where: Attributes = ()) -> str | None:
        """Keep what ``read`` returns. When it raises one of ``errors``, skip it alone and return the
        error type: counted with the ``where`` attributes, unless it says the field is not there (None)."""
        try:
            self.values.extend(read())
        except errors.expected as exc:
            error = errors.classify(exc)
            if error is not None:
                self.errors.append(extend(where, (ERROR_TYPE, error)))
                warn_once(
                    f"collector:{error}",
                    "llmobs: a resource reading failed (%s); it is skipped, "
                    "and counted in llmobs.collector.errors, until it answers again",
                    error,
                )
                logger.debug("llmobs: resource reading failed", exc_info=True)
            return error
        return None


@dataclass(frozen=True)
class Errors:
    """What a source's readings raise when the device or the system refuses, and the error type each
    counts as (None: the field is not there, which is no error). Anything else is a bug, and fails
    the whole sample at the sampler's boundary."""

    expected: tuple[type[Exception], ...]
    classify: Callable[[Exception], str | None]


@functools.lru_cache(maxsize=4096)
def extend(base: Attributes, *pairs: tuple[str, AttributeValue]) -> Attributes:
    """``base`` with ``pairs`` added, sorted; cached, because readings repeat the same sets every sample."""
    return tuple(sorted(base + pairs))


def snake(name: str) -> str:
    """``GpuIsLost`` -> ``gpu_is_lost``: error types from exception class names."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
