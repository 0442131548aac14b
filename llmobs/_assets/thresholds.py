"""The alert thresholds, in one place: their defaults, and ``KEY=VALUE`` settings (from ``--set`` or a
values file) applied with validation. The alert rules, the Zabbix triggers and ``llmobs report``'s
plots all read them from here."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .._config import ConfigError
from ..semconv import DURATION_BUCKETS, TTFT_BUCKETS

_DURATION = re.compile(r"(?:\d+(?:ms|[smhdwy]))+")


def fraction(text: str) -> float:
    """A number strictly between 0 and 1."""
    value = number(text)
    if not 0 < value < 1:
        raise ValueError("must be between 0 and 1 (exclusive), e.g. 0.05")
    return value


def number(text: str) -> float:
    """A finite number above 0."""
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a number above 0")
    return value


def duration(text: str) -> str:
    """A Prometheus duration: ``30s``, ``5m``, ``1h30m``; ``0s`` fires at once."""
    if not _DURATION.fullmatch(text):
        raise ValueError("must be a Prometheus duration such as 30s, 5m or 1h")
    return text


def boundary(buckets: tuple[float, ...]) -> Callable[[str], float]:
    """A histogram bucket boundary: an SLO on a histogram can only count calls under a boundary."""

    def parse(text: str) -> float:
        value = number(text)
        if value not in buckets:
            raise ValueError(f"must be one of the histogram's bucket boundaries: {', '.join(map(str, buckets))}")
        return value

    return parse


def _meta(parse: Callable[[str], float | str], doc: str) -> dict[str, object]:
    return {"parse": parse, "doc": doc}


@dataclass(frozen=True)
class Thresholds:
    """What the alerts compare against; ``llmobs assets rules --set KEY=VALUE`` changes them."""

    error_ratio: float = field(
        default=0.05, metadata=_meta(fraction, "fraction of inference calls failing over 5 minutes")
    )
    latency_seconds: float = field(
        default=10.24,
        metadata=_meta(boundary(DURATION_BUCKETS), "latency SLO: calls slower than this are bad"),
    )
    latency_target: float = field(
        default=0.99, metadata=_meta(fraction, "latency SLO: fraction of calls faster than latency_seconds")
    )
    ttft_seconds: float = field(
        default=1.0, metadata=_meta(boundary(TTFT_BUCKETS), "TTFT SLO: first tokens later than this are bad")
    )
    ttft_target: float = field(
        default=0.99, metadata=_meta(fraction, "TTFT SLO: fraction of streams with an earlier first token")
    )
    gpu_temperature_celsius: float = field(default=85.0, metadata=_meta(number, "GPU core temperature too high"))
    gpu_memory_ratio: float = field(default=0.95, metadata=_meta(fraction, "GPU memory nearly full"))
    host_memory_ratio: float = field(default=0.90, metadata=_meta(fraction, "host (or container) memory nearly full"))
    batch_stall_minutes: float = field(
        default=15.0, metadata=_meta(number, "a running batch job advanced no item for this long")
    )
    auth_failures_per_second: float = field(
        default=1.0, metadata=_meta(number, "authentication and authorization failures per second, per route")
    )
    inflight_per_pod: float = field(
        default=4.0, metadata=_meta(number, "autoscaler target: in-flight inference calls per pod")
    )
    absent_for: str = field(default="10m", metadata=_meta(duration, "no traffic or no telemetry for this long"))
    alert_for: str = field(
        default="5m", metadata=_meta(duration, "how long a condition holds before a threshold alert fires")
    )


DEFAULTS = Thresholds()

PANELS = {
    "Error ratio by error.type": "error_ratio",
    "Request duration": "latency_seconds",
    "Time to first token": "ttft_seconds",
    "GPU temperature": "gpu_temperature_celsius",
    "CPU and memory utilization": "host_memory_ratio",
}
"""The dashboard panels (by title) that draw a threshold as a dashed red line."""


def describe() -> list[tuple[str, str, str]]:
    """(key, default, meaning) of every threshold, for ``--help`` and docs."""
    return [(f.name, str(f.default), f.metadata["doc"]) for f in dataclasses.fields(Thresholds)]


def apply(settings: Iterable[str], base: Thresholds = DEFAULTS) -> Thresholds:
    """``base`` with each ``KEY=VALUE`` applied; ConfigError naming the setting and the fix otherwise."""
    known = {f.name: f for f in dataclasses.fields(Thresholds)}
    changes: dict[str, float | str] = {}
    for setting in settings:
        key, sep, text = (part.strip() for part in setting.partition("="))
        if not sep or key not in known:
            raise ConfigError(f"unknown threshold {setting!r}: use KEY=VALUE with KEY one of {', '.join(known)}")
        try:
            changes[key] = known[key].metadata["parse"](text)
        except ValueError as exc:
            raise ConfigError(f"threshold {key}={text!r}: {exc}") from None
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def read_values(path: Path) -> list[str]:
    """The ``KEY=VALUE`` lines of a values file; blank lines and ``#`` comments are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the values file {path}: {exc}") from None
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]
