"""The Prometheus alert rules, built from the translated metric names and the thresholds: errors, the
latency and TTFT SLOs' multi-window multi-burn-rate alerts (Google's SRE workbook, chapter 5), absent
traffic or telemetry, GPU heat, throttling, ECC errors and memory, host memory, stalled batch jobs and
series-cap overflow. Each alert has a summary, a description with its value, and a runbook anchor."""

from __future__ import annotations

from .. import semconv as sc
from .._prometheus.exposition import number
from . import promql as q
from .thresholds import Thresholds

Rule = dict[str, object]

BURN_RATES = (("Fast", "page", 14.4, "1h", "5m", "2m"), ("Slow", "ticket", 6.0, "6h", "30m", "15m"))
"""(name, severity, burn rate, long window, short window, for): the workbook's 2% and 5% of a 30-day
error budget, each confirmed by a window a twelfth as long so that the alert stops soon after the fix."""
THERMAL = "sw_thermal_slowdown|hw_thermal_slowdown"
POWER = "sw_power_cap|hw_power_brake_slowdown|hw_slowdown"


def groups(t: Thresholds) -> dict[str, object]:
    """The rule file: ``{"groups": [...]}``."""
    return {
        "groups": [
            {"name": "llmobs-inference", "rules": [_errors(t), *_slo("Latency", q.DURATION, t.latency_seconds,
                                                                    t.latency_target),
                                                    *_slo("TTFT", q.TTFT, t.ttft_seconds, t.ttft_target),
                                                    *_absent(t)]},
            {"name": "llmobs-gpu", "rules": _gpu(t)},
            {"name": "llmobs-host", "rules": [_host_memory(t), _batch_stalled(t), _overflow(t), _auth_failures(t)]},
        ]
    }  # fmt: skip


def alert(name: str, expr: str, for_: str, severity: str, summary: str, description: str) -> Rule:
    """One alerting rule; ``description`` may use ``{{ $value }}`` and ``{{ $labels.x }}``."""
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description, "runbook": f"docs/alerts.md#{name.lower()}"},
    }


def error_ratio(by: str, window: str) -> str:
    """Failed inference calls over all calls."""
    calls = f"{q.DURATION}_count"
    failed = f'sum by ({by}) (rate({calls}{{{q.ERROR_TYPE}!=""}}[{window}]))'
    return f"{failed}\n  / sum by ({by}) (rate({calls}[{window}]))"


def _errors(t: Thresholds) -> Rule:
    by = f"{q.SERVICE}, {q.MODEL}"
    return alert(
        "LlmobsErrorRatioHigh", f"{error_ratio(by, '5m')}\n> {number(t.error_ratio)}", t.alert_for, "page",
        "{{ $labels.job }}: {{ $labels.gen_ai_request_model }} fails too many calls",
        f"{{{{ $value | humanizePercentage }}}} of inference calls failed over 5 minutes (threshold "
        f"{t.error_ratio:.0%}).",
    )  # fmt: skip


def slow_ratio(metric: str, le: float, by: str, window: str) -> str:
    """The fraction of a histogram's observations above the bucket boundary ``le`` over ``window``."""
    good = f"sum by ({by}) (rate({metric}_bucket{{{q.le(le)}}}[{window}]))"
    return f"(1 - {good} / sum by ({by}) (rate({metric}_count[{window}])))"


def _slo(what: str, metric: str, le: float, target: float) -> list[Rule]:
    by, budget = f"{q.SERVICE}, {q.MODEL}", 1 - target
    rules = []
    for speed, severity, rate, long, short, for_ in BURN_RATES:
        limit = number(round(rate * budget, 9))
        expr = f"{slow_ratio(metric, le, by, long)} > {limit}\nand\n{slow_ratio(metric, le, by, short)} > {limit}"
        rules.append(alert(
            f"Llmobs{what}BudgetBurn{speed}", expr, for_, severity,
            f"{{{{ $labels.job }}}}: {{{{ $labels.gen_ai_request_model }}}} burns its {what} error budget {rate}x",
            f"{{{{ $value | humanizePercentage }}}} of calls took longer than {le:g} s over {long} (SLO: "
            f"{target:.2%} faster); at this rate a 30-day budget lasts {30 / rate:.1f} days.",
        ))  # fmt: skip
    return rules


def _absent(t: Thresholds) -> list[Rule]:
    seen = f"max by ({q.SERVICE}) (max_over_time(target_info[1d]))"
    recent = f"max by ({q.SERVICE}) (max_over_time(target_info[{t.absent_for}]))"
    return [
        alert(
            "LlmobsNoTraffic", f"sum by ({q.SERVICE}) (rate({q.DURATION}_count[{t.absent_for}])) == 0", "0s", "ticket",
            "{{ $labels.job }} served no inference call", f"No inference call finished in the last {t.absent_for}.",
        ),
        alert(
            "LlmobsTelemetryAbsent", f"{seen}\nunless\n{recent}", "0s", "page", "{{ $labels.job }} sends no telemetry",
            f"{{{{ $labels.job }}}} was seen today, not in the last {t.absent_for}: the service or its scrape is down.",
        ),
    ]  # fmt: skip


def _gpu(t: Thresholds) -> list[Rule]:
    gpu = f"{q.SERVICE}, {q.INSTANCE}, {q.HW_ID}"
    throttle = f'max by ({gpu}) ({q.GPU_THROTTLE}{{{q.THROTTLE_REASON}=~"%s"}}) == 1'
    ecc = f'sum by ({gpu}) (increase({q.GPU_ERRORS}{{{q.ERROR_TYPE}="uncorrected"}}[10m])) > 0'
    memory = f"max by ({gpu}) ({q.GPU_MEMORY_USAGE}) / max by ({gpu}) ({q.GPU_MEMORY_LIMIT})"
    return [
        alert(
            "LlmobsGpuTemperatureHigh", f"max by ({gpu}) ({q.GPU_TEMPERATURE}) > {number(t.gpu_temperature_celsius)}",
            t.alert_for, "warning", "{{ $labels.hw_id }} on {{ $labels.instance }} runs hot",
            f"GPU core at {{{{ $value }}}} °C (threshold {t.gpu_temperature_celsius:g} °C).",
        ),
        alert(
            "LlmobsGpuThermalThrottling", throttle % THERMAL, t.alert_for, "warning",
            "{{ $labels.hw_id }} on {{ $labels.instance }} slows its clocks for heat",
            "The driver reports a thermal slowdown: the GPU is running below its clocks.",
        ),
        alert(
            "LlmobsGpuPowerThrottling", throttle % POWER, t.alert_for, "info",
            "{{ $labels.hw_id }} on {{ $labels.instance }} is held at its power limit",
            "The driver reports a power cap or power brake: the GPU is running below its clocks.",
        ),
        alert(
            "LlmobsGpuEccUncorrected", ecc, "0s", "page",
            "{{ $labels.hw_id }} on {{ $labels.instance }} has uncorrected memory errors",
            "{{ $value }} uncorrected ECC errors in 10 minutes: results computed on this GPU may be wrong.",
        ),
        alert(
            "LlmobsGpuMemoryNearlyFull", f"{memory} > {number(t.gpu_memory_ratio)}", t.alert_for, "warning",
            "{{ $labels.hw_id }} on {{ $labels.instance }} is nearly out of memory",
            f"{{{{ $value | humanizePercentage }}}} of GPU memory in use (threshold {t.gpu_memory_ratio:.0%}).",
        ),
    ]  # fmt: skip


def _host_memory(t: Thresholds) -> Rule:
    return alert(
        "LlmobsHostMemoryHigh", f"max by ({q.SERVICE}, {q.INSTANCE}) ({q.MEMORY}) > {number(t.host_memory_ratio)}",
        t.alert_for, "warning", "{{ $labels.instance }} is nearly out of memory",
        f"{{{{ $value | humanizePercentage }}}} of memory (the container's limit, if any) in use (threshold "
        f"{t.host_memory_ratio:.0%}).",
    )  # fmt: skip


def _batch_stalled(t: Thresholds) -> Rule:
    by, window = f"{q.SERVICE}, {q.BATCH_NAME}", f"{round(t.batch_stall_minutes * 60)}s"
    expr = f"max by ({by}) ({q.BATCH_ACTIVE}) > 0\nunless\nsum by ({by}) (increase({q.BATCH_ITEMS}[{window}])) > 0"
    return alert(
        "LlmobsBatchStalled", expr, "0s", "warning", "Batch job {{ $labels.llmobs_batch_name }} stopped advancing",
        f"{{{{ $labels.llmobs_batch_name }}}} is running but processed no item in {t.batch_stall_minutes:g} "
        "minutes.",
    )  # fmt: skip


def _overflow(t: Thresholds) -> Rule:
    return alert(
        "LlmobsSeriesOverflow", f'count by ({q.SERVICE}) ({{{q.OVERFLOW}="true"}}) > 0', t.alert_for, "warning",
        "{{ $labels.job }} hit its series cap",
        "{{ $value }} series carry otel_metric_overflow=true: an attribute has too many values, and new ones "
        "are merged into the overflow series.",
    )  # fmt: skip


def _auth_failures(t: Thresholds) -> Rule:
    kinds = f"{sc.AUTHENTICATION_FAILURE}|{sc.AUTHORIZATION_FAILURE}"
    by = f"{q.SERVICE}, {q.ROUTE}"
    failures = f'{q.SECURITY_EVENTS}{{{q.SECURITY_EVENT}=~"{kinds}"}}'
    expr = f"sum by ({by}) (rate({failures}[5m])) > {number(t.auth_failures_per_second)}"
    return alert(
        "LlmobsAuthFailureBurst", expr, t.alert_for, "warning",
        "{{ $labels.job }}: auth failures on {{ $labels.http_route }}",
        f"{{{{ $value | humanize }}}} authentication or authorization failures a second over 5 minutes (threshold "
        f"{t.auth_failures_per_second:g}).",
    )  # fmt: skip
