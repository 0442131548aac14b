"""The report's charts, drawn with matplotlib's Agg canvas (no pyplot, no display) into PNG data URIs;
the alert thresholds (``llmobs._assets.thresholds``) are drawn as dashed lines."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Mapping
from datetime import datetime, timezone

from .._assets.thresholds import Thresholds
from .._summary import Buckets, Calls
from .data import Report, Timeline

Chart = tuple[str, str]
"""(title, ``data:image/png;base64,...``)."""


def charts(report: Report, thresholds: Thresholds) -> list[Chart]:
    """Every chart the report's data allows, models first."""
    out: list[Chart] = []
    for name, model in sorted(report.models.items()):
        if not model.calls:
            continue
        bins = sorted(model.bins.items())
        latency = {f"p{round(q * 100)}": _quantiles(report, bins, lambda b: b.latency, q) for q in (0.5, 0.95, 0.99)}
        out.append(_chart(report, f"{name}: latency", latency, "s", thresholds.latency_seconds))
        errors = [(report.time(i), b.errors / b.calls) for i, b in bins if b.calls]
        out.append(_chart(report, f"{name}: error rate", {"errors": errors}, "ratio", thresholds.error_ratio))
        stream = {
            "ttft p50": _quantiles(report, bins, lambda b: b.ttft, 0.5),
            "ttft p95": _quantiles(report, bins, lambda b: b.ttft, 0.95),
            "tpot p50": _quantiles(report, bins, lambda b: b.tpot, 0.5),
        }
        if any(stream.values()):
            out.append(
                _chart(report, f"{name}: time to first token, per output token", stream, "s", thresholds.ttft_seconds)
            )
        tokens = [(report.time(i), b.output_tokens / report.step) for i, b in bins]
        out.append(_chart(report, f"{name}: output tokens/s", {"tokens/s": tokens}, "tokens/s"))
    out += _evaluation_charts(report)
    out += _gpu_charts(report, thresholds)
    if report.host:
        out.append(_chart(report, "host", dict(report.host), "ratio", thresholds.host_memory_ratio))
    return out


def _quantiles(report: Report, bins: list[tuple[int, Calls]], part: Callable[[Calls], Buckets], q: float) -> Timeline:
    points = ((report.time(i), part(b).quantile(q)) for i, b in bins)
    return [(t, v) for t, v in points if v is not None]


def _evaluation_charts(report: Report) -> list[Chart]:
    out = []
    for (name, model), e in sorted(report.evaluations.items()):
        lines = {"mean score": [(report.time(i), b.total / b.count) for i, b in sorted(e.scores.items()) if b.count]}
        if e.accuracy:
            lines["accuracy"] = e.accuracy
        if any(lines.values()):
            out.append(_chart(report, f"evaluation {name}" + (f" ({model})" if model else ""), lines, "score"))
    return out


def _gpu_charts(report: Report, thresholds: Thresholds) -> list[Chart]:
    out = []
    for name, readings in sorted(report.gpus.items()):
        if readings.get("utilization"):
            out.append(_chart(report, f"{name}: utilization", {"utilization": readings["utilization"]}, "ratio"))
        used, limit = readings.get("memory"), readings.get("memory limit")
        if used and limit:
            ratio = [(t, u / limit[-1][1]) for t, u in used if limit[-1][1]]
            out.append(_chart(report, f"{name}: memory", {"used": ratio}, "ratio", thresholds.gpu_memory_ratio))
        if readings.get("temperature"):
            out.append(
                _chart(
                    report,
                    f"{name}: temperature",
                    {"°C": readings["temperature"]},
                    "°C",
                    thresholds.gpu_temperature_celsius,
                )
            )
        if readings.get("power"):
            out.append(_chart(report, f"{name}: power", {"W": readings["power"]}, "W"))
    return out


def _chart(
    report: Report, title: str, lines: Mapping[str, Timeline], unit: str, threshold: float | None = None
) -> Chart:
    """One chart over the report's window: a line per timeline (with markers: a short window has few
    points), the threshold dashed; seconds on a log scale, so that a 10 s threshold and 3 ms calls both show."""
    from matplotlib.dates import UTC, AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 2.8), dpi=90)
    figure.subplots_adjust(left=0.09, right=0.98, top=0.9, bottom=0.16)  # fixed: a layout engine costs 0.3 s a chart
    axes = figure.add_subplot()
    for label, timeline in lines.items():
        points = _binned(report, timeline)
        if points:
            axes.plot([_date(t) for t, _ in points], [v for _, v in points], label=label, linewidth=1.4, marker=".")
    if threshold is not None:
        axes.axhline(threshold, color="crimson", linestyle="--", linewidth=1, label=f"alert threshold {threshold:g}")
    if unit == "s":
        axes.set_yscale("log")
    axes.set_xlim(_date(report.start), _date(report.end))
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=UTC))  # type: ignore[no-untyped-call]
    axes.set_title(title, loc="left", fontsize=10)
    axes.set_ylabel(unit)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="upper left")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return title, "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _binned(report: Report, timeline: Timeline) -> Timeline:
    """A reading per interval (a gauge over 7 days: 60,000 points) as its mean per report bin."""
    if len(timeline) <= report.bins:
        return timeline
    sums: dict[int, list[float]] = {}
    for when, value in timeline:
        total = sums.setdefault(report.bin(when), [0.0, 0.0])
        total[0] += value
        total[1] += 1
    return [(report.time(i), total / count) for i, (total, count) in sorted(sums.items())]


def _date(seconds: float) -> float:
    """``seconds`` (unix time) as matplotlib's date number, in UTC as the text summary."""
    from matplotlib.dates import date2num

    return float(date2num(datetime.fromtimestamp(seconds, tz=timezone.utc)))  # type: ignore[no-untyped-call]
