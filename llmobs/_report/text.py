"""The report as text, for stdout and the top of the HTML: one table per kind of thing it holds."""

from __future__ import annotations

import time
from statistics import fmean

from .._summary import GIB, short_duration
from .data import Evaluation, Model, Report, Timeline


def lines(report: Report) -> list[str]:
    """The text summary of ``report`` (its window, then each section that has data)."""
    out = [f"llmobs report  {report.source}  {_when(report.start)} to {_when(report.end)} UTC"]
    out += _models(report) + _routes(report) + _evaluations(report) + _batches(report)
    out += _gpus(report) + _host(report) + _alerts(report)
    return out


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(seconds))


def tokens_per_second(report: Report, model: Model) -> float:
    """Output tokens over the time the data covers."""
    return model.output_tokens / report.seconds


def _models(report: Report) -> list[str]:
    active = {name: m for name, m in sorted(report.models.items()) if m.calls}
    if not active:
        return []
    header = f"  {'model':<24}{'calls':>8}{'err%':>7}{'p50':>9}{'p95':>9}{'p99':>9}{'ttft p50':>10}{'tpot p50':>10}"
    out = [header + f"{'tok/s':>9}"]
    for name, model in active.items():
        latency = model.overall("latency")
        p50, p95, p99 = (short_duration(latency.quantile(q)) for q in (0.5, 0.95, 0.99))
        ttft, tpot = (short_duration(model.overall(w).quantile(0.5)) for w in ("ttft", "tpot"))
        out.append(
            f"  {name[:23]:<24}{model.calls:>8}{100 * model.errors / model.calls:>6.1f}%{p50:>9}{p95:>9}{p99:>9}"
            f"{ttft:>10}{tpot:>10}{_rate(tokens_per_second(report, model)):>9}"
        )
        if model.error_types:
            top = ", ".join(f"{kind} {count}" for kind, count in model.error_types.most_common(3))
            out.append(f"    top errors: {top}")
    return out


def _routes(report: Report) -> list[str]:
    routes = {name: r for name, r in sorted(report.routes.items()) if r.requests}
    if not routes:
        return []
    out = [f"  {'http route':<40}{'requests':>9}{'5xx%':>7}{'p95':>9}"]
    for name, r in routes.items():
        p95 = short_duration(r.latency.quantile(0.95))
        out.append(f"  {name[:39]:<40}{r.requests:>9}{100 * r.server_errors / r.requests:>6.1f}%{p95:>9}")
    return out


def _evaluations(report: Report) -> list[str]:
    return [_evaluation(name, model, e) for (name, model), e in sorted(report.evaluations.items())]


def _evaluation(name: str, model: str, e: Evaluation) -> str:
    parts = [f"  evaluation {name}" + (f" ({model})" if model else "") + ":"]
    count, total = sum(b.count for b in e.scores.values()), sum(b.total for b in e.scores.values())
    if count:
        parts.append(f"{count} scores, mean {total / count:.3f};")
    if e.accuracy:
        parts.append(f"accuracy {e.accuracy[-1][1]:.1%} latest, {e.accuracy[0][1]:.1%} first;")
    if e.labels:
        parts.append("labels " + ", ".join(f"{label} {n}" for label, n in e.labels.most_common()))
    return " ".join(parts).rstrip(";")


def _batches(report: Report) -> list[str]:
    out = []
    for name, b in sorted(report.batches.items()):
        progress = f", {b.progress:.0%} done" if b.progress is not None else ""
        out.append(f"  batch {name}: {b.done:.0f} items done, {b.failed:.0f} failed{progress}")
    return out


def _gpus(report: Report) -> list[str]:
    out = []
    for name, readings in sorted(report.gpus.items()):
        parts = [f"  {name}:"]
        if readings.get("utilization"):
            parts.append(f"util mean {_mean(readings['utilization']):.0%} max {_max(readings['utilization']):.0%}")
        if readings.get("memory"):
            parts.append(f"mem max {_max(readings['memory']) / GIB:.1f} GiB")
        if readings.get("temperature"):
            parts.append(f"max {_max(readings['temperature']):.0f}°C")
        if readings.get("power"):
            parts.append(f"power mean {_mean(readings['power']):.0f} W")
        out.append("  ".join(parts))
    output = sum(m.output_tokens for m in report.models.values())
    if report.energy_joules and output:
        out.append(f"  energy: {report.energy_joules / output * 1000:.1f} J per 1000 output tokens")
    return out


def _host(report: Report) -> list[str]:
    parts = [f"{name} mean {_mean(t):.0%} max {_max(t):.0%}" for name, t in sorted(report.host.items()) if t]
    return ["  host: " + "  ".join(parts)] if parts else []


def _alerts(report: Report) -> list[str]:
    if not report.alerts:
        return []
    out = ["  alerts fired:"]
    for alert in report.alerts:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
        out.append(f"    {alert.name} {{{labels}}} {_when(alert.first)} to {_when(alert.last)}")
    return out


def _rate(value: float) -> str:
    return f"{value:.1f}" if value else "-"


def _mean(timeline: Timeline) -> float:
    return fmean(v for _, v in timeline)


def _max(timeline: Timeline) -> float:
    return max(v for _, v in timeline)
