"""The Grafana dashboards as code, with grafana-foundation-sdk: ``python -m llmobs._assets.dashboards``
rewrites the committed JSON under data/grafana/ after a panel changes (a test fails when they
differ). Development only: ``llmobs assets grafana`` copies the committed JSON, so users need no SDK."""

from __future__ import annotations

import json
from dataclasses import dataclass

from grafana_foundation_sdk.builders import common, prometheus, stat, timeseries
from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import GraphTresholdsStyleMode, LegendDisplayMode, LegendPlacement
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from . import GRAFANA
from . import promql as q
from .thresholds import DEFAULTS, PANELS

W = "$__rate_interval"
SEL = f'{q.SERVICE}=~"$service", {q.INSTANCE}=~"$instance"'
MODELS = f'{SEL}, {q.MODEL}=~"$model"'
GPUS = f'{SEL}, {q.HW_ID}=~"$gpu"'
ROUTES = f'{SEL}, {q.ROUTE}=~"$route"'
DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
LEGEND = (
    common.VizLegendOptions().display_mode(LegendDisplayMode.LIST).placement(LegendPlacement.BOTTOM).show_legend(True)
)


@dataclass(frozen=True)
class Chart:
    """One panel: its queries as (PromQL, legend) pairs."""

    title: str
    unit: str
    queries: tuple[tuple[str, str], ...]
    description: str = ""
    kind: str = "timeseries"


def legend(*labels: str) -> str:
    """A legend naming each series by ``labels``."""
    return " ".join(f"{{{{{name}}}}}" for name in labels)


def quantiles(metric: str, selector: str, by: str) -> tuple[tuple[str, str], ...]:
    """p50, p95 and p99 of a histogram, by one label."""
    return tuple((q.quantile(p, metric, selector, W, by), f"p{round(p * 100)} {{{{{by}}}}}") for p in (0.5, 0.95, 0.99))


def rate(metric: str, selector: str, by: str) -> str:
    return f"sum by ({by}) (rate({metric}{{{selector}}}[{W}]))"


RATE = f"{q.DURATION}_count"
FAILED = f'{MODELS}, {q.ERROR_TYPE}!=""'
SERVING = {
    "Traffic": [
        Chart("Inference calls per second", "reqps", ((rate(RATE, MODELS, q.MODEL), legend(q.MODEL)),)),
        Chart("Error ratio by error.type", "percentunit", (
            (f"{rate(RATE, FAILED, q.ERROR_TYPE)}\n/ ignoring({q.ERROR_TYPE}) group_left\n"
             f"sum(rate({RATE}{{{MODELS}}}[{W}]))", legend(q.ERROR_TYPE)),
        ), "Failed calls over all calls."),
        Chart("In-flight calls", "short", ((f"sum by ({q.MODEL}) ({q.ACTIVE}{{{MODELS}}})", legend(q.MODEL)),)),
        Chart("Finish reasons", "reqps", ((rate(q.FINISHED, MODELS, q.FINISH_REASON), legend(q.FINISH_REASON)),),
              "Calls by why their choices finished (stop, length, ...), where the engine reports it."),
    ],
    "Latency": [
        Chart("Request duration", "s", quantiles(q.DURATION, MODELS, q.MODEL)),
        Chart("Time to first token", "s", quantiles(q.TTFT, MODELS, q.MODEL)),
        Chart("Time per output token", "s", quantiles(q.TPOT, MODELS, q.MODEL)),
        Chart("Queue time", "s", quantiles(q.QUEUE, MODELS, q.MODEL),
              "Time calls waited before their work started (Inference.mark_started)."),
    ],
    "Tokens": [
        Chart("Tokens per second", "short", ((rate(f"{q.TOKENS}_sum", MODELS, q.TOKEN_TYPE), legend(q.TOKEN_TYPE)),)),
        Chart("Output tokens per second by model", "short", (
            (rate(f"{q.TOKENS}_sum", f'{MODELS}, {q.TOKEN_TYPE}="output"', q.MODEL), legend(q.MODEL)),
        )),
    ],
    "Batch jobs": [
        Chart("Batch progress", "percentunit", (
            (f"max by ({q.BATCH_NAME}) ({q.BATCH_PROGRESS}{{{SEL}}})", legend(q.BATCH_NAME)),
        )),
        Chart("Batch items per second", "short", (
            (rate(q.BATCH_ITEMS, SEL, f"{q.BATCH_NAME}, {q.BATCH_OUTCOME}"),
             legend(q.BATCH_NAME, q.BATCH_OUTCOME)),
        )),
        Chart("Running batch jobs", "short", ((f"sum by ({q.BATCH_NAME}) ({q.BATCH_ACTIVE}{{{SEL}}})",
                                               legend(q.BATCH_NAME)),)),
    ],
    "Series cap": [
        Chart("Overflow series", "short", ((f'count by ({q.SERVICE}) ({{{q.OVERFLOW}="true", {SEL}}})', "{{job}}"),),
              "Series marked otel_metric_overflow=true: an attribute has more values than LLMOBS_MAX_SERIES allows.",
              "stat"),
    ],
}  # fmt: skip

GPU_BY = f"{q.INSTANCE}, {q.HW_ID}"
GPU_LEGEND = legend(q.INSTANCE, q.HW_ID)
ENERGY = (
    f"sum by ({q.SERVICE}, {q.INSTANCE}) (rate({q.GPU_ENERGY}{{{SEL}}}[{W}]))\n"
    f'/ sum by ({q.SERVICE}, {q.INSTANCE}) (rate({q.TOKENS}_sum{{{SEL}, {q.TOKEN_TYPE}="output"}}[{W}])) * 1000'
)
HARDWARE = {
    "GPU": [
        Chart("GPU utilization", "percentunit", ((f"max by ({GPU_BY}, hw_gpu_task) ({q.GPU_UTILIZATION}{{{GPUS}}})",
                                                  legend(q.INSTANCE, q.HW_ID, "hw_gpu_task")),)),
        Chart("GPU memory", "bytes", (
            (f"max by ({GPU_BY}) ({q.GPU_MEMORY_USAGE}{{{GPUS}}})", f"used {GPU_LEGEND}"),
            (f"max by ({GPU_BY}) ({q.GPU_MEMORY_LIMIT}{{{GPUS}}})", f"limit {GPU_LEGEND}"),
        )),
        Chart("GPU temperature", "celsius", ((f"max by ({GPU_BY}) ({q.GPU_TEMPERATURE}{{{GPUS}}})", GPU_LEGEND),)),
        Chart("GPU power", "watt", ((f"max by ({GPU_BY}) ({q.GPU_POWER}{{{GPUS}}})", GPU_LEGEND),)),
        Chart("GPU energy per 1000 output tokens", "joule", ((ENERGY, legend(q.INSTANCE)),),
              "Joules all GPUs of the instance drew per 1000 output tokens it produced."),
        Chart("GPU clock throttle reasons", "short", (
            (f"max by ({GPU_BY}, {q.THROTTLE_REASON}) ({q.GPU_THROTTLE}{{{GPUS}}})",
             legend(q.INSTANCE, q.HW_ID, q.THROTTLE_REASON)),
        ), "1 while a reason holds the clocks down."),
        Chart("GPU ECC errors (1h)", "short", (
            (f"sum by ({GPU_BY}, {q.ERROR_TYPE}) (increase({q.GPU_ERRORS}{{{GPUS}}}[1h]))",
             legend(q.INSTANCE, q.HW_ID, q.ERROR_TYPE)),
        )),
        Chart("GPU memory of this service's processes", "bytes", (
            (f"sum by ({GPU_BY}, process_pid) ({q.GPU_PROCESS_MEMORY}{{{GPUS}}})",
             legend(q.INSTANCE, q.HW_ID, "process_pid")),
        )),
    ],
    "Host": [
        Chart("CPU and memory utilization", "percentunit", (
            (f"max by ({q.INSTANCE}) ({q.CPU}{{{SEL}}})", "host CPU {{instance}}"),
            (f"sum by ({q.INSTANCE}) ({q.PROCESS_CPU}{{{SEL}}})", "processes' CPU {{instance}}"),
            (f"max by ({q.INSTANCE}) ({q.MEMORY}{{{SEL}}})", "host memory {{instance}}"),
        ), "Host figures are the container's (its CPU quota and memory limit) where there is one."),
        Chart("Memory", "bytes", (
            (f"max by ({q.INSTANCE}) ({q.MEMORY_USAGE}{{{SEL}}})", "host {{instance}}"),
            (f"sum by ({q.INSTANCE}) ({q.PROCESS_MEMORY}{{{SEL}}})", "processes {{instance}}"),
        )),
        Chart("Disk I/O", "Bps", ((rate(q.DISK_IO, SEL, f"{q.INSTANCE}, {q.DISK_DIRECTION}"),
                                   legend(q.INSTANCE, q.DISK_DIRECTION)),)),
        Chart("Network I/O", "Bps", ((rate(q.NETWORK_IO, SEL, f"{q.INSTANCE}, {q.IO_DIRECTION}"),
                                      legend(q.INSTANCE, q.IO_DIRECTION)),)),
    ],
}  # fmt: skip

HTTP_RATE = f"{q.HTTP_DURATION}_count"
CLASSES = f'label_replace({rate(HTTP_RATE, ROUTES, q.STATUS)}, "class", "${{1}}xx", "{q.STATUS}", "(\\\\d).*")'
HTTP = {
    "Requests": [
        Chart("Requests per second by route", "reqps", ((rate(HTTP_RATE, ROUTES, q.ROUTE), legend(q.ROUTE)),)),
        Chart("Status classes", "reqps", ((f"sum by (class) ({CLASSES})", "{{class}}"),)),
        Chart("401, 403 and 429 by route", "reqps", (
            (rate(HTTP_RATE, f'{ROUTES}, {q.STATUS}=~"401|403|429"', f"{q.ROUTE}, {q.STATUS}"),
             legend(q.ROUTE, q.STATUS)),
        )),
        Chart("In-flight requests", "short", ((f"sum ({q.HTTP_ACTIVE}{{{SEL}}})", "in flight"),)),
        Chart("Security events by kind", "reqps", (
            (rate(q.SECURITY_EVENTS, ROUTES, f"{q.SECURITY_EVENT}, {q.ROUTE}"), legend(q.SECURITY_EVENT, q.ROUTE)),
        ), "Authentication and authorization failures, rate limiting, oversized payloads, probes of unknown paths."),
    ],
    "Latency": [
        Chart("Request duration by route", "s", quantiles(q.HTTP_DURATION, ROUTES, q.ROUTE)),
        Chart("Time to first byte by route", "s", quantiles(q.HTTP_TTFB, ROUTES, q.ROUTE)),
    ],
}  # fmt: skip

DASHBOARDS = {
    "llmobs-serving": ("llmobs: model serving", SERVING, ("model",)),
    "llmobs-hardware": ("llmobs: GPU and host", HARDWARE, ("gpu",)),
    "llmobs-http": ("llmobs: HTTP", HTTP, ("route",)),
}
VARIABLES = {
    "model": (f"label_values({RATE}{{{SEL}}}, {q.MODEL})", "Model"),
    "gpu": (f"label_values({q.GPU_UTILIZATION}{{{SEL}}}, {q.HW_ID})", "GPU"),
    "route": (f"label_values({HTTP_RATE}{{{SEL}}}, {q.ROUTE})", "Route"),
}


def variable(name: str, query: str, label: str) -> gd.QueryVariable:
    """A multi-value variable over a label's values, "All" matching everything."""
    return (
        gd.QueryVariable(name).label(label).query(query).datasource(DS).refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC).multi(True).include_all(True).all_value(".*")
        .current(VariableOption(selected=True, text=["All"], value=["$__all"]))
    )  # fmt: skip


def panel(chart: Chart, number: int) -> timeseries.Panel | stat.Panel:
    """One panel; ``number`` is its id, unique in the dashboard."""
    if chart.kind == "timeseries":
        built: timeseries.Panel | stat.Panel = timeseries.Panel().legend(LEGEND)
    else:
        built = stat.Panel().reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    built = built.id(number).title(chart.title)
    built = built.unit(chart.unit).datasource(DS).height(8).span(12 if chart.kind == "timeseries" else 6)
    if chart.description:
        built = built.description(chart.description)
    if chart.title in PANELS:
        line = Threshold(None, "green"), Threshold(getattr(DEFAULTS, PANELS[chart.title]), "red")
        built = built.thresholds(gd.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(list(line)))
        if isinstance(built, timeseries.Panel):
            built = built.thresholds_style(common.GraphThresholdsStyleConfig().mode(GraphTresholdsStyleMode.DASHED))
    for i, (expr, legend) in enumerate(chart.queries):
        built = built.with_target(prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(chr(65 + i)))
    return built


def build(uid: str) -> dict[str, object]:
    """The dashboard ``uid`` as Grafana's JSON model."""
    title, rows, extra = DASHBOARDS[uid]
    board = (
        gd.Dashboard(title).uid(uid).tags(["llmobs", "opentelemetry"]).refresh("30s").time("now-1h", "now")
        .tooltip(DashboardCursorSync.CROSSHAIR).timezone("browser").editable()
        .with_variable(gd.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
        .with_variable(variable("service", f"label_values(target_info, {q.SERVICE})", "Service"))
        .with_variable(variable("instance", f'label_values(target_info{{{q.SERVICE}=~"$service"}}, instance)',
                                "Instance"))
    )  # fmt: skip
    for name in extra:
        board = board.with_variable(variable(name, *VARIABLES[name]))
    number = 0
    for row, charts in rows.items():
        number += 1
        board = board.with_row(gd.Row(row).id(number))
        for chart in charts:
            number += 1
            board = board.with_panel(panel(chart, number))
    encoded: dict[str, object] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return encoded


def render(uid: str) -> str:
    """The committed file's text."""
    return json.dumps(build(uid), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    GRAFANA.mkdir(parents=True, exist_ok=True)
    for uid in DASHBOARDS:
        (GRAFANA / f"{uid}.json").write_text(render(uid))
