"""Every shipped query against a real Prometheus scraping the workload (tests/assets/app.py): each
panel of each dashboard returns data with its variables substituted, the key ones the right value;
each alert rule evaluates, the hot GPU's alerts fire and the healthy ones stay silent; the error-ratio
alert reaches a webhook through a real Alertmanager; every Zabbix pattern matches the real scrape."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from llmobs._assets import GRAFANA
from llmobs._assets import promql as q
from llmobs._assets.thresholds import DEFAULTS
from llmobs._assets.zabbix import template
from tests.assets import workload
from tests.assets import zabbix_patterns as zabbix
from tests.assets.stack import ALERTMANAGER, GIB, SERVICE, WATTS, Stack, stack
from tests.assets.zabbix_patterns import javascript, samples
from tests.nvml_stub import uuid
from tests.prometheus.server import needs_prometheus

pytestmark = [needs_prometheus, pytest.mark.skipif(ALERTMANAGER is None, reason="prometheus-alertmanager missing")]

WINDOW = "15s"
ALL = {"service": ".*", "instance": ".*", "model": ".*", "gpu": ".*", "route": ".*"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack(tmp_path_factory.mktemp("assets")) as running:
        yield running


def panels() -> list[tuple[str, dict[str, Any]]]:
    boards = [json.loads(path.read_text()) for path in sorted(GRAFANA.glob("*.json"))]
    return [(board["uid"], panel) for board in boards for panel in board["panels"] if panel["type"] != "row"]


def substitute(expr: str, values: dict[str, str]) -> str:
    """A panel's query as Grafana sends it: the rate interval and every variable replaced."""
    expr = expr.replace("$__rate_interval", WINDOW)
    return re.sub(r"\$(\w+)", lambda m: values[m[1]], expr)


def by_panel(title: str, **values: str) -> list[dict[str, Any]]:
    """The queries of the panel titled ``title``, substituted."""
    [panel] = [p for _, p in panels() if p["title"] == title]
    return [{"expr": substitute(t["expr"], {**ALL, **values}), "legend": t["legendFormat"]} for t in panel["targets"]]


def finite(result: list[dict[str, Any]]) -> dict[str, float]:
    """Each series (its labels joined) to its value, NaN dropped."""
    out = {}
    for series in result:
        value = float(series["value"][1])
        if math.isfinite(value):
            out[",".join(f"{k}={v}" for k, v in sorted(series["metric"].items()))] = value
    return out


def settled(live: Stack, promql: str, check: Any, timeout: float = 45.0) -> dict[str, float]:
    """Wait until ``check`` holds for the finite values of ``promql``."""
    deadline = time.monotonic() + timeout
    while True:
        values = finite(live.prometheus.query(promql))
        if check(values):
            return values
        assert time.monotonic() < deadline, f"{promql}: {values}"
        time.sleep(0.5)


def one(live: Stack, title: str, labels: str = "", **values: str) -> float:
    """The value of the series of panel ``title`` (first query) whose labels contain ``labels``."""
    [query, *_] = by_panel(title, **values)
    found = settled(live, query["expr"], lambda v: any(labels in k for k in v))
    return next(v for k, v in found.items() if labels in k)


def test_key_panels_show_the_right_values(live: Stack) -> None:
    # The driver needs a full rate window of its steady schedule behind it.
    settled(live, "count_over_time(target_info[1m])", lambda v: bool(v) and min(v.values()) >= 18, timeout=60)
    assert one(live, "Error ratio by error.type", "ValueError", model="m") == pytest.approx(
        1 / workload.EVERY, abs=0.02
    )
    rate = workload.RATE
    assert one(live, "Tokens per second", "=input", model="m") == pytest.approx(rate * workload.INPUT, rel=0.15)
    output = rate * (1 - 1 / workload.EVERY) * workload.OUTPUT
    assert one(live, "Tokens per second", "=output", model="m") == pytest.approx(output, rel=0.15)
    assert one(live, "Inference calls per second", "=m") == pytest.approx(rate, rel=0.15)
    assert one(live, "Batch items per second", "success") == pytest.approx(workload.BATCH_RATE, rel=0.15)
    assert one(live, "GPU energy per 1000 output tokens") == pytest.approx(WATTS / output * 1000, rel=0.15)
    assert one(live, "GPU temperature") == 92
    assert one(live, "GPU memory of this service's processes") == 2 * GIB
    assert one(live, "Running batch jobs", "nightly") == 1
    assert one(live, "Overflow series") >= 1


def test_http_panels_count_the_statuses(live: Stack) -> None:
    for code in (200, 200, 401, 403, 429, 429):
        httpx.get(f"{live.app.url}/status/{code}", timeout=5)
    [query] = by_panel("401, 403 and 429 by route")
    found = settled(live, query["expr"], lambda v: len(v) == 3)
    assert {re.findall(r"status_code=(\d+)", k)[0] for k in found} == {"401", "403", "429"}
    assert all("http_route=/status/{code}" in k for k in found)
    [classes] = by_panel("Status classes")
    assert {"class=2xx", "class=4xx"} <= set(settled(live, classes["expr"], lambda v: len(v) >= 2))


def test_every_panel_query_returns_data(live: Stack) -> None:
    settled(live, f"count({q.TTFT}_count)", bool)
    for code in (200, 401):
        httpx.get(f"{live.app.url}/status/{code}", timeout=5)
    for uid, panel in panels():
        for target in panel["targets"]:
            expr = substitute(target["expr"], ALL)
            assert settled(live, expr, bool, timeout=15), f"{uid}: {panel['title']}: {expr}"


def test_every_variable_lists_the_workloads_values(live: Stack) -> None:
    boards = [json.loads(path.read_text()) for path in sorted(GRAFANA.glob("*.json"))]
    variables = {v["name"]: v["query"] for board in boards for v in board["templating"]["list"] if v["type"] == "query"}
    found = {}
    for name, query in variables.items():
        metric, label = re.fullmatch(r"label_values\((.*), (\w+)\)", query).groups()  # type: ignore[union-attr]
        result = live.prometheus.query(f"group by ({label}) ({substitute(metric, ALL)})")
        found[name] = {series["metric"].get(label) for series in result}
    assert SERVICE in found["service"]
    assert "m" in found["model"] and uuid(0) in found["gpu"] and "/status/{code}" in found["route"]
    assert found["instance"] and None not in found["instance"]


def test_every_rule_evaluates_and_the_right_alerts_fire(live: Stack) -> None:
    firing = {"LlmobsErrorRatioHigh", "LlmobsGpuTemperatureHigh", "LlmobsGpuThermalThrottling",
              "LlmobsGpuPowerThrottling", "LlmobsGpuEccUncorrected", "LlmobsSeriesOverflow"}  # fmt: skip
    deadline = time.monotonic() + 45
    while True:
        rules = [r for g in _api(live, "rules")["groups"] for r in g["rules"]]
        active = {r["name"] for r in rules if r["state"] == "firing"}
        if firing <= active or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
    assert firing <= active
    assert not active & {"LlmobsNoTraffic", "LlmobsTelemetryAbsent", "LlmobsBatchStalled", "LlmobsGpuMemoryNearlyFull"}


def test_the_error_alert_reaches_the_webhook(live: Stack) -> None:
    deadline = time.monotonic() + 60
    while not [a for a in live.webhook.alerts if a["labels"]["alertname"] == "LlmobsErrorRatioHigh"]:
        assert time.monotonic() < deadline, live.webhook.alerts
        time.sleep(0.5)
    [alert, *_] = [a for a in live.webhook.alerts if a["labels"]["alertname"] == "LlmobsErrorRatioHigh"]
    assert alert["status"] == "firing"
    assert alert["labels"] == {
        "alertname": "LlmobsErrorRatioHigh", "job": SERVICE, q.MODEL: "m", "severity": "page"
    }  # fmt: skip
    assert re.fullmatch(r"(19|20|21)(\.\d+)?% of inference calls failed over 5 minutes \(threshold 10%\)\.",
                        alert["annotations"]["description"])  # fmt: skip


def _api(live: Stack, path: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{live.prometheus.url}/api/v1/{path}", timeout=5).json()
    assert answer["status"] == "success", answer
    return answer["data"]  # type: ignore[no-any-return]


@pytest.mark.skipif(zabbix.CHROMIUM is None, reason="Debian's chromium (it runs the JavaScript steps) is missing")
def test_every_zabbix_pattern_matches_the_scrape(live: Stack) -> None:
    settled(live, f'count({{{q.OVERFLOW}="true"}})', bool)
    found = samples(httpx.get(live.metrics, timeout=5).text)
    [body] = template(DEFAULTS)["zabbix_export"]["templates"]  # type: ignore[index]
    values = {item["key"]: run(item, found) for item in body["items"] if item["type"] == "DEPENDENT"}
    assert values["llmobs.overflow"] >= 1 and 0 < values["llmobs.host.memory"] < 1
    discovered: dict[str, dict[str, float]] = {}
    rules = body["discovery_rules"]
    steps = [(r["preprocessing"][1]["parameters"][0], zabbix.apply(r["preprocessing"][0], found)) for r in rules]
    for rule, output in zip(rules, javascript(steps), strict=True):
        rows = json.loads(output)
        assert rows and len(rows) == len({json.dumps(r) for r in rows}), rule["key"]
        for row in rows:
            for proto in (p for p in rule["item_prototypes"] if p["type"] == "DEPENDENT"):
                for macro, value in row.items():
                    proto = json.loads(json.dumps(proto).replace(macro, value))
                discovered.setdefault(rule["key"], {})[proto["key"]] = run(proto, found)
    models, gpus = discovered["llmobs.models"], discovered["llmobs.gpus"]
    assert models["llmobs.model.calls[m]"] > 0 and models["llmobs.model.errors[m]"] > 0  # cumulative before the rate
    tenants = [v for k, v in models.items() if k.startswith("llmobs.model.errors[tenant-")]
    assert tenants and set(tenants) == {0}  # they never fail: the error handler's 0
    gpu = uuid(0)
    assert gpus[f"llmobs.gpu.temperature[{gpu}]"] == 92 and gpus[f"llmobs.gpu.thermal[{gpu}]"] == 1
    assert gpus[f"llmobs.gpu.power.capped[{gpu}]"] == 1 and gpus[f"llmobs.gpu.memory.used[{gpu}]"] == 31 * GIB
    assert discovered["llmobs.batches"]["llmobs.batch.active[nightly]"] == 1


def run(item: dict[str, Any], found: list[zabbix.Sample]) -> float:
    """An item's Prometheus step on the scrape (the steps after it work on its number)."""
    step = item["preprocessing"][0]
    try:
        return float(zabbix.apply(step, found))
    except ValueError:
        assert step.get("error_handler") == "CUSTOM_VALUE", (item["key"], step)
        return float(step["error_handler_params"])
