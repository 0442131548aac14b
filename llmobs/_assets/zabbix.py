"""A Zabbix 6.0 template: one HTTP agent item reads the scrape endpoint, dependent items pick series out
of it with Prometheus-pattern preprocessing, low-level discovery finds the models, GPUs and batch jobs,
and the triggers use the same thresholds as the Prometheus alert rules (as user macros)."""

from __future__ import annotations

import hashlib
import re
import uuid

from . import promql as q
from .rules import POWER, THERMAL
from .thresholds import Thresholds

TEMPLATE = "llmobs by HTTP"
MASTER = "llmobs.get_metrics"
Node = dict[str, object]
CHANGE: Node = {"type": "SIMPLE_CHANGE", "parameters": [""]}
ZERO: Node = {"error_handler": "CUSTOM_VALUE", "error_handler_params": "0"}
"""Where no series matching is a normal state (no failure yet, no output tokens, no overflow): 0."""

DEDUPLICATE = """var seen = {}, out = [];
JSON.parse(value).forEach(function (series) {
  var name = series.labels['%s'];
  if (name && !seen[name]) { seen[name] = true; out.push({'%s': name}); }
});
return JSON.stringify(out);"""


def uid(key: str) -> str:
    """A stable UUIDv4-shaped id (Zabbix requires one per entity), derived from the entity's key."""
    return uuid.UUID(bytes=hashlib.sha256(key.encode()).digest()[:16], version=4).hex


def seconds(duration: str) -> int:
    """A Prometheus duration in whole seconds (Zabbix spells periods differently)."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return round(sum(int(n) * units[u] for n, u in re.findall(r"(\d+)(ms|[smhdwy])", duration)))


def pattern(metric: str, selector: str = "", result: str = "value", function: str = "") -> Node:
    """The Prometheus-pattern preprocessing step (6.0: ``value``, ``label`` or ``function`` sum/max/...)."""
    return {"type": "PROMETHEUS_PATTERN", "parameters": [f"{metric}{{{selector}}}" if selector else metric, result,
                                                         function]}  # fmt: skip


def item(name: str, key: str, steps: list[Node], units: str = "", value_type: str = "FLOAT", **extra: object) -> Node:
    """A dependent item of the scrape."""
    found: Node = {
        "uuid": uid(key), "name": name, "type": "DEPENDENT", "key": key, "delay": "0", "value_type": value_type,
        "master_item": {"key": MASTER}, "preprocessing": steps,
    }  # fmt: skip
    if units:
        found["units"] = units
    return {**found, **extra}


def held(key: str, above: str) -> str:
    """True while item ``key`` stayed above ``above`` for {$LLMOBS.ALERT_FOR}: Prometheus's ``for:``."""
    return f"min(/{TEMPLATE}/{key},{{$LLMOBS.ALERT_FOR}})>{above}"


def trigger(expression: str, name: str, priority: str, description: str) -> Node:
    return {"uuid": uid(expression), "expression": expression, "name": name, "priority": priority,
            "description": description}  # fmt: skip


def _rate(step: Node) -> list[Node]:
    return [step, {"type": "CHANGE_PER_SECOND", "parameters": [""]}]


def _discovery(
    name: str, key: str, metric: str, label: str, macro: str, items: list[Node], triggers: list[Node]
) -> Node:
    steps = [
        {"type": "PROMETHEUS_TO_JSON", "parameters": [metric]},
        {"type": "JAVASCRIPT", "parameters": [DEDUPLICATE % (label, macro)]},
    ]
    return {"uuid": uid(key), "name": name, "type": "DEPENDENT", "key": key, "delay": "0",
            "master_item": {"key": MASTER}, "preprocessing": steps, "item_prototypes": items,
            "trigger_prototypes": triggers, "lifetime": "7d"}  # fmt: skip


def _models() -> Node:
    model = f'{q.MODEL}="{{#MODEL}}"'
    calls, errors = "llmobs.model.calls[{#MODEL}]", "llmobs.model.errors[{#MODEL}]"
    ratio = "llmobs.model.error_ratio[{#MODEL}]"
    items: list[Node] = [
        item("Model {#MODEL}: calls per second", calls, _rate(pattern(f"{q.DURATION}_count", model, "function", "sum")),
             "rps"),
        item("Model {#MODEL}: failed calls per second", errors,
             _rate({**pattern(f"{q.DURATION}_count", f'{model},{q.ERROR_TYPE}=~".+"', "function", "sum"), **ZERO}),
             "rps"),
        item("Model {#MODEL}: output tokens per second", "llmobs.model.output_tokens[{#MODEL}]",
             _rate({**pattern(f"{q.TOKENS}_sum", f'{model},{q.TOKEN_TYPE}="output"', "function", "sum"), **ZERO})),
        item("Model {#MODEL}: in-flight calls", "llmobs.model.active[{#MODEL}]",
             [{**pattern(q.ACTIVE, model, "function", "sum"), **ZERO}]),
        {"uuid": uid(ratio), "name": "Model {#MODEL}: error ratio", "type": "CALCULATED", "key": ratio,
         "value_type": "FLOAT", "params": f"last(//{errors})/last(//{calls})", "delay": "1m"},
    ]  # fmt: skip
    triggers = [trigger(
        f"avg(/{TEMPLATE}/{ratio},5m)>{{$LLMOBS.ERROR_RATIO.MAX}}", "Model {#MODEL}: too many failed calls", "HIGH",
        "More than {$LLMOBS.ERROR_RATIO.MAX} of the calls failed over 5 minutes (docs/alerts.md#llmobserrorratiohigh).",
    )]  # fmt: skip
    return _discovery("Models", "llmobs.models", f"{q.DURATION}_count", q.MODEL, "{#MODEL}", items, triggers)


def _gpus() -> Node:
    gpu = f'{q.HW_ID}="{{#GPU}}"'
    key = {
        name: f"llmobs.gpu.{name}[{{#GPU}}]"
        for name in (
            "temperature",
            "memory.used",
            "memory.limit",
            "thermal",
            "power.capped",
            "ecc",
            "power",
            "utilization",
        )
    }
    throttle = f'{gpu},{q.THROTTLE_REASON}=~"%s"'
    items = [
        item("GPU {#GPU}: temperature", key["temperature"], [pattern(q.GPU_TEMPERATURE, gpu)], "°C"),
        item("GPU {#GPU}: memory used", key["memory.used"], [pattern(q.GPU_MEMORY_USAGE, gpu)], "B"),
        item("GPU {#GPU}: memory total", key["memory.limit"], [pattern(q.GPU_MEMORY_LIMIT, gpu)], "B"),
        item("GPU {#GPU}: power", key["power"], [pattern(q.GPU_POWER, gpu)], "W"),
        item("GPU {#GPU}: utilization", key["utilization"],
             [pattern(q.GPU_UTILIZATION, f'{gpu},hw_gpu_task="general"')]),
        item("GPU {#GPU}: thermal slowdown", key["thermal"],
             [pattern(q.GPU_THROTTLE, throttle % THERMAL, "function", "max")]),
        item("GPU {#GPU}: power capped", key["power.capped"],
             [pattern(q.GPU_THROTTLE, throttle % POWER, "function", "max")]),
        item("GPU {#GPU}: new uncorrected ECC errors", key["ecc"],
             [pattern(q.GPU_ERRORS, f'{gpu},{q.ERROR_TYPE}="uncorrected"'), CHANGE]),
    ]  # fmt: skip
    triggers = [
        trigger(held(key["temperature"], "{$LLMOBS.GPU.TEMP.MAX}"), "GPU {#GPU} runs hot",
                "WARNING", "Above {$LLMOBS.GPU.TEMP.MAX} °C (docs/alerts.md#llmobsgputemperaturehigh)."),
        trigger(held(key["thermal"], "0"), "GPU {#GPU} slows its clocks for heat", "WARNING",
                "docs/alerts.md#llmobsgputhermalthrottling"),
        trigger(held(key["power.capped"], "0"), "GPU {#GPU} is held at its power limit", "INFO",
                "docs/alerts.md#llmobsgpupowerthrottling"),
        trigger(f"sum(/{TEMPLATE}/{key['ecc']},10m)>0", "GPU {#GPU} has uncorrected memory errors", "HIGH",
                "docs/alerts.md#llmobsgpueccuncorrected"),
        trigger(held(key["memory.used"], f"{{$LLMOBS.GPU.MEMORY.MAX}}*last(/{TEMPLATE}/{key['memory.limit']})"),
                "GPU {#GPU} is nearly out of memory", "WARNING",
                "docs/alerts.md#llmobsgpumemorynearlyfull"),
    ]  # fmt: skip
    return _discovery("GPUs", "llmobs.gpus", q.GPU_TEMPERATURE, q.HW_ID, "{#GPU}", items, triggers)


def _batches() -> Node:
    batch = f'{q.BATCH_NAME}="{{#BATCH}}"'
    active, advanced = "llmobs.batch.active[{#BATCH}]", "llmobs.batch.advanced[{#BATCH}]"
    items = [
        item("Batch {#BATCH}: running", active, [pattern(q.BATCH_ACTIVE, batch, "function", "sum")]),
        item("Batch {#BATCH}: items since the last poll", advanced,
             [pattern(q.BATCH_ITEMS, batch, "function", "sum"), CHANGE]),
    ]  # fmt: skip
    triggers = [trigger(
        f"last(/{TEMPLATE}/{active})>0 and sum(/{TEMPLATE}/{advanced},{{$LLMOBS.BATCH.STALL}})=0",
        "Batch job {#BATCH} stopped advancing", "WARNING", "docs/alerts.md#llmobsbatchstalled",
    )]  # fmt: skip
    return _discovery("Batch jobs", "llmobs.batches", q.BATCH_ACTIVE, q.BATCH_NAME, "{#BATCH}", items, triggers)


def macros(t: Thresholds) -> list[Node]:
    values = {
        "{$LLMOBS.URL}": ("http://localhost:9464/metrics", "llmobs's scrape endpoint"),
        "{$LLMOBS.ERROR_RATIO.MAX}": (f"{t.error_ratio:g}", "error_ratio"),
        "{$LLMOBS.GPU.TEMP.MAX}": (f"{t.gpu_temperature_celsius:g}", "gpu_temperature_celsius"),
        "{$LLMOBS.GPU.MEMORY.MAX}": (f"{t.gpu_memory_ratio:g}", "gpu_memory_ratio"),
        "{$LLMOBS.HOST.MEMORY.MAX}": (f"{t.host_memory_ratio:g}", "host_memory_ratio"),
        "{$LLMOBS.BATCH.STALL}": (f"{round(t.batch_stall_minutes * 60)}s", "batch_stall_minutes"),
        "{$LLMOBS.ALERT_FOR}": (f"{max(seconds(t.alert_for), 1)}s", "alert_for"),
        "{$LLMOBS.ABSENT_FOR}": (f"{seconds(t.absent_for)}s", "absent_for"),
    }
    return [{"macro": m, "value": v, "description": f"llmobs threshold: {d}"} for m, (v, d) in values.items()]


def template(t: Thresholds) -> Node:
    """The ``zabbix_export`` document."""
    items = [
        {"uuid": uid(MASTER), "name": "llmobs: scrape", "type": "HTTP_AGENT", "key": MASTER, "delay": "1m",
         "history": "0", "trends": "0", "value_type": "TEXT", "url": "{$LLMOBS.URL}",
         "description": "The whole exposition; the other items are read out of it."},
        item("Host memory utilization", "llmobs.host.memory", [pattern(q.MEMORY, "", "function", "max")]),
        item("Overflow series", "llmobs.overflow", [{**pattern("", f'__name__=~".+",{q.OVERFLOW}="true"', "function",
                                                           "count"), **ZERO}], value_type="UNSIGNED"),
    ]  # fmt: skip
    triggers = [
        trigger(held("llmobs.host.memory", "{$LLMOBS.HOST.MEMORY.MAX}"), "Host nearly out of memory",
                "WARNING", "docs/alerts.md#llmobshostmemoryhigh"),
        trigger(held("llmobs.overflow", "0"), "llmobs hit its series cap", "WARNING",
                "docs/alerts.md#llmobsseriesoverflow"),
        trigger(f"nodata(/{TEMPLATE}/{MASTER},{{$LLMOBS.ABSENT_FOR}})=1", "llmobs sends no telemetry", "HIGH",
                "docs/alerts.md#llmobstelemetryabsent"),
    ]  # fmt: skip
    body = {
        "uuid": uid(TEMPLATE), "template": TEMPLATE, "name": TEMPLATE,
        "description": "llmobs's metrics, read from its Prometheus scrape endpoint ({$LLMOBS.URL}).",
        "groups": [{"name": "Templates/Applications"}], "items": items,
        "discovery_rules": [_models(), _gpus(), _batches()], "macros": macros(t),
    }  # fmt: skip
    return {"zabbix_export": {
        "version": "6.0", "groups": [{"uuid": uid("Templates/Applications"), "name": "Templates/Applications"}],
        "templates": [body], "triggers": triggers,
    }}  # fmt: skip
