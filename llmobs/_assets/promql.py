"""The PromQL vocabulary of the shipped dashboards, alert rules and Zabbix template: every metric and
label they query, named through the one OpenTelemetry -> Prometheus translation (names.py) from the
semconv constants, so a renamed metric fails a test instead of silently emptying a panel."""

from __future__ import annotations

from .. import semconv as sc
from .._prometheus.exposition import number
from .._prometheus.names import label, metric_name

CONTRACT = (
    sc.REQUEST_DURATION, sc.TIME_TO_FIRST_TOKEN, sc.TIME_PER_OUTPUT_TOKEN, sc.TOKEN_USAGE, sc.ACTIVE_REQUESTS,
    sc.QUEUE_DURATION, sc.FINISHED, sc.BATCH_ITEMS, sc.BATCH_PROGRESS, sc.BATCH_ACTIVE, sc.SECURITY_EVENTS,
    sc.HTTP_SERVER_DURATION, sc.HTTP_SERVER_TIME_TO_FIRST_BYTE, sc.HTTP_SERVER_ACTIVE_REQUESTS,
    sc.GPU_UTILIZATION, sc.GPU_MEMORY_USAGE, sc.GPU_MEMORY_LIMIT, sc.GPU_POWER, sc.GPU_ENERGY, sc.GPU_TEMPERATURE,
    sc.GPU_ERRORS, sc.GPU_THROTTLE, sc.GPU_PROCESS_MEMORY,
    sc.SYSTEM_CPU_UTILIZATION, sc.SYSTEM_MEMORY_UTILIZATION, sc.SYSTEM_MEMORY_USAGE, sc.SYSTEM_DISK_IO,
    sc.SYSTEM_NETWORK_IO, sc.PROCESS_CPU_UTILIZATION, sc.PROCESS_MEMORY_USAGE,
)  # fmt: skip
"""The metrics the shipped assets query: renaming one, its unit or its kind is a breaking change."""

DURATION = metric_name(sc.REQUEST_DURATION)
TTFT = metric_name(sc.TIME_TO_FIRST_TOKEN)
TPOT = metric_name(sc.TIME_PER_OUTPUT_TOKEN)
TOKENS = metric_name(sc.TOKEN_USAGE)
ACTIVE = metric_name(sc.ACTIVE_REQUESTS)
QUEUE = metric_name(sc.QUEUE_DURATION)
FINISHED = metric_name(sc.FINISHED)
SECURITY_EVENTS = metric_name(sc.SECURITY_EVENTS)
BATCH_ITEMS = metric_name(sc.BATCH_ITEMS)
BATCH_PROGRESS = metric_name(sc.BATCH_PROGRESS)
BATCH_ACTIVE = metric_name(sc.BATCH_ACTIVE)
HTTP_DURATION = metric_name(sc.HTTP_SERVER_DURATION)
HTTP_TTFB = metric_name(sc.HTTP_SERVER_TIME_TO_FIRST_BYTE)
HTTP_ACTIVE = metric_name(sc.HTTP_SERVER_ACTIVE_REQUESTS)
GPU_UTILIZATION = metric_name(sc.GPU_UTILIZATION)
GPU_MEMORY_USAGE = metric_name(sc.GPU_MEMORY_USAGE)
GPU_MEMORY_LIMIT = metric_name(sc.GPU_MEMORY_LIMIT)
GPU_POWER = metric_name(sc.GPU_POWER)
GPU_ENERGY = metric_name(sc.GPU_ENERGY)
GPU_TEMPERATURE = metric_name(sc.GPU_TEMPERATURE)
GPU_ERRORS = metric_name(sc.GPU_ERRORS)
GPU_THROTTLE = metric_name(sc.GPU_THROTTLE)
GPU_PROCESS_MEMORY = metric_name(sc.GPU_PROCESS_MEMORY)
CPU = metric_name(sc.SYSTEM_CPU_UTILIZATION)
MEMORY = metric_name(sc.SYSTEM_MEMORY_UTILIZATION)
MEMORY_USAGE = metric_name(sc.SYSTEM_MEMORY_USAGE)
DISK_IO = metric_name(sc.SYSTEM_DISK_IO)
NETWORK_IO = metric_name(sc.SYSTEM_NETWORK_IO)
PROCESS_CPU = metric_name(sc.PROCESS_CPU_UTILIZATION)
PROCESS_MEMORY = metric_name(sc.PROCESS_MEMORY_USAGE)

MODEL = label(sc.MODEL)
OPERATION = label(sc.OPERATION)
ERROR_TYPE = label(sc.ERROR_TYPE)
TOKEN_TYPE = label(sc.TOKEN_TYPE)
FINISH_REASON = label(sc.FINISH_REASONS)
SECURITY_EVENT = label(sc.SECURITY_EVENT)
BATCH_NAME = label(sc.BATCH_NAME)
BATCH_OUTCOME = label(sc.BATCH_OUTCOME)
OVERFLOW = label(sc.OVERFLOW)
ROUTE = label(sc.HTTP_ROUTE)
METHOD = label(sc.HTTP_METHOD)
STATUS = label(sc.HTTP_STATUS_CODE)
HW_ID = label(sc.HW_ID)
HW_NAME = label(sc.HW_NAME)
THROTTLE_REASON = label(sc.THROTTLE_REASON)
IO_DIRECTION = label(sc.IO_DIRECTION)
DISK_DIRECTION = label(sc.DISK_DIRECTION)
INTERFACE = label(sc.INTERFACE)
SERVICE = "job"
"""The service: Prometheus's ``job``, which the scrape config (or the Collector) sets to ``service.name``."""
INSTANCE = "instance"


def histogram_rate(metric: str, selector: str, window: str, by: str = "") -> str:
    """Per-bucket rate, summed ``by`` the given labels plus ``le``, for ``histogram_quantile``."""
    return f"sum by ({', '.join(filter(None, ['le', by]))}) (rate({metric}_bucket{{{selector}}}[{window}]))"


def quantile(q: float, metric: str, selector: str, window: str, by: str = "") -> str:
    """The ``q`` quantile of a histogram over ``window``."""
    return f"histogram_quantile({q}, {histogram_rate(metric, selector, window, by)})"


def le(bound: float) -> str:
    """A matcher of the bucket ``bound``: llmobs writes ``le="1.0"``, the Collector's exporter ``le="1"``."""
    text = number(bound)
    return f'le=~"{text}|{int(bound)}"' if bound.is_integer() else f'le="{text}"'
