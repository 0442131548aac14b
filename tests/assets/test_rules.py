"""The alert rules: ``promtool check rules`` passes, and ``promtool test rules`` shows every alert
firing on its bad series with the value in its description, and silent on healthy ones (promtool
fails on any alert it was not told to expect)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from llmobs._assets import promql as q
from llmobs._assets.emit import document
from llmobs._assets.rules import groups
from llmobs._assets.thresholds import DEFAULTS, apply
from tests.prometheus.server import PROMTOOL, needs_promtool

pytestmark = needs_promtool

GPU = 'instance="h:9464",hw_id="GPU-0"'
Series = list[tuple[str, str]]


def pair(metric: str, bad: str, good: str, labels: str = "") -> Series:
    """The same series for job="bad" and job="good" (plus ``labels``)."""
    extra = f",{labels}" if labels else ""
    return [(f'{metric}{{job="bad"{extra}}}', bad), (f'{metric}{{job="good"{extra}}}', good)]


def calls(metric: str, slow_bad: int, labels: str = "") -> Series:
    """100 calls a minute per job, ``slow_bad`` of them above the SLO bound for job="bad", none for "good"."""
    return pair(f"{metric}_count", "0+100x400", "0+100x400", labels) + pair(
        f"{metric}_bucket", f"0+{100 - slow_bad}x400", "0+100x400", labels
    )


MODEL = f'{q.MODEL}="m"'
ROUTE = f'{q.ROUTE}="/v1/chat"'
BURN = "% of calls took longer than {le} s over {window} (SLO: 99.00% faster); at this rate a 30-day budget lasts "
BURN += "{days} days."
CASES: dict[str, tuple[Series, str, dict[str, str], str]] = {
    "LlmobsErrorRatioHigh": (
        pair(f"{q.DURATION}_count", "0+90x20", "0+99x20", MODEL)
        + pair(f"{q.DURATION}_count", "0+10x20", "0+1x20", f'{MODEL},{q.ERROR_TYPE}="ValueError"'),
        "15m", {q.MODEL: "m"}, "10% of inference calls failed over 5 minutes (threshold 5%).",
    ),
    "LlmobsLatencyBudgetBurnFast": (
        calls(q.DURATION, 20, f'{MODEL},le="10.24"'), "70m", {q.MODEL: "m"},
        "20" + BURN.format(le="10.24", window="1h", days="2.1"),
    ),
    "LlmobsLatencyBudgetBurnSlow": (
        calls(q.DURATION, 10, f'{MODEL},le="10.24"'), "400m", {q.MODEL: "m"},
        "10" + BURN.format(le="10.24", window="6h", days="5.0"),
    ),
    "LlmobsTTFTBudgetBurnFast": (
        calls(q.TTFT, 50, f'{MODEL},le="1.0"'), "70m", {q.MODEL: "m"},
        "50" + BURN.format(le="1", window="1h", days="2.1"),
    ),
    "LlmobsTTFTBudgetBurnSlow": (
        calls(q.TTFT, 10, f'{MODEL},le="1"'), "400m", {q.MODEL: "m"},  # the Collector's exporter writes le="1"
        "10" + BURN.format(le="1", window="6h", days="5.0"),
    ),
    "LlmobsNoTraffic": (
        pair(f"{q.DURATION}_count", "5+0x30", "0+1x30"), "20m", {}, "No inference call finished in the last 10m.",
    ),
    "LlmobsTelemetryAbsent": (
        pair("target_info", "1x10", "1x40"), "30m", {},
        "bad was seen today, not in the last 10m: the service or its scrape is down.",
    ),
    "LlmobsGpuTemperatureHigh": (
        pair(q.GPU_TEMPERATURE, "92x20", "71x20", GPU), "10m", {}, "GPU core at 92 °C (threshold 85 °C).",
    ),
    "LlmobsGpuThermalThrottling": (
        pair(q.GPU_THROTTLE, "1x20", "0x20", f'{GPU},{q.THROTTLE_REASON}="hw_thermal_slowdown"')
        + pair(q.GPU_THROTTLE, "0x20", "1x20", f'{GPU},{q.THROTTLE_REASON}="gpu_idle"'),
        "10m", {}, "The driver reports a thermal slowdown: the GPU is running below its clocks.",
    ),
    "LlmobsGpuPowerThrottling": (
        pair(q.GPU_THROTTLE, "1x20", "0x20", f'{GPU},{q.THROTTLE_REASON}="sw_power_cap"'),
        "10m", {}, "The driver reports a power cap or power brake: the GPU is running below its clocks.",
    ),
    "LlmobsGpuEccUncorrected": (
        pair(q.GPU_ERRORS, "0 0 0 2 2 2", "0x5", f'{GPU},{q.ERROR_TYPE}="uncorrected"')
        + pair(q.GPU_ERRORS, "0x5", "0+5x5", f'{GPU},{q.ERROR_TYPE}="corrected"'),
        "5m", {}, "2 uncorrected ECC errors in 10 minutes: results computed on this GPU may be wrong.",
    ),
    "LlmobsGpuMemoryNearlyFull": (
        pair(q.GPU_MEMORY_USAGE, "78x20", "31x20", GPU) + pair(q.GPU_MEMORY_LIMIT, "80x20", "80x20", GPU),
        "10m", {}, "97.5% of GPU memory in use (threshold 95%).",
    ),
    "LlmobsHostMemoryHigh": (
        pair(q.MEMORY, "0.96x20", "0.5x20", 'instance="h:9464"'), "10m", {},
        "96% of memory (the container's limit, if any) in use (threshold 90%).",
    ),
    "LlmobsBatchStalled": (
        pair(q.BATCH_ACTIVE, "1x30", "1x30", f'{q.BATCH_NAME}="nightly"')
        + pair(q.BATCH_ITEMS, "100x30", "0+10x30", f'{q.BATCH_NAME}="nightly",{q.BATCH_OUTCOME}="success"')
        + [(f'{q.BATCH_ACTIVE}{{job="done",{q.BATCH_NAME}="nightly"}}', "0x30")],
        "20m", {q.BATCH_NAME: "nightly"}, "nightly is running but processed no item in 15 minutes.",
    ),
    "LlmobsAuthFailureBurst": (
        pair(q.SECURITY_EVENTS, "0+300x20", "0+30x20", f'{ROUTE},{q.SECURITY_EVENT}="authentication_failure"')
        + pair(q.SECURITY_EVENTS, "0+6000x20", "0+6000x20", f'{ROUTE},{q.SECURITY_EVENT}="rate_limited"'),
        "10m", {q.ROUTE: "/v1/chat"},
        "5 authentication or authorization failures a second over 5 minutes (threshold 1).",
    ),
    "LlmobsSeriesOverflow": (
        pair(f"{q.DURATION}_count", "1x20", "1x20", f'{MODEL}')
        + [(f'{q.DURATION}_count{{job="bad",{q.OVERFLOW}="true"}}', "1x20")],
        "10m", {}, "1 series carry otel_metric_overflow=true: an attribute has too many values, and new ones are "
        "merged into the overflow series.",
    ),
}  # fmt: skip


def rules_file(directory: Path, settings: list[str]) -> Path:
    path = directory / "rules.yml"
    path.write_text(document(groups(apply(settings))))
    return path


def test_promtool_checks_the_rules(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    path = rules_file(tmp_path, [])
    done = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    rules = [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]
    assert sorted(rule["alert"] for rule in rules) == sorted(CASES)
    assert all(set(rule["annotations"]) == {"summary", "description", "runbook"} for rule in rules)


def test_every_alert_fires_on_bad_series_only(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    path = rules_file(tmp_path, [])
    summaries = {r["alert"]: r for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]}
    tests = []
    for name, (series, at, labels, description) in CASES.items():
        rule = summaries[name]
        expected = {"job": "bad", **_series_labels(series[0][0], rule["expr"]), **labels}
        expected.update(severity=rule["labels"]["severity"])
        summary = _expand(rule["annotations"]["summary"], expected)
        tests.append({
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in series],
            "alert_rule_test": [{"eval_time": at, "alertname": name, "exp_alerts": [{
                "exp_labels": expected,
                "exp_annotations": {**rule["annotations"], "summary": summary, "description": description},
            }]}],
        })  # fmt: skip
    test_file = tmp_path / "test.yml"
    test_file.write_text(yaml.safe_dump({"rule_files": [path.name], "evaluation_interval": "1m", "tests": tests}))
    done = subprocess.run([PROMTOOL, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def _expand(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m[1]], template)


def _series_labels(series: str, expr: str) -> dict[str, str]:
    """The labels of ``series`` that the alert's ``by (...)`` clauses keep (other than job)."""
    kept = {name.strip() for clause in re.findall(r"by \(([^)]*)\)", expr) for name in clause.split(",")}
    found = dict(re.findall(r'(\w+)="([^"]*)"', series))
    return {k: v for k, v in found.items() if k in kept and k != "job"}


def test_settings_reach_the_rules(tmp_path: Path) -> None:
    text = rules_file(tmp_path, ["error_ratio=0.2", "alert_for=30s", "gpu_temperature_celsius=90"]).read_text()
    rules = {r["alert"]: r for g in yaml.safe_load(text)["groups"] for r in g["rules"]}
    assert rules["LlmobsErrorRatioHigh"]["expr"].endswith("> 0.2")
    assert rules["LlmobsErrorRatioHigh"]["for"] == "30s"
    assert rules["LlmobsGpuTemperatureHigh"]["expr"].endswith("> 90.0")
    assert document(groups(DEFAULTS)) != text


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_alert_has_a_runbook(name: str) -> None:
    alerts = (Path(__file__).parents[2] / "docs" / "alerts.md").read_text()
    assert f"## {name}" in alerts
