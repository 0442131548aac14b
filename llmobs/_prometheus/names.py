"""OpenTelemetry names as Prometheus users query them, by the OpenTelemetry "Prometheus and
OpenMetrics compatibility" specification: the one translation, used by the exposition, and by
anything that writes PromQL for llmobs's metrics."""

from __future__ import annotations

import functools
import re

from ..semconv import Instrument, Kind

# UCUM abbreviations to Prometheus's full words, as the OpenTelemetry Collector's translator has them.
UNITS = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds", "us": "microseconds",
    "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes",
    "TiBy": "tibibytes", "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes",
    "m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams", "Cel": "celsius",
    "Hz": "hertz", "%": "percent",
}  # fmt: skip
PER_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}

_INVALID_NAME = re.compile(r"[^a-zA-Z0-9_:]+")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]+")
_ANNOTATION = re.compile(r"\{[^}]*\}")


def unit(instrument: Instrument) -> str:
    """The Prometheus unit: ``s`` -> ``seconds``, ``By/s`` -> ``bytes_per_second``, ``{token}/s`` ->
    ``per_second``, ``1`` -> ``ratio`` on gauges only; ``{request}``-style annotations are dropped."""
    text = _ANNOTATION.sub("", instrument.unit).strip()
    if text == "1":
        return "ratio" if instrument.kind is Kind.GAUGE else ""
    main, _, per = text.partition("/")
    words = [UNITS.get(main, main)] if main else []
    if per:
        words += ["per", PER_UNITS.get(per, per)]
    return _squeeze(_INVALID_NAME.sub("_", "_".join(words)))


@functools.lru_cache(maxsize=256)
def family_name(instrument: Instrument) -> str:
    """The metric family's name with its unit suffix, before any type suffix (``_total``, ``_bucket``)."""
    name = _squeeze(_INVALID_NAME.sub("_", instrument.name)).strip("_")  # as the Collector's translator does
    if name[:1].isdigit():
        name = f"_{name}"
    suffix = unit(instrument)
    if suffix and not name.endswith(f"_{suffix}") and f"_{suffix}_" not in f"{name}_":
        name = f"{name}_{suffix}"
    if instrument.kind is Kind.COUNTER:
        name = name.removesuffix("_total")  # the exposition appends it to counters
    return name


def metric_name(instrument: Instrument) -> str:
    """What a PromQL query names: ``gen_ai_server_request_duration_seconds`` (add ``_bucket``, ``_sum``,
    ``_count`` for histograms), ``hw_energy_joules_total``, ``hw_gpu_utilization_ratio``."""
    name = family_name(instrument)
    return f"{name}_total" if instrument.kind is Kind.COUNTER else name


@functools.lru_cache(maxsize=4096)
def label(key: str) -> str:
    """An attribute key as a label name: ``gen_ai.request.model`` -> ``gen_ai_request_model``."""
    name = _squeeze(_INVALID_LABEL.sub("_", key))
    return f"key_{name}" if name[:1].isdigit() else name


def labels(attributes: tuple[tuple[str, object], ...]) -> dict[str, str]:
    """Attributes as labels; keys that collide once sanitized are joined with ``;`` in key order."""
    out: dict[str, str] = {}
    for key, value in sorted(attributes):
        name, text = label(key), label_value(value)
        out[name] = f"{out[name]};{text}" if name in out else text
    return out


def label_value(value: object) -> str:
    """Attribute values as the OpenTelemetry attribute specification writes them: ``true``, ``3``, ``0.5``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)


def _squeeze(name: str) -> str:
    return re.sub(r"__+", "_", name)
