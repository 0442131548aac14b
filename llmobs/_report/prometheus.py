"""The report from a Prometheus server: the same shape as from the history, read over its HTTP API
(``query_range``) under the names ``llmobs._prometheus.names`` translates. Counters and histogram
buckets are read as their cumulative values at each step and differenced here (a drop is a restart:
the new value counts), so counts are whole and exact at the step's resolution; fired alerts come from
``ALERTS``."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from .. import semconv as names
from .._prometheus.names import label, metric_name
from .._summary import Buckets
from .data import HANDLERS, Alert, Point, Report, SourceError, add

TIMEOUT = 10.0
PER_PROCESS = "instance, job, service_instance_id, process_pid"  # summed over: workers and targets
KEYS = (
    names.MODEL, names.ERROR_TYPE, names.TOKEN_TYPE, names.EVALUATION_NAME, names.EVALUATION_SCORE_LABEL,
    names.BATCH_NAME, names.BATCH_OUTCOME, names.HTTP_METHOD, names.HTTP_ROUTE, names.HTTP_STATUS_CODE,
    names.HW_NAME, names.GPU_TASK,
)  # fmt: skip
ATTRIBUTES = {label(key): key for key in KEYS}
"""The labels the report's handlers read, back to their attribute keys."""
INSTRUMENTS = [i for i in vars(names).values() if isinstance(i, names.Instrument) and i.name in HANDLERS]


def load_prometheus(url: str, start: float, end: float) -> Report:
    """The report of ``[start, end]`` from the Prometheus at ``url``; SourceError when it cannot be asked."""
    report = Report(f"prometheus {url}", start, end, resolution=1.0)
    client = _Client(url, start, end, report.step)
    for instrument in INSTRUMENTS:
        for point in _points(client, instrument):
            report.saw(point.when - client.step, point.when)
            add(report, instrument.name, point)
    report.alerts = list(_alerts(client))
    return report


class _Client:
    def __init__(self, url: str, start: float, end: float, step: float) -> None:
        self.url, self.start, self.end, self.step = url.rstrip("/"), start, end, step

    def range(self, promql: str) -> list[dict[str, Any]]:
        """``query_range`` over the report's window: each series' labels and (time, value) pairs."""
        # One step past the end: the grid's last point then lies at or after it, and sees the latest samples.
        window = {"start": self.start, "end": self.end + self.step, "step": self.step}
        query = urllib.parse.urlencode({"query": promql, **window})
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/query_range?{query}", timeout=TIMEOUT) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            raise SourceError(f"Prometheus at {self.url} refused a query ({exc.code} {exc.reason})") from None
        except (OSError, ValueError) as exc:
            raise SourceError(f"cannot reach Prometheus at {self.url}: {exc}") from None
        if body.get("status") != "success":
            raise SourceError(f"Prometheus at {self.url} answered: {body.get('error', body)}")
        return list(body["data"]["result"])


def _attributes(labels: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {ATTRIBUTES[k]: v for k, v in labels.items() if k in ATTRIBUTES}
    status = out.get(names.HTTP_STATUS_CODE)
    if isinstance(status, str) and status.isdigit():
        out[names.HTTP_STATUS_CODE] = int(status)
    return out


def _points(client: _Client, instrument: names.Instrument) -> Iterator[Point]:
    name = metric_name(instrument)
    if instrument.kind is names.Kind.HISTOGRAM:
        yield from _histograms(client, name)
    elif instrument.kind is names.Kind.COUNTER:
        for series in client.range(f"sum without ({PER_PROCESS}) ({name})"):
            attrs = _attributes(series["metric"])
            for when, increase in _increases(series["values"]):
                yield Point(when, attrs, increase, Buckets())
    else:
        for series in client.range(f"avg without ({PER_PROCESS}) ({name})"):
            attrs = _attributes(series["metric"])
            for when, value in series["values"]:
                yield Point(float(when), attrs, float(value), Buckets())


def _increases(values: list[list[Any]]) -> Iterator[tuple[float, float]]:
    """Each step's increase of a cumulative series (its first value when it first appears)."""
    before = 0.0
    for when, text in values:
        value = float(text)
        increase = value - before if value >= before else value  # a drop: the process started over
        before = value
        if increase:
            yield float(when), increase


def _histograms(client: _Client, name: str) -> Iterator[Point]:
    """Bucket increases per step and label set, from the cumulative ``le`` buckets and ``_sum``."""
    cumulative: dict[tuple[tuple[str, str], ...], dict[float, dict[float, float]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for series in client.range(f"sum without ({PER_PROCESS}) ({name}_bucket)"):
        labels = dict(series["metric"])
        bound = float(labels.pop("le", "inf"))
        for when, value in series["values"]:
            cumulative[tuple(sorted(labels.items()))][float(when)][bound] = float(value)
    sums = {
        tuple(sorted(s["metric"].items())): dict(_increases(s["values"]))
        for s in client.range(f"sum without ({PER_PROCESS}) ({name}_sum)")
    }
    for key, steps in cumulative.items():
        attrs, before = _attributes(dict(key)), None
        for when in sorted(steps):
            counts, bounds = _counts(steps[when])
            increase = counts if before is None else _difference(counts, before)
            before = counts
            if any(increase):
                total = sums.get(key, {}).get(when, 0.0)
                yield Point(when, attrs, total, Buckets(bounds, increase, None, None, False, total))


def _counts(cumulative: dict[float, float]) -> tuple[list[int], list[float]]:
    """Per-bucket counts (the last is +Inf's) and the finite bounds, from cumulative ``le`` counts."""
    bounds = sorted(b for b in cumulative if math.isfinite(b))
    totals = [cumulative[b] for b in bounds] + [cumulative.get(math.inf, cumulative[bounds[-1]] if bounds else 0.0)]
    return [round(t - (totals[i - 1] if i else 0.0)) for i, t in enumerate(totals)], bounds


def _difference(now: list[int], before: list[int]) -> list[int]:
    if len(now) != len(before) or any(n < b for n, b in zip(now, before, strict=True)):
        return now  # restarted (or re-bucketed): everything since counts
    return [n - b for n, b in zip(now, before, strict=True)]


def _alerts(client: _Client) -> Iterator[Alert]:
    for series in client.range('ALERTS{alertstate="firing"}'):
        labels = {k: v for k, v in series["metric"].items() if k not in ("__name__", "alertname", "alertstate")}
        times = [float(when) for when, _ in series["values"]]
        yield Alert(series["metric"].get("alertname", "?"), labels, times[0], times[-1])
